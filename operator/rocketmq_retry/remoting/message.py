"""Stored-message records (PULL_MESSAGE bodies), message properties and message ids, pure.

Layout follows MessageDecoder in the Java sources: a fixed 48-byte prefix, hosts of 4 or 16 address
bytes chosen by sys-flag bits, a 1-byte (V1 magic) or 2-byte (V2 magic) topic length and a 2-byte
properties length. Records are parsed strictly sequentially, as Java does, and the declared total
size must match what was read.
"""

import ipaddress
import itertools
import os
import struct
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from .codes import CompressionType, MessageSysFlag
from .errors import MalformedMessage, UnsupportedCompression
from .frame import DEFAULT_MAX_FRAME_SIZE

MAGIC_V1 = -626843481
MAGIC_V2 = -626843477
NAME_VALUE_SEPARATOR = "\x01"
PROPERTY_SEPARATOR = "\x02"

PROPERTY_UNIQ_KEY = "UNIQ_KEY"
PROPERTY_TAGS = "TAGS"
PROPERTY_KEYS = "KEYS"
PROPERTY_RETRY_TOPIC = "RETRY_TOPIC"
PROPERTY_ORIGIN_MESSAGE_ID = "ORIGIN_MESSAGE_ID"
PROPERTY_DELAY_LEVEL = "DELAY"
PROPERTY_RECONSUME_TIME = "RECONSUME_TIME"
PROPERTY_MAX_RECONSUME_TIMES = "MAX_RECONSUME_TIMES"
PROPERTY_DLQ_ORIGIN_TOPIC = "DLQ_ORIGIN_TOPIC"  # 5.x pop consumers' dead letters
PROPERTY_DLQ_ORIGIN_MESSAGE_ID = "DLQ_ORIGIN_MSG_ID"

# size, magic, body CRC, queue id, flag, queue offset, commit-log offset, sys flag, born timestamp
_PREFIX = struct.Struct(">iiiiiqqiq")
# reconsume times, prepared transaction offset, body length
_MIDDLE = struct.Struct(">iqi")
_INT64 = struct.Struct(">q")
_INT32 = struct.Struct(">i")
_INT16 = struct.Struct(">h")
_INT8 = struct.Struct(">b")


class HostPort(NamedTuple):
    host: str
    port: int

    @property
    def packed(self) -> bytes:
        return ipaddress.ip_address(self.host).packed

    @property
    def is_v6(self) -> bool:
        return ipaddress.ip_address(self.host).version == 6

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if self.is_v6 else f"{self.host}:{self.port}"


UNKNOWN_HOST = HostPort("0.0.0.0", 0)  # noqa: S104 - a placeholder address, nothing binds to it


@dataclass(slots=True)
class MessageExt:
    """A message as stored by the broker. `body` is always the uncompressed payload."""

    topic: str
    body: bytes
    properties: dict[str, str] = field(default_factory=dict)
    queue_id: int = 0
    flag: int = 0
    queue_offset: int = 0
    commit_log_offset: int = 0
    sys_flag: int = 0
    born_timestamp: int = 0
    born_host: HostPort = UNKNOWN_HOST
    store_timestamp: int = 0
    store_host: HostPort = UNKNOWN_HOST
    reconsume_times: int = 0
    prepared_transaction_offset: int = 0
    magic: int = MAGIC_V1

    @property
    def offset_msg_id(self) -> str:
        return create_offset_msg_id(self.store_host, self.commit_log_offset)

    @property
    def msg_id(self) -> str:
        """The id the Java client reports: the producer's UNIQ_KEY, else the store-position id."""
        return self.properties.get(PROPERTY_UNIQ_KEY) or self.offset_msg_id

    @property
    def tags(self) -> str | None:
        return self.properties.get(PROPERTY_TAGS)


def encode_properties(properties: Mapping[str, str]) -> str:
    """`k\\x01v\\x02k\\x01v`. Empty values are left out because every decoder (Java's too) drops them."""
    for key, value in properties.items():
        if not key or any(sep in key or sep in value for sep in (NAME_VALUE_SEPARATOR, PROPERTY_SEPARATOR)):
            raise ValueError(f"property {key!r} is empty or contains a separator character")
    return PROPERTY_SEPARATOR.join(f"{k}{NAME_VALUE_SEPARATOR}{v}" for k, v in properties.items() if v)


def decode_properties(text: str) -> dict[str, str]:
    """Inverse of encode_properties with Java's leniency: pieces without a key or value are skipped."""
    result: dict[str, str] = {}
    for piece in text.split(PROPERTY_SEPARATOR):
        key, sep, value = piece.partition(NAME_VALUE_SEPARATOR)
        if key and sep and value:
            result[key] = value
    return result


def create_offset_msg_id(store_host: HostPort, commit_log_offset: int) -> str:
    """Upper-case hex of store IP, port (int32) and commit-log offset (int64), as the broker reports it."""
    return (store_host.packed + struct.pack(">iq", store_host.port, commit_log_offset)).hex().upper()


def decode_messages(data: bytes, *, max_body_size: int = DEFAULT_MAX_FRAME_SIZE) -> list[MessageExt]:
    """Every record of a PULL_MESSAGE body. Compressed bodies are inflated up to `max_body_size` bytes."""
    messages = []
    view = memoryview(data)
    pos = 0
    while pos < len(data):
        message, pos = _decode_one(view, pos, max_body_size)
        messages.append(message)
    return messages


class _Cursor:
    def __init__(self, data: memoryview, pos: int, end: int) -> None:
        self.data, self.pos, self.end = data, pos, end

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > self.end:
            raise MalformedMessage(f"record truncated: need {n} bytes at offset {self.pos}, record ends at {self.end}")
        chunk = bytes(self.data[self.pos:self.pos + n])
        self.pos += n
        return chunk

    def unpack(self, layout: struct.Struct) -> tuple[int, ...]:
        values: tuple[int, ...] = layout.unpack(self.take(layout.size))
        return values

    def host(self, v6: bool) -> HostPort:
        address = ipaddress.ip_address(self.take(16 if v6 else 4))
        (port,) = self.unpack(_INT32)
        return HostPort(str(address), port)


def _decode_one(data: memoryview, start: int, max_body_size: int) -> tuple[MessageExt, int]:
    cursor = _Cursor(data, start, len(data))
    size, magic, _crc, queue_id, flag, queue_offset, commit_offset, sys_flag, born_ts = cursor.unpack(_PREFIX)
    if magic not in (MAGIC_V1, MAGIC_V2):
        raise MalformedMessage(f"unknown magic code {magic:#x} at offset {start}")
    if size < _PREFIX.size or start + size > len(data):
        raise MalformedMessage(f"record size {size} at offset {start} does not fit the {len(data)}-byte body")
    cursor.end = start + size
    born_host = cursor.host(bool(sys_flag & MessageSysFlag.BORNHOST_V6))
    (store_ts,) = cursor.unpack(_INT64)
    store_host = cursor.host(bool(sys_flag & MessageSysFlag.STOREHOST_V6))
    reconsume_times, prepared_offset, body_length = cursor.unpack(_MIDDLE)
    body = cursor.take(body_length)
    if sys_flag & MessageSysFlag.COMPRESSED:
        body = _inflate(body, sys_flag, max_body_size)
    (topic_length,) = cursor.unpack(_INT16 if magic == MAGIC_V2 else _INT8)
    topic = cursor.take(topic_length).decode(errors="replace")
    (properties_length,) = cursor.unpack(_INT16)
    properties = decode_properties(cursor.take(properties_length).decode(errors="replace"))
    if cursor.pos != cursor.end:
        raise MalformedMessage(f"record at offset {start} declares {size} bytes but holds {cursor.pos - start}")
    message = MessageExt(
        topic=topic, body=body, properties=properties, queue_id=queue_id, flag=flag, queue_offset=queue_offset,
        commit_log_offset=commit_offset, sys_flag=sys_flag, born_timestamp=born_ts, born_host=born_host,
        store_timestamp=store_ts, store_host=store_host, reconsume_times=reconsume_times,
        prepared_transaction_offset=prepared_offset, magic=magic)
    return message, cursor.end


def _compression(sys_flag: int) -> CompressionType:
    value = (sys_flag & MessageSysFlag.COMPRESSION_TYPE_MASK) >> 8
    if value not in (CompressionType.LEGACY_ZLIB, CompressionType.ZLIB):
        raise UnsupportedCompression(value)
    return CompressionType(value)


def _inflate(body: bytes, sys_flag: int, max_body_size: int) -> bytes:
    _compression(sys_flag)
    inflater = zlib.decompressobj()
    try:
        plain = inflater.decompress(body, max_body_size)
    except zlib.error as exc:
        raise MalformedMessage(f"compressed body does not inflate: {exc}") from None
    if inflater.unconsumed_tail:
        raise MalformedMessage(f"compressed body inflates beyond {max_body_size} bytes")
    if not inflater.eof:
        raise MalformedMessage("compressed body is truncated")
    return plain


def encode_message(message: MessageExt) -> bytes:
    """The stored record for `message` (the broker's side of decode_messages; used to build test data).

    Host sys-flag bits follow the host addresses; a COMPRESSED flag deflates the body with zlib.
    """
    sys_flag = message.sys_flag & ~(MessageSysFlag.BORNHOST_V6 | MessageSysFlag.STOREHOST_V6)
    sys_flag |= MessageSysFlag.BORNHOST_V6 if message.born_host.is_v6 else 0
    sys_flag |= MessageSysFlag.STOREHOST_V6 if message.store_host.is_v6 else 0
    body = message.body
    if sys_flag & MessageSysFlag.COMPRESSED:
        _compression(sys_flag)
        body = zlib.compress(body)
    topic = message.topic.encode()
    properties = encode_properties(message.properties).encode()
    topic_layout = _INT16 if message.magic == MAGIC_V2 else _INT8
    if len(topic) > 2 ** (8 * topic_layout.size - 1) - 1 or len(properties) > 32767:
        raise ValueError("topic or properties too long for their length fields")
    tail = b"".join([
        _host(message.born_host), _INT64.pack(message.store_timestamp), _host(message.store_host),
        _MIDDLE.pack(message.reconsume_times, message.prepared_transaction_offset, len(body)), body,
        topic_layout.pack(len(topic)), topic, _INT16.pack(len(properties)), properties])
    size = _PREFIX.size + len(tail)
    prefix = _PREFIX.pack(size, message.magic, zlib.crc32(body) & 0x7FFFFFFF, message.queue_id, message.flag,
                          message.queue_offset, message.commit_log_offset, sys_flag, message.born_timestamp)
    return prefix + tail


def _host(host: HostPort) -> bytes:
    return host.packed + _INT32.pack(host.port)


class MessageIdGenerator:
    """Client message ids (UNIQ_KEY) in the Java client's layout, so tools that parse them still work.

    32 hex chars: IPv4 (4 B) | pid (2 B) | an instance-random int standing in for the class-loader hash
    (4 B) | milliseconds since the start of the current local month (4 B) | counter (2 B). Without an
    explicit `ip`, 4 random bytes are used (as Java does when it finds no address): ids only need to
    be unique, and looking up the host's address could block on DNS.
    """

    def __init__(self, ip: bytes | None = None, *, clock: Callable[[], float] = time.time) -> None:
        ip = os.urandom(4) if ip is None else ip
        if len(ip) not in (4, 16):
            raise ValueError("ip must be 4 or 16 bytes")
        self._prefix = (ip + struct.pack(">H", os.getpid() & 0xFFFF) + os.urandom(4)).hex().upper()
        self._clock = clock
        self._counter = itertools.count()

    def next_id(self) -> str:
        now = self._clock()
        month_start = datetime.fromtimestamp(now).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        elapsed = int((now - month_start.timestamp()) * 1000)
        return self._prefix + struct.pack(">iH", elapsed, next(self._counter) & 0xFFFF).hex().upper()
