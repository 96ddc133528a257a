"""Frame codec: real captured frames, error cases, and round-trips of every command shape."""

import json
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from remoting_support import captured, captured_command

from rocketmq_retry.remoting.codes import CommandFlag, LanguageCode, ResponseCode, SerializeType
from rocketmq_retry.remoting.errors import FrameTooLarge, MalformedFrame, MalformedHeader, ProtocolError
from rocketmq_retry.remoting.frame import FrameDecoder, RemotingCommand, encode


def test_json_request_layout_matches_the_java_framing() -> None:
    frame = encode(RemotingCommand(code=105, opaque=7, ext_fields={"topic": "T"}, body=b"xy"))
    total, mark = struct.unpack(">iI", frame[:8])
    header = json.loads(frame[8:8 + (mark & 0xFFFFFF)])
    assert total == len(frame) - 4
    assert mark >> 24 == SerializeType.JSON
    assert header == {"code": 105, "flag": 0, "language": "PYTHON", "opaque": 7, "version": 513,
                      "extFields": {"topic": "T"}}
    assert frame.endswith(b"xy")


def test_captured_5_5_0_cluster_info_response() -> None:
    command = captured_command("v550_cluster_info_response")
    assert (command.code, command.opaque, command.language, command.version) == (0, 7, "JAVA", 513)
    assert command.is_response
    assert not command.is_oneway
    assert b'"brokerAddrs":{0:"127.0.0.1:20911"}' in command.body


def test_captured_4_9_7_error_response_keeps_the_remark() -> None:
    command = captured_command("v497_not_supported_response")
    assert command.code == ResponseCode.REQUEST_CODE_NOT_SUPPORTED
    assert command.remark == " request type 352 not supported"
    assert command.version == 407


def test_captured_binary_header_response_from_4_9_7() -> None:
    command = captured_command("v497_binary_header_response")
    assert command.serialize_type is SerializeType.ROCKETMQ
    assert (command.code, command.opaque, command.flag, command.ext_fields) == (0, 9, 1, {"offset": "0"})
    assert encode(command) == captured("v497_binary_header_response")


def test_5_5_0_answers_a_binary_request_in_json() -> None:
    command = captured_command("v550_max_offset_binary_request_json_response")
    assert command.serialize_type is SerializeType.JSON
    assert command.ext_fields == {"offset": "0"}


def test_decoder_reassembles_frames_fed_byte_by_byte() -> None:
    stream = captured("v550_cluster_info_response") + captured("v497_binary_header_response")
    decoder = FrameDecoder()
    commands = [command for i in range(len(stream)) for command in decoder.feed(stream[i:i + 1])]
    assert [c.opaque for c in commands] == [7, 9]
    assert decoder.buffered == 0


def test_oversized_frame_is_refused_from_its_length_prefix_alone() -> None:
    decoder = FrameDecoder(max_frame_size=1024)
    with pytest.raises(FrameTooLarge):
        decoder.feed(struct.pack(">i", 1021))
    with pytest.raises(FrameTooLarge):
        decoder.feed(b"")  # the stream position is lost: the decoder stays failed
    assert decoder.buffered == 0


def _frame(header: bytes, serialize_type: int = 0) -> bytes:
    return struct.pack(">iI", 4 + len(header), (serialize_type << 24) | len(header)) + header


@pytest.mark.parametrize(("frame", "error"), [
    (struct.pack(">iI", 3, 0), MalformedFrame),
    (struct.pack(">i", -5), MalformedFrame),
    (struct.pack(">iI", 6, 10) + b"{}", MalformedFrame),
    (_frame(b"{]"), MalformedHeader),
    (_frame(b"[]"), MalformedHeader),
    (_frame(b"{}", serialize_type=2), MalformedHeader),
    (_frame(b"{}"), MalformedHeader),
    (_frame(b'{"code":"0"}'), MalformedHeader),
    (_frame(b'{"code":true}'), MalformedHeader),
    (_frame(b'{"code":4294967296}'), MalformedHeader),
    (_frame(b'{"code":0,"extFields":{"a":1}}'), MalformedHeader),
    (_frame(b'{"code":0,"remark":7}'), MalformedHeader),
    (_frame(b'{"code":0,"remark":"\xff"}'), MalformedHeader),
    (_frame(b"\x00\x00\x00\x00", serialize_type=1), MalformedHeader),
    (_frame(struct.pack(">hbhiii", 0, 99, 0, 0, 0, 0) + struct.pack(">i", 0), serialize_type=1), MalformedHeader),
    (_frame(struct.pack(">hbhiii", 0, 0, 0, 0, 0, 0) + struct.pack(">ihB", 3, 1, 65), serialize_type=1),
     MalformedHeader),
], ids=["length-below-4", "negative-length", "header-longer-than-frame", "bad-json", "json-array",
        "unknown-serialize-type", "code-missing", "code-is-string", "code-is-bool", "code-beyond-int32",
        "ext-value-not-string", "remark-not-string", "header-not-utf8", "binary-truncated",
        "binary-unknown-language", "binary-ext-overrun"])
def test_malformed_frames_raise_specific_protocol_errors(frame: bytes, error: type[ProtocolError]) -> None:
    with pytest.raises(error):
        FrameDecoder().feed(frame)


@pytest.mark.parametrize("cmd", [
    RemotingCommand(code=2**31), RemotingCommand(code=70000, serialize_type=SerializeType.ROCKETMQ),
    RemotingCommand(code=1, opaque=-(2**31) - 1),
])
def test_encode_refuses_values_the_wire_cannot_carry(cmd: RemotingCommand) -> None:
    with pytest.raises(ValueError, match="outside"):
        encode(cmd)


def test_response_helper_echoes_the_opaque() -> None:
    request = RemotingCommand(code=40, opaque=99, flag=CommandFlag.ONEWAY)
    response = request.response(ResponseCode.SYSTEM_ERROR, "boom")
    assert (response.opaque, response.is_response, response.code, response.remark) == (99, True, 1, "boom")


_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)
_int32 = st.integers(-(2**31), 2**31 - 1)
_int16 = st.integers(-(2**15), 2**15 - 1)
_languages = st.sampled_from([language.name for language in LanguageCode])


@st.composite
def commands(draw: st.DrawFn) -> RemotingCommand:
    serialize_type = draw(st.sampled_from(SerializeType))
    binary = serialize_type is SerializeType.ROCKETMQ
    remark = draw(st.none() | (_text.filter(bool) if binary else _text))
    return RemotingCommand(
        code=draw(_int16 if binary else _int32), opaque=draw(_int32), flag=draw(_int32),
        language=draw(_languages if binary else _languages | _text), version=draw(_int16 if binary else _int32),
        remark=remark, ext_fields=draw(st.dictionaries(_text, _text, max_size=6)),
        body=draw(st.binary(max_size=200)), serialize_type=serialize_type)


@settings(deadline=None)
@given(commands())
def test_every_command_round_trips(command: RemotingCommand) -> None:
    assert FrameDecoder().feed(encode(command)) == [command]


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.lists(commands(), min_size=1, max_size=4), st.data())
def test_any_chunking_of_a_stream_yields_the_same_commands(batch: list[RemotingCommand], data: st.DataObject) -> None:
    stream = b"".join(encode(c) for c in batch)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    decoder = FrameDecoder()
    decoded = [c for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True) for c in decoder.feed(stream[a:b])]
    assert decoded == batch
