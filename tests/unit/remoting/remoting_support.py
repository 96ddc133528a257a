"""Shared by the remoting unit tests: captured broker frames and a scripted in-process peer."""

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from pathlib import Path

from rocketmq_retry.remoting.codes import ResponseCode
from rocketmq_retry.remoting.frame import FrameDecoder, RemotingCommand, encode

FIXTURES = Path(__file__).parent / "fixtures"


def captured(name: str) -> bytes:
    """A whole frame captured from a real name server or broker (see fixtures/README.md)."""
    return bytes.fromhex((FIXTURES / f"{name}.hex").read_text())


def captured_command(name: str) -> RemotingCommand:
    [command] = FrameDecoder().feed(captured(name))
    return command


Behaviour = Callable[[RemotingCommand, asyncio.StreamWriter], Awaitable[None]]


async def answer_success(request: RemotingCommand, writer: asyncio.StreamWriter) -> None:
    if not request.is_oneway:
        writer.write(encode(request.response(ResponseCode.SUCCESS)))


class FakePeer:
    """A loopback remoting server whose answers are scripted by `behaviour`; it records what it received."""

    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.received: list[RemotingCommand] = []
        self.writers: list[asyncio.StreamWriter] = []
        self.arrived = asyncio.Event()
        self._server: asyncio.Server | None = None

    @property
    def addr(self) -> str:
        assert self._server is not None
        host, port = self._server.sockets[0].getsockname()[:2]
        return f"{host}:{port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        decoder = FrameDecoder()
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                for command in decoder.feed(data):
                    self.received.append(command)
                    self.arrived.set()
                    await self.behaviour(command, writer)
        writer.close()

    async def wait_for(self, count: int) -> None:
        async with asyncio.timeout(5):
            while len(self.received) < count:
                self.arrived.clear()
                await self.arrived.wait()

    def drop_connections(self) -> None:
        for writer in self.writers:
            writer.transport.abort()

    async def stop(self) -> None:
        assert self._server is not None
        self.drop_connections()
        self._server.close()
        await self._server.wait_closed()
