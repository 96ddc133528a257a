"""One multiplexed TCP connection per peer, and a pool of them keyed by address.

Many requests share one connection and are matched to responses by `opaque`. The peer may also
send requests of its own (a broker asks consumers for running info, notifies id changes), told
apart by the response bit; unhandled ones are answered with REQUEST_CODE_NOT_SUPPORTED, like the
Java client does, so the broker does not wait for a timeout.
"""

import asyncio
import contextlib
import dataclasses
import itertools
import logging
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType
from typing import Self

from .acl import Credentials, sign
from .codes import CommandFlag, ResponseCode
from .errors import ConnectionFailed, ProtocolError, RemotingTimeout
from .frame import DEFAULT_MAX_FRAME_SIZE, FrameDecoder, RemotingCommand, encode

log = logging.getLogger(__name__)

InboundHandler = Callable[[RemotingCommand], Awaitable[RemotingCommand | None]]
"""Answers a request the peer sent; the returned command's opaque and flag are filled in for it."""

DEFAULT_CONNECT_TIMEOUT = 3.0
DEFAULT_REQUEST_TIMEOUT = 5.0
READ_CHUNK = 64 * 1024
# asyncio.StreamReader pauses the socket once it buffers twice this limit, which bounds memory
# together with the decoder's frame cap.
_STREAM_LIMIT = READ_CHUNK


def split_addr(addr: str) -> tuple[str, int]:
    """`host:port` or `[v6]:port` -> (host, port)."""
    host, sep, port = addr.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"address {addr!r} is not host:port")
    return host.strip("[]"), int(port)


class Connection:
    """An open connection; create with `Connection.open`. Safe for concurrent use within one event loop."""

    def __init__(self, addr: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *,
                 max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
                 handlers: Mapping[int, InboundHandler] | None = None,
                 credentials: Credentials | None = None) -> None:
        self.addr = addr
        self._reader = reader
        self._writer = writer
        self._decoder = FrameDecoder(max_frame_size)
        self._handlers = dict(handlers or {})
        self._credentials = credentials
        self._pending: dict[int, asyncio.Future[RemotingCommand]] = {}
        self._opaques = itertools.count(1)
        self._handler_tasks: set[asyncio.Task[None]] = set()
        self._closed_reason: str | None = None
        self._read_task = asyncio.create_task(self._read_loop(), name=f"rocketmq-remoting-read-{addr}")

    @classmethod
    async def open(cls, addr: str, *, connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
                   max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
                   handlers: Mapping[int, InboundHandler] | None = None,
                   credentials: Credentials | None = None) -> "Connection":
        host, port = split_addr(addr)
        try:
            async with asyncio.timeout(connect_timeout):
                reader, writer = await asyncio.open_connection(host, port, limit=_STREAM_LIMIT)
        except (OSError, TimeoutError) as exc:
            raise ConnectionFailed(addr, f"connect failed: {exc!r}") from exc
        return cls(addr, reader, writer, max_frame_size=max_frame_size, handlers=handlers, credentials=credentials)

    @property
    def closed(self) -> bool:
        return self._closed_reason is not None

    async def wait_closed(self) -> None:
        """Until either side has closed the connection (its reader has ended)."""
        await asyncio.wait([self._read_task])  # done however it ended, cancelled by `close` included

    @property
    def pending(self) -> int:
        """Requests sent and not yet answered (for tests and metrics)."""
        return len(self._pending)

    async def invoke(self, request: RemotingCommand,
                     timeout: float = DEFAULT_REQUEST_TIMEOUT) -> RemotingCommand:  # noqa: ASYNC109
        """Send `request` and wait for its response (any response code; callers judge it).

        The timeout is a parameter, not left to the caller's `asyncio.timeout`, so that expiry becomes a
        RemotingTimeout naming the request and its slot for a late response is released.
        """
        request = self._prepare(request, CommandFlag(0))
        future: asyncio.Future[RemotingCommand] = asyncio.get_running_loop().create_future()
        self._pending[request.opaque] = future
        try:
            await self._send(request)
            async with asyncio.timeout(timeout):
                return await future
        except TimeoutError:
            raise RemotingTimeout(self.addr, request.code, timeout) from None
        finally:
            self._pending.pop(request.opaque, None)

    async def invoke_oneway(self, request: RemotingCommand) -> None:
        """Send without expecting an answer; only transport failures are reported."""
        await self._send(self._prepare(request, CommandFlag.ONEWAY))

    async def close(self) -> None:
        self._shutdown("closed by the client")
        self._read_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._read_task
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()

    def _prepare(self, request: RemotingCommand, flag: CommandFlag) -> RemotingCommand:
        if self._closed_reason is not None:
            raise ConnectionFailed(self.addr, self._closed_reason)
        flags = (request.flag & ~(CommandFlag.RESPONSE | CommandFlag.ONEWAY)) | flag
        prepared = dataclasses.replace(request, opaque=next(self._opaques) & 0x7FFFFFFF, flag=flags)
        return sign(prepared, self._credentials) if self._credentials else prepared

    async def _send(self, command: RemotingCommand) -> None:
        data = encode(command)
        try:
            self._writer.write(data)
            await self._writer.drain()
        except OSError as exc:
            self._shutdown(f"write failed: {exc!r}")
            raise ConnectionFailed(self.addr, f"write failed: {exc!r}") from exc

    async def _read_loop(self) -> None:
        reason = "closed by the peer"
        try:
            while data := await self._reader.read(READ_CHUNK):
                for command in self._decoder.feed(data):
                    self._dispatch(command)
        except ProtocolError as exc:
            reason = f"protocol error: {exc}"
        except OSError as exc:
            reason = f"read failed: {exc!r}"
        finally:  # whatever ends the loop, nobody may be left waiting for a response
            self._shutdown(reason)

    def _dispatch(self, command: RemotingCommand) -> None:
        if command.is_response:
            future = self._pending.pop(command.opaque, None)
            if future is None or future.done():
                log.debug("%s: dropping response to unknown or abandoned opaque %d", self.addr, command.opaque)
            else:
                future.set_result(command)
            return
        handler = self._handlers.get(command.code)
        if handler is not None:
            task = asyncio.create_task(self._handle(handler, command))
            self._handler_tasks.add(task)
            task.add_done_callback(self._handler_tasks.discard)
        elif not command.is_oneway:
            self._reply(command.response(ResponseCode.REQUEST_CODE_NOT_SUPPORTED,
                                         f"request code {command.code} not supported by this client"))

    async def _handle(self, handler: InboundHandler, request: RemotingCommand) -> None:
        try:
            response = await handler(request)
        except Exception as exc:
            log.exception("%s: handler for inbound request code %d failed", self.addr, request.code)
            response = RemotingCommand(code=ResponseCode.SYSTEM_ERROR, remark=f"{type(exc).__name__}: {exc}")
        if response is not None and not request.is_oneway:
            response.opaque = request.opaque
            response.flag = CommandFlag.RESPONSE
            self._reply(response)

    def _reply(self, response: RemotingCommand) -> None:
        if self._closed_reason is None:
            self._writer.write(encode(response))

    def _shutdown(self, reason: str) -> None:
        if self._closed_reason is not None:
            return
        self._closed_reason = reason
        for future in self._pending.values():
            if not future.done():
                future.set_exception(ConnectionFailed(self.addr, reason))
        self._pending.clear()
        for task in self._handler_tasks:
            task.cancel()
        self._writer.close()


class ConnectionPool:
    """At most one live connection per address, opened on first use and re-opened after a failure.

    Requests are never retried here: whether a request may be repeated is the caller's decision. Callers that
    need an address while it is being opened share that one attempt and its outcome: a broker whose address no
    longer answers (a deleted pod's IP drops SYNs, it does not refuse them) costs each of them one connect
    timeout, not one per caller queued before it.
    """

    def __init__(self, *, connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
                 request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
                 max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
                 credentials: Credentials | None = None,
                 handlers: Mapping[int, InboundHandler] | None = None) -> None:
        self.connect_timeout = connect_timeout
        self.request_timeout = request_timeout
        self._max_frame_size = max_frame_size
        self._credentials = credentials
        self._handlers = dict(handlers or {})
        self._connections: dict[str, Connection] = {}
        self._opening: dict[str, asyncio.Future[Connection]] = {}
        self._closed = False

    async def connection(self, addr: str) -> Connection:
        if self._closed:
            raise ConnectionFailed(addr, "connection pool is closed")
        current = self._connections.get(addr)
        if current is not None and not current.closed:
            return current
        opening = self._opening.get(addr)
        if opening is None:
            opening = asyncio.ensure_future(self._open(addr, current))
            self._opening[addr] = opening
            opening.add_done_callback(lambda done: self._forget_opening(addr, done))
        return await asyncio.shield(opening)  # a cancelled caller leaves the attempt to the others

    async def _open(self, addr: str, stale: Connection | None) -> Connection:
        if stale is not None:
            await stale.close()
        opened = await Connection.open(addr, connect_timeout=self.connect_timeout, max_frame_size=self._max_frame_size,
                                       handlers=self._handlers, credentials=self._credentials)
        self._connections[addr] = opened
        return opened

    def _forget_opening(self, addr: str, done: "asyncio.Future[Connection]") -> None:
        if self._opening.get(addr) is done:
            del self._opening[addr]
        if not done.cancelled():
            done.exception()  # retrieved here too: every caller may have been cancelled meanwhile

    async def invoke(self, addr: str, request: RemotingCommand, *,
                     timeout: float | None = None) -> RemotingCommand:  # noqa: ASYNC109 - see Connection.invoke
        connection = await self.connection(addr)
        return await connection.invoke(request, self.request_timeout if timeout is None else timeout)

    async def invoke_oneway(self, addr: str, request: RemotingCommand) -> None:
        connection = await self.connection(addr)
        await connection.invoke_oneway(request)

    async def close(self) -> None:
        self._closed = True
        connections, self._connections = list(self._connections.values()), {}
        await asyncio.gather(*(c.close() for c in connections))

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()
