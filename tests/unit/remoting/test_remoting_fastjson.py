"""fastjson leniency: bare integer object keys are accepted, string contents are never rewritten."""

import contextlib
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from remoting_support import captured_command

from rocketmq_retry.remoting.errors import MalformedBody
from rocketmq_retry.remoting.fastjson import loads, loads_keyed, loads_object


def test_captured_cluster_info_body_parses() -> None:
    body = loads_object(captured_command("v550_cluster_info_response").body)
    assert body["brokerAddrTable"]["broker-a"]["brokerAddrs"] == {"0": "127.0.0.1:20911"}


@pytest.mark.parametrize(("text", "expected"), [
    ('{0:"a", -1 : "b",\n 12:{3:[1,2]}}', {"0": "a", "-1": "b", "12": {"3": [1, 2]}}),
    ('{"s":"{0:\\"x\\", 1:2}"}', {"s": '{0:"x", 1:2}'}),
    ('{"s":"\\\\", 5:"t"}', {"s": "\\", "5": "t"}),
    ('[1, 2, {7:8}]', [1, 2, {"7": 8}]),
])
def test_bare_keys_are_quoted_and_strings_untouched(text: str, expected: Any) -> None:
    assert loads(text) == expected


@pytest.mark.parametrize("bad", [b"{0:}", b"\xff", b"[" * 100_000, b'{"a":1'])
def test_malformed_bodies_raise_malformed_body(bad: bytes) -> None:
    with pytest.raises(MalformedBody):
        loads(bad)


def test_non_object_body_is_refused_where_an_object_is_expected() -> None:
    with pytest.raises(MalformedBody, match="list"):
        loads_object(b"[]")


def _bare(value: Any) -> str:
    """Serialise like fastjson: integer-keyed maps are written with bare keys."""
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{_bare(v)}" if isinstance(k, int) else f"{json.dumps(k)}:{_bare(v)}"
                              for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_bare(v) for v in value) + "]"
    return json.dumps(value)


def _stringify(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _stringify(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_stringify(v) for v in value]
    return value


_leaves = st.none() | st.booleans() | st.integers() | st.text()
_documents = st.recursive(_leaves, lambda inner: st.lists(inner, max_size=4)
                          | st.dictionaries(st.integers() | st.text(), inner, max_size=4), max_leaves=20)


@settings(deadline=None)
@given(_documents)
def test_fastjson_style_documents_parse_to_their_string_keyed_equivalent(document: Any) -> None:
    assert loads(_bare(document)) == json.loads(json.dumps(_stringify(document)))


def test_maps_keyed_by_objects_are_read_with_tuple_keys() -> None:
    body = captured_command("v550_consumer_running_info_response").body
    with pytest.raises(MalformedBody):
        loads(body)  # mqTable's keys are MessageQueue objects
    parsed = loads_keyed(body)
    assert parsed["properties"]["maxReconsumeTimes"] == "5"
    queues = [dict(key) for key in parsed["mqTable"]]
    assert {"brokerName", "queueId", "topic"} == set(queues[0])
    assert "CapTopic" in {queue["topic"] for queue in queues}


@pytest.mark.parametrize(("text", "expected"), [
    ('{"a":{"b":[1,2.5,-3e2,true,false,null]}, 7 :"x"}', {"a": {"b": [1, 2.5, -300.0, True, False, None]}, "7": "x"}),
    ('{{"topic":"t","queueId":0}:{"brokerOffset":10}}', {(("queueId", 0), ("topic", "t")): {"brokerOffset": 10}}),
    ('{"s":"}\\"{\u00e9"}', {"s": '}"{é'}),
    (' [ ] ', []),
])
def test_keyed_bodies_parse_as_json_does_where_json_can(text: str, expected: Any) -> None:
    assert loads_keyed(text) == expected


@pytest.mark.parametrize("bad", [b'{"a":', b'{"a" 1}', b'{"a":1,}', b"[1 2]", b'{{"k":{"x":1}}:1}', b"\xff",
                                 b"[" * 100, b'{"a":1} x', b"tru", b'"open'])
def test_a_malformed_keyed_body_raises_malformed_body(bad: bytes) -> None:
    with pytest.raises(MalformedBody):
        loads_keyed(bad)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_only_ever_raise_malformed_body(data: bytes) -> None:
    with contextlib.suppress(MalformedBody):
        loads_keyed(data)
