"""A real TCP relay in front of the server, for the network faults a client must survive.

- `freeze_existing()`: every open connection becomes a black hole: bytes are read and
  silently discarded both ways, the sockets stay open. That is what a dead NAT entry or a
  half-dead peer looks like to a client; later connections relay normally.
- `cut()` / `restore()`: reset every relayed connection and refuse new ones (accepted, then
  closed at once) until restored: a network path that broke.
- `retarget(port)`: reset every relayed connection; new ones go to another server.
- `redirect_new(port)`: new connections go to another server; open ones stay as they are.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field


@dataclass(eq=False)
class _Pipe:
    writers: list[asyncio.StreamWriter]
    frozen: bool = False
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


class Relay:
    def __init__(self, target_port: int, host: str = "127.0.0.1") -> None:
        self._host = host
        self._target_port = target_port
        self._server: asyncio.Server | None = None
        self._pipes: list[_Pipe] = []
        self.cut_off = False
        self.refused = 0
        self.chunks_up = 0
        """Reads relayed from clients to the server (each small client frame is one)."""

    @property
    def port(self) -> int:
        assert self._server is not None
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, self._host, 0)

    def freeze_existing(self) -> int:
        """Black-hole every connection open now; later connections relay normally."""
        for pipe in self._pipes:
            pipe.frozen = True
        return len(self._pipes)

    async def cut(self) -> None:
        self.cut_off = True
        await self._close_pipes()

    def restore(self) -> None:
        self.cut_off = False

    async def retarget(self, port: int) -> None:
        """Reset every relayed connection; new ones go to `port` (another server)."""
        self._target_port = port
        await self._close_pipes()

    def redirect_new(self, port: int) -> None:
        """New connections go to `port`; connections open now keep their server."""
        self._target_port = port

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
        await self._close_pipes()
        if self._server is not None:
            await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.cut_off:
            self.refused += 1
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            return
        up_reader, up_writer = await asyncio.open_connection(self._host, self._target_port)
        pipe = _Pipe([writer, up_writer])
        self._pipes.append(pipe)
        pipe.tasks = [
            asyncio.create_task(self._pump(pipe, reader, up_writer, up=True)),
            asyncio.create_task(self._pump(pipe, up_reader, writer, up=False)),
        ]

    async def _pump(
        self, pipe: _Pipe, src: asyncio.StreamReader, dst: asyncio.StreamWriter, up: bool
    ) -> None:
        with contextlib.suppress(OSError):
            while data := await src.read(65536):
                self.chunks_up += up
                if not pipe.frozen:
                    dst.write(data)
                    await dst.drain()
        if not pipe.frozen:
            with contextlib.suppress(OSError):
                dst.close()

    async def _close_pipes(self) -> None:
        pipes, self._pipes = self._pipes, []
        for pipe in pipes:
            for task in pipe.tasks:
                task.cancel()
            await asyncio.gather(*pipe.tasks, return_exceptions=True)
            for writer in pipe.writers:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
