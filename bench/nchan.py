"""nchan (nginx pub/sub, C): the reference for HTTP publish and WebSocket delivery.

`ensure_installed()` installs Debian's `nginx-light` and `libnginx-mod-nchan` with apt-get when
the module is missing (`apt-get update` once first). `nchan_server()` writes a config into a
temporary directory (127.0.0.1 only, a free port, pid, logs and temp paths inside it) and runs
nginx with one worker, pinned to the server core:

- `POST /pub/<channel>`: publish the request body as one message (nchan has no multi-message
  publish: its batched form is many requests pipelined on keep-alive connections);
- `GET /sub/<channel>` with a WebSocket upgrade: subscribe.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.common import SERVER_CORE, raise_nofile

MODULE = Path("/usr/lib/nginx/modules/ngx_nchan_module.so")
PACKAGES = ["nginx-light", "libnginx-mod-nchan"]

CONFIG = """\
load_module {module};
worker_processes 1;
worker_rlimit_nofile {nofile};
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections {connections}; multi_accept on; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    keepalive_requests 100000000;
    client_body_buffer_size 64k;
    # 1,000 channels x 400 buffered events of ~500 B outgrow 256m ("Out of shared memory",
    # publishes answered 500); the buffer holds each message for nchan_message_timeout.
    nchan_shared_memory_size 1g;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location ~ ^/pub/(\\w+)$ {{
            nchan_publisher http;
            nchan_channel_id $1;
            nchan_message_buffer_length 5000;
            nchan_message_timeout 10s;
        }}
        location ~ ^/sub/(\\w+)$ {{
            nchan_subscriber websocket;
            nchan_channel_id $1;
        }}
    }}
}}
"""


def ensure_installed() -> str:
    """Install nginx + nchan if missing; returns the installed package versions."""
    if not MODULE.exists() or shutil.which("nginx") is None:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-q"], check=True, capture_output=True, env=env)
        subprocess.run(
            ["apt-get", "install", "-y", "-q", *PACKAGES], check=True, capture_output=True, env=env
        )
    found = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Package} ${Version}\\n", "nginx-light", "libnginx-mod-nchan"],
        check=True,
        capture_output=True,
        text=True,
    )
    return ", ".join(found.stdout.split("\n")[:-1])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Nchan:
    process: subprocess.Popen[bytes]
    port: int
    pid: int
    config: str


@contextmanager
def nchan_server(connections: int = 20_000) -> Iterator[Nchan]:
    """Run nginx + nchan (master and one worker) on a free 127.0.0.1 port until exit."""
    with tempfile.TemporaryDirectory(prefix="nchan-bench-") as tmp:
        port = free_port()
        nofile = raise_nofile()
        config = CONFIG.format(
            module=MODULE,
            tmp=tmp,
            port=port,
            nofile=nofile,
            connections=min(connections, nofile - 100),
        )
        path = Path(tmp) / "nginx.conf"
        path.write_text(config)
        process = subprocess.Popen(
            [
                "taskset",
                "-c",
                str(SERVER_CORE),
                "nginx",
                "-p",
                tmp,
                "-e",
                f"{tmp}/error.log",
                "-c",
                str(path),
                "-g",
                "daemon off;",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=raise_nofile,
        )
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), 0.2).close()
                    break
                except OSError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        assert process.stderr is not None
                        raise RuntimeError(
                            f"nginx did not start: {process.stderr.read().decode()}"
                        ) from None
                    time.sleep(0.05)
            yield Nchan(process, port, process.pid, f"nginx -p {tmp} -c {path}")
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
