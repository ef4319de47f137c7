"""Wake an asyncio loop at an exact wall-clock instant: a Linux timerfd, read by the loop.

An event loop's own timers cannot do it: uvloop (libuv) counts whole milliseconds from a
clock read when the loop turn began, so its timers fire up to a millisecond (and a long
turn) early, and the only way left to end a wait at its deadline is to yield turn by turn
until the clock says so: a busy loop for up to a millisecond before every deadline. A
server's scheduler waits for ~125 deadlines a second with the synthetic market running, and
that spinning took 7% of an idle server's core (docs/benchmarks-venue.md, Round 8).

A timerfd (timerfd_create(2)) armed with an absolute `CLOCK_REALTIME` time
(`TFD_TIMER_ABSTIME`, the clock `time.time_ns()` reads) becomes readable when that time
comes, to the kernel's high-resolution timer, and the loop's poll waits on it like any
socket: no spinning, and a realtime clock that is set forward or back moves the wake with
it. Python's `os` module has timerfd only from 3.13, so it is called through ctypes.
`sleep_until_ns` returns False where timerfd is missing (not Linux, or no descriptor left),
and the caller waits its own way.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import sys
import time
from collections.abc import Callable

_CLOCK_REALTIME = 0  # <time.h>
_TFD_TIMER_ABSTIME = 1  # <sys/timerfd.h>
_TFD_FLAGS = os.O_NONBLOCK | os.O_CLOEXEC  # TFD_NONBLOCK and TFD_CLOEXEC are these values


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]


class _Calls:
    """libc's timerfd_create and timerfd_settime."""

    def __init__(self, create: Callable[..., int], settime: Callable[..., int]) -> None:
        self.create, self.settime = create, settime

    def open(self) -> int | None:
        fd = self.create(_CLOCK_REALTIME, _TFD_FLAGS)
        return fd if fd >= 0 else None

    def arm(self, fd: int, deadline_ns: int) -> bool:
        """Make `fd` readable at `deadline_ns` (time.time_ns()); False if refused."""
        spec = _Itimerspec()
        # A zero it_value disarms the timer: the epoch's first nanosecond is as long gone.
        spec.it_value.tv_sec, spec.it_value.tv_nsec = divmod(max(deadline_ns, 1), 1_000_000_000)
        return self.settime(fd, _TFD_TIMER_ABSTIME, ctypes.byref(spec), None) == 0


def _load() -> _Calls | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        create, settime = libc.timerfd_create, libc.timerfd_settime
    except (OSError, AttributeError):
        return None
    create.argtypes, create.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    settime.argtypes = [
        ctypes.c_int,
        ctypes.c_int,
        ctypes.POINTER(_Itimerspec),
        ctypes.POINTER(_Itimerspec),
    ]
    settime.restype = ctypes.c_int
    return _Calls(create, settime)


_CALLS = _load()
AVAILABLE = _CALLS is not None


async def sleep_until_ns(deadline_ns: int) -> bool:
    """Return at `deadline_ns` (time.time_ns()) or just after it; False, at once, if no
    timerfd could be had (the caller waits another way)."""
    calls = _CALLS
    fd = calls.open() if calls is not None else None
    if calls is None or fd is None:
        return False
    loop = asyncio.get_running_loop()
    try:
        # Armed again after a wake that comes too early: the realtime clock was set back.
        while time.time_ns() < deadline_ns:
            if not calls.arm(fd, deadline_ns):
                return False
            woken: asyncio.Future[None] = loop.create_future()
            loop.add_reader(fd, _wake, woken)
            try:
                await woken
            finally:
                loop.remove_reader(fd)
    finally:
        os.close(fd)
    return True


def _wake(woken: asyncio.Future[None]) -> None:
    if not woken.done():
        woken.set_result(None)
