"""Remoting frames: the `RemotingCommand` value and its byte encoding, pure (no sockets).

Frame = int32 total length (not counting itself) | int32 (serialize type << 24 | header length) |
header | body. The header is JSON or the ROCKETMQ binary layout, chosen per frame by the type byte,
because a 4.x broker answers some requests (long-poll wake-ups) in JSON whatever the request used.
"""

import json
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .codes import CLIENT_VERSION, CommandFlag, LanguageCode, SerializeType
from .errors import FrameTooLarge, MalformedFrame, MalformedHeader, ProtocolError

DEFAULT_MAX_FRAME_SIZE = 16 * 1024 * 1024
"""Same default as the Java side (`com.rocketmq.remoting.frameMaxLength`), counting the length prefix."""

_INT32 = (-(2**31), 2**31 - 1)
_INT16 = (-(2**15), 2**15 - 1)
_PREFIX = struct.Struct(">iI")
_BINARY_FIXED = struct.Struct(">hbhii")


@dataclass(slots=True)
class RemotingCommand:
    """One request or response. `ext_fields` values are strings on the wire, whatever the Java type."""

    code: int
    opaque: int = 0
    flag: int = 0
    language: str = LanguageCode.PYTHON.name
    version: int = CLIENT_VERSION
    remark: str | None = None
    ext_fields: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    serialize_type: SerializeType = SerializeType.JSON

    @property
    def is_response(self) -> bool:
        return bool(self.flag & CommandFlag.RESPONSE)

    @property
    def is_oneway(self) -> bool:
        return bool(self.flag & CommandFlag.ONEWAY)

    def response(self, code: int, remark: str | None = None) -> "RemotingCommand":
        """The answer to this request: same opaque, response bit set."""
        return RemotingCommand(code=code, opaque=self.opaque, flag=CommandFlag.RESPONSE, remark=remark)


def encode(cmd: RemotingCommand) -> bytes:
    """Whole frame, length prefix included. Raises ValueError for values the wire format cannot carry."""
    _check_range("code", cmd.code, _INT32)
    _check_range("opaque", cmd.opaque, _INT32)
    _check_range("flag", cmd.flag, _INT32)
    _check_range("version", cmd.version, _INT32)
    header = _encode_json(cmd) if cmd.serialize_type is SerializeType.JSON else _encode_binary(cmd)
    if len(header) > 0xFFFFFF:
        raise ValueError(f"header of {len(header)} bytes does not fit the 24-bit length field")
    total = 4 + len(header) + len(cmd.body)
    if total > _INT32[1]:
        raise ValueError(f"frame of {total} bytes does not fit the 32-bit length field")
    return _PREFIX.pack(total, (int(cmd.serialize_type) << 24) | len(header)) + header + cmd.body


def _check_range(name: str, value: int, bounds: tuple[int, int]) -> None:
    if not bounds[0] <= value <= bounds[1]:
        raise ValueError(f"{name}={value} is outside {bounds[0]}..{bounds[1]}")


def _encode_json(cmd: RemotingCommand) -> bytes:
    header: dict[str, Any] = {"code": cmd.code, "flag": cmd.flag, "language": cmd.language,
                              "opaque": cmd.opaque, "version": cmd.version}
    if cmd.remark is not None:
        header["remark"] = cmd.remark
    if cmd.ext_fields:
        header["extFields"] = cmd.ext_fields
    return json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()


def _encode_binary(cmd: RemotingCommand) -> bytes:
    _check_range("code", cmd.code, _INT16)
    _check_range("version", cmd.version, _INT16)
    parts = [_BINARY_FIXED.pack(cmd.code, LanguageCode[cmd.language], cmd.version, cmd.opaque, cmd.flag)]
    remark = (cmd.remark or "").encode()
    parts.append(struct.pack(">i", len(remark)) + remark)
    ext = bytearray()
    for key, value in cmd.ext_fields.items():
        k, v = key.encode(), value.encode()
        if len(k) > _INT16[1]:
            raise ValueError(f"ext field name of {len(k)} bytes does not fit a 16-bit length")
        ext += struct.pack(">h", len(k)) + k + struct.pack(">i", len(v)) + v
    parts.append(struct.pack(">i", len(ext)) + bytes(ext))
    return b"".join(parts)


def decode_frame(frame: bytes, serialize_type: int, header_length: int) -> RemotingCommand:
    """Decode one frame's content (everything after the total-length prefix and the type/length word)."""
    if header_length > len(frame):
        raise MalformedFrame(f"header length {header_length} exceeds the {len(frame)} bytes of the frame")
    header, body = frame[:header_length], frame[header_length:]
    if serialize_type == SerializeType.JSON:
        cmd = _decode_json(header)
    elif serialize_type == SerializeType.ROCKETMQ:
        cmd = _decode_binary(header)
    else:
        raise MalformedHeader(f"unknown serialize type {serialize_type}")
    cmd.body = bytes(body)
    return cmd


def _decode_json(header: bytes) -> RemotingCommand:
    try:
        raw = json.loads(header)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, bad UTF-8, over-long integers
        raise MalformedHeader(f"JSON header does not parse: {exc}") from None
    if not isinstance(raw, dict):
        raise MalformedHeader("JSON header is not an object")
    ext = raw.get("extFields")
    if ext is None:
        ext = {}
    if not isinstance(ext, dict) or not all(isinstance(v, str) or v is None for v in ext.values()):
        raise MalformedHeader("extFields is not an object of strings")
    language = raw.get("language", LanguageCode.OTHER.name)
    remark = raw.get("remark")
    if not isinstance(language, str) or not (remark is None or isinstance(remark, str)):
        raise MalformedHeader("language/remark are not strings")
    return RemotingCommand(
        code=_json_int(raw, "code", required=True), opaque=_json_int(raw, "opaque"), flag=_json_int(raw, "flag"),
        language=language, version=_json_int(raw, "version"), remark=remark,
        ext_fields={k: v for k, v in ext.items() if v is not None}, serialize_type=SerializeType.JSON)


def _json_int(raw: dict[str, Any], key: str, *, required: bool = False) -> int:
    value = raw.get(key)
    if value is None and not required:
        return 0
    if type(value) is not int or not _INT32[0] <= value <= _INT32[1]:
        raise MalformedHeader(f"header field {key!r} is not a 32-bit integer: {value!r}")
    return value


def _decode_binary(header: bytes) -> RemotingCommand:
    reader = _Reader(header)
    code, language, version, opaque, flag = reader.unpack(_BINARY_FIXED)
    try:
        language_name = LanguageCode(language).name
    except ValueError:
        raise MalformedHeader(f"unknown language byte {language}") from None
    remark = reader.string(reader.int32())
    ext: dict[str, str] = {}
    ext_length = reader.int32()
    end = reader.pos + ext_length
    if end > len(header):
        raise MalformedHeader("extFields length runs past the header")
    while reader.pos < end:
        key = reader.string(reader.int16())
        ext[key] = reader.string(reader.int32())
    if reader.pos != end:
        raise MalformedHeader("extFields entries overrun their declared length")
    return RemotingCommand(code=code, opaque=opaque, flag=flag, language=language_name, version=version,
                           remark=remark or None, ext_fields=ext, serialize_type=SerializeType.ROCKETMQ)


class _Reader:
    """Bounds-checked cursor over a binary header."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise MalformedHeader(f"binary header truncated: need {n} bytes at {self.pos} of {len(self.data)}")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def unpack(self, layout: struct.Struct) -> tuple[Any, ...]:
        return layout.unpack(self.take(layout.size))

    def int16(self) -> int:
        value: int = struct.unpack(">h", self.take(2))[0]
        return value

    def int32(self) -> int:
        value: int = struct.unpack(">i", self.take(4))[0]
        return value

    def string(self, length: int) -> str:
        try:
            return self.take(length).decode()
        except UnicodeDecodeError as exc:
            raise MalformedHeader(f"binary header string is not UTF-8: {exc}") from None


class FrameDecoder:
    """Incremental decoder: feed it whatever the socket returned, get back every completed command.

    A frame's length is checked against `max_frame_size` as soon as its 4-byte prefix arrives, so the
    buffer never holds more than one capped frame plus the last chunk fed. After a ProtocolError the
    stream position is lost; the decoder keeps raising and the connection must be dropped.
    """

    def __init__(self, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> None:
        if max_frame_size < 8:
            raise ValueError("max_frame_size must leave room for the two length words")
        self.max_frame_size = max_frame_size
        self._buffer = bytearray()
        self._failure: Exception | None = None

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def feed(self, data: bytes) -> list[RemotingCommand]:
        if self._failure is not None:
            raise self._failure
        self._buffer += data
        try:
            return list(self._drain())
        except ProtocolError as exc:
            self._failure = exc
            self._buffer = bytearray()
            raise

    def _drain(self) -> Iterator[RemotingCommand]:
        start = 0
        buffer = self._buffer
        try:
            while len(buffer) - start >= 4:
                total = int.from_bytes(buffer[start:start + 4], "big", signed=True)
                if total + 4 > self.max_frame_size:
                    raise FrameTooLarge(f"frame of {total + 4} bytes exceeds the {self.max_frame_size}-byte cap")
                if total < 4:
                    raise MalformedFrame(f"frame length {total} cannot hold the header-length word")
                if len(buffer) - start < 4 + total:
                    break
                mark = int.from_bytes(buffer[start + 4:start + 8], "big")
                frame = bytes(buffer[start + 8:start + 4 + total])
                start += 4 + total
                yield decode_frame(frame, mark >> 24, mark & 0xFFFFFF)
        finally:
            del buffer[:start]
