"""Typed failures of the remoting layer.

Callers branch on the type (retry a timeout, reconnect after ConnectionFailed, report a BrokerError
by its code), so every failure the library raises is one of these.
"""

from .codes import code_name


class RemotingError(Exception):
    """Base of everything this package raises on purpose."""


class ProtocolError(RemotingError):
    """Bytes that do not follow the remoting protocol; the connection that produced them is unusable."""


class FrameTooLarge(ProtocolError):
    """A frame announces more bytes than the configured cap, so it is refused before being buffered."""


class MalformedFrame(ProtocolError):
    """The length fields of a frame contradict each other."""


class MalformedHeader(ProtocolError):
    """The command header (JSON or ROCKETMQ binary) cannot be decoded or has fields of the wrong type."""


class MalformedBody(ProtocolError):
    """A response body is not the JSON document the request code promises."""


class MalformedMessage(ProtocolError):
    """A stored-message record in a pull body is truncated or inconsistent."""


class UnsupportedCompression(RemotingError):
    """A message body uses a codec (LZ4, ZSTD) this library does not ship; the record itself is well formed."""

    def __init__(self, compression_type: int) -> None:
        names = {1: "LZ4", 2: "ZSTD"}
        super().__init__(f"message body compressed with {names.get(compression_type, compression_type)}, "
                         "only ZLIB is supported")
        self.compression_type = compression_type


class ConnectionFailed(RemotingError, ConnectionError):
    """The TCP connection could not be opened, or it closed while a call was waiting for its answer."""

    def __init__(self, addr: str, reason: str) -> None:
        super().__init__(f"{addr}: {reason}")
        self.addr = addr
        self.reason = reason


class RemotingTimeout(RemotingError, TimeoutError):
    """No response arrived in time; the request may or may not have been executed by the peer."""

    def __init__(self, addr: str, request_code: int, timeout: float) -> None:
        super().__init__(f"{addr}: no response to {code_name(request_code, request=True)} within {timeout:g} s")
        self.addr = addr
        self.request_code = request_code
        self.timeout = timeout


class BrokerError(RemotingError):
    """The peer answered with a response code other than SUCCESS."""

    def __init__(self, code: int, remark: str | None, request_code: int, addr: str = "") -> None:
        where = f"{addr}: " if addr else ""
        detail = f": {remark.strip()}" if remark and remark.strip() else ""
        super().__init__(f"{where}{code_name(request_code, request=True)} failed with "
                         f"{code_name(code, request=False)}{detail}")
        self.code = code
        self.remark = remark
        self.request_code = request_code
        self.addr = addr


class NoRoute(RemotingError):
    """The name server's route has no master for the broker (or no writable queue for the topic) asked for."""
