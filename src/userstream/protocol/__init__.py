"""Sans-I/O protocol parts: data in, data out; no sockets, tasks, sleeps or clock reads."""
