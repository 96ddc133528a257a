"""fastjson leniency: bare integer object keys are accepted, string contents are never rewritten."""

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from remoting_support import captured_command

from rocketmq_retry.remoting.errors import MalformedBody
from rocketmq_retry.remoting.fastjson import loads, loads_member, loads_object


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


def test_one_member_is_read_past_members_keyed_by_objects() -> None:
    body = captured_command("v550_consumer_running_info_response").body
    with pytest.raises(MalformedBody):
        loads(body)  # mqTable's keys are MessageQueue objects
    assert loads_member(body, "properties")["maxReconsumeTimes"] == "5"


@pytest.mark.parametrize(("text", "expected"), [
    ('{"a":{"properties":1},"properties":{"k":"}\\"{"}}', {"k": '}"{'}),
    ('{"a":"\\"properties\\":2"}', None),
    ('{{"x":1}:2, "properties" : [1, {"y": 2}] }', [1, {"y": 2}]),
    ('{"properties":"v"}', "v"),
])
def test_only_the_top_level_member_counts_and_strings_are_skipped(text: str, expected: Any) -> None:
    assert loads_member(text, "properties") == expected


@pytest.mark.parametrize("bad", [b'{"properties":{"a":', b'{"properties":"open', b"\xff"])
def test_a_malformed_member_raises_malformed_body(bad: bytes) -> None:
    with pytest.raises(MalformedBody):
        loads_member(bad, "properties")
