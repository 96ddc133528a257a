"""Stored-message records, properties and ids, checked against records captured from real brokers."""

import re
import struct
import zlib
from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from remoting_support import captured_command

from rocketmq_retry.remoting.errors import MalformedMessage, UnsupportedCompression
from rocketmq_retry.remoting.message import (
    MAGIC_V1,
    MAGIC_V2,
    HostPort,
    MessageExt,
    MessageIdGenerator,
    create_offset_msg_id,
    decode_messages,
    decode_properties,
    encode_message,
    encode_properties,
)


def test_4_9_7_record_decodes_and_re_encodes_byte_for_byte() -> None:
    body = captured_command("v497_pull_response").body
    [message] = decode_messages(body)
    assert (message.topic, message.body, message.queue_id, message.queue_offset) == (
        "scratch_topic_msg", b"hello retry", 0, 0)
    assert message.properties["TAGS"] == "tagA"
    assert message.properties["KEYS"] == "k1 k2"
    assert message.store_host == HostPort("127.0.0.1", 31911)
    assert message.offset_msg_id == "7F00000100007CA70000000000000000"  # the send response's msgId
    assert message.msg_id == message.properties["UNIQ_KEY"]
    assert encode_message(message) == body  # also proves the body CRC formula


def test_5_5_0_record_has_a_trailing_property_separator_that_decoding_ignores() -> None:
    body = captured_command("v550_pull_response").body
    [message] = decode_messages(body)
    assert body.endswith(b"TRACE_ON\x01true\x02")
    assert message.properties["CLUSTER"] == "bed"
    assert message.tags == "tagA"
    assert message.offset_msg_id == "7F000001000051AF0000000000000000"
    assert decode_messages(encode_message(message)) == [message]


def test_zlib_compressed_record_from_5_5_0_is_inflated() -> None:
    [message] = decode_messages(captured_command("v550_zlib_pull_response").body)
    assert message.sys_flag == 0x301
    assert message.body == b"x" * 5000


@pytest.mark.parametrize(("compression", "name"), [(1, "LZ4"), (2, "ZSTD")])
def test_lz4_and_zstd_bodies_raise_unsupported_compression(compression: int, name: str) -> None:
    record = bytearray(encode_message(MessageExt(topic="T", body=b"x")))
    record[36:40] = struct.pack(">i", 0x1 | compression << 8)
    with pytest.raises(UnsupportedCompression, match=name):
        decode_messages(bytes(record))


def test_inflation_is_capped() -> None:
    record = encode_message(MessageExt(topic="T", body=b"\0" * 100_000, sys_flag=0x301))
    assert len(decode_messages(record)[0].body) == 100_000
    with pytest.raises(MalformedMessage, match="beyond"):
        decode_messages(record, max_body_size=1000)


@pytest.mark.parametrize("cut", [1, 20, 60, 100])
def test_truncated_records_raise_malformed_message(cut: int) -> None:
    record = captured_command("v497_pull_response").body
    with pytest.raises(MalformedMessage):
        decode_messages(record[:-cut])


def test_size_field_must_match_the_fields_read() -> None:
    record = bytearray(encode_message(MessageExt(topic="T", body=b"x")) + b"\0\0")
    record[0:4] = struct.pack(">i", len(record))
    with pytest.raises(MalformedMessage, match="declares"):
        decode_messages(bytes(record))


def test_property_decoding_has_javas_leniency() -> None:
    assert decode_properties("a\x01b\x02\x02c\x01\x02\x01d\x02e\x02f\x01g\x01h") == {"a": "b", "f": "g\x01h"}


def test_property_encoding_refuses_separators_and_drops_empty_values() -> None:
    assert encode_properties({"a": "1", "b": ""}) == "a\x011"
    with pytest.raises(ValueError, match="separator"):
        encode_properties({"a\x02": "1"})


def test_offset_msg_id_for_ipv6_store_host() -> None:
    assert create_offset_msg_id(HostPort("::1", 10911), 255) == "0" * 30 + "01" + "00002A9F" + "00000000000000FF"


def test_generated_msg_ids_follow_the_java_layout() -> None:
    now = datetime(2026, 3, 4, 5, 6, 7).timestamp()
    generator = MessageIdGenerator(bytes([10, 1, 2, 3]), clock=lambda: now)
    first, second = generator.next_id(), generator.next_id()
    assert re.fullmatch(r"0A010203[0-9A-F]{24}", first)
    elapsed = int((now - datetime(2026, 3, 1).timestamp()) * 1000)
    assert first[20:28] == f"{elapsed:08X}"
    assert (first[28:], second[28:]) == ("0000", "0001")
    assert first[:20] == second[:20]


_hosts = st.builds(HostPort, st.ip_addresses().map(str), st.integers(-(2**31), 2**31 - 1))
_property_text = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x01\x02"), min_size=1,
                         max_size=12)


@st.composite
def messages(draw: st.DrawFn) -> MessageExt:
    magic = draw(st.sampled_from([MAGIC_V1, MAGIC_V2]))
    topic = draw(st.text(st.characters(exclude_categories=["Cs"]), max_size=200 if magic == MAGIC_V2 else 30))
    int32, int64 = st.integers(-(2**31), 2**31 - 1), st.integers(-(2**63), 2**63 - 1)
    compression = draw(st.sampled_from([0, 0x1, 0x301]))
    return MessageExt(
        topic=topic, body=draw(st.binary(max_size=300)),
        properties=draw(st.dictionaries(_property_text, _property_text, max_size=5)),
        queue_id=draw(int32), flag=draw(int32), queue_offset=draw(int64), commit_log_offset=draw(int64),
        sys_flag=compression | draw(st.sampled_from([0, 0x2, 0x4, 0x8])), born_timestamp=draw(int64),
        born_host=draw(_hosts), store_timestamp=draw(int64), store_host=draw(_hosts),
        reconsume_times=draw(int32), prepared_transaction_offset=draw(int64), magic=magic)


def _normalised(message: MessageExt) -> MessageExt:
    """What decoding returns: host-family bits are derived from the hosts."""
    message.sys_flag |= (0x10 if message.born_host.is_v6 else 0) | (0x20 if message.store_host.is_v6 else 0)
    return message


@settings(deadline=None)
@given(st.lists(messages(), min_size=1, max_size=3))
def test_every_message_shape_round_trips(batch: list[MessageExt]) -> None:
    encoded = b"".join(encode_message(m) for m in batch)
    assert decode_messages(encoded) == [_normalised(m) for m in batch]


@settings(deadline=None)
@given(messages())
def test_stored_body_crc_is_javas_masked_crc32(message: MessageExt) -> None:
    record = encode_message(message)
    stored = zlib.compress(message.body) if message.sys_flag & 1 else message.body
    assert struct.unpack_from(">i", record, 8)[0] == zlib.crc32(stored) & 0x7FFFFFFF
