"""Parse the JSON that RocketMQ servers write with fastjson, which is not always standard JSON.

fastjson writes `Map<Long, String>` keys bare (`{"brokerAddrs":{0:"127.0.0.1:10911"}}`), e.g. in
GET_BROKER_CLUSTER_INFO bodies, which `json.loads` rejects. One regular-expression pass quotes such
keys; string literals are matched first so their contents are never touched.

Maps keyed by objects are written with object keys (`{"mqTable":{{"brokerName":"b","queueId":0,"topic":"t"}:{…}}}`,
in consumer running info and consume stats), which no JSON parser reads; `loads_keyed` does.
"""

import json
import re
from typing import Any

from .errors import MalformedBody

_BARE_KEY = re.compile(r'("(?:[^"\\]|\\.)*")|([{,]\s*)(-?\d+)(\s*:)', re.DOTALL)


def _quote(match: re.Match[str]) -> str:
    if match.group(1) is not None:
        return match.group(1)
    return f'{match.group(2)}"{match.group(3)}"{match.group(4)}'


def loads(data: bytes | str) -> Any:
    """Standard JSON plus bare integer object keys; anything else malformed raises MalformedBody."""
    try:
        text = data.decode() if isinstance(data, bytes) else data
        return json.loads(_BARE_KEY.sub(_quote, text))
    except (ValueError, RecursionError) as exc:
        raise MalformedBody(f"body is not JSON: {exc}") from None


def loads_keyed(data: bytes | str) -> Any:
    """Parse a body whose maps may be keyed by objects (`{{"brokerName":"b","queueId":0,"topic":"t"}:{…}}`).

    An object key becomes a tuple of its (name, value) pairs, sorted by name, so `dict(key)` gives it back; bare
    integer keys become strings, as in `loads`. Meant for small bodies (consumer running info and stats, a few KiB):
    it runs in Python, where `loads` lets the C parser do the work.
    """
    try:
        text = data.decode() if isinstance(data, bytes) else data
    except ValueError as exc:
        raise MalformedBody(f"body is not text: {exc}") from None
    value, end = _value(text, _skip(text, 0), 0)
    if _skip(text, end) != len(text):
        raise MalformedBody(f"body has data after its value, at {end}")
    return value


_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?")
_SPACE = re.compile(r"[ \t\r\n]*")
_LITERALS = (("true", True), ("false", False), ("null", None))
_MAX_DEPTH = 64


def _skip(text: str, index: int) -> int:
    return _SPACE.match(text, index).end()  # type: ignore[union-attr]  # matches the empty string at worst


def _value(text: str, index: int, depth: int) -> tuple[Any, int]:
    if depth > _MAX_DEPTH:
        raise MalformedBody(f"body nests deeper than {_MAX_DEPTH}")
    if index >= len(text):
        raise MalformedBody("body ends inside a value")
    char = text[index]
    if char == "{":
        return _object(text, _skip(text, index + 1), depth + 1)
    if char == "[":
        return _array(text, _skip(text, index + 1), depth + 1)
    if char == '"':
        try:
            return json.decoder.scanstring(text, index + 1)  # type: ignore[attr-defined,no-any-return]
        except ValueError as exc:
            raise MalformedBody(f"bad string in body: {exc}") from None
    for literal, value in _LITERALS:
        if text.startswith(literal, index):
            return value, index + len(literal)
    number = _NUMBER.match(text, index)
    if number is None:
        raise MalformedBody(f"unexpected {char!r} in body at {index}")
    is_float = number.group(1) is not None or number.group(2) is not None
    return (float if is_float else int)(number.group()), number.end()


def _object(text: str, index: int, depth: int) -> tuple[dict[Any, Any], int]:
    result: dict[Any, Any] = {}
    if text.startswith("}", index):
        return result, index + 1
    while True:
        key, index = _value(text, index, depth)
        if isinstance(key, dict):
            if not all(isinstance(part, str | int | float | bool) or part is None for part in key.values()):
                raise MalformedBody(f"an object key holds more than plain values at {index}")
            key = tuple(sorted(key.items()))
        elif not isinstance(key, str):
            key = str(key)
        index = _skip(text, index)
        if not text.startswith(":", index):
            raise MalformedBody(f"expected ':' in body at {index}")
        result[key], index = _value(text, _skip(text, index + 1), depth)
        index, more = _after_member(text, index, "}")
        if not more:
            return result, index


def _array(text: str, index: int, depth: int) -> tuple[list[Any], int]:
    result: list[Any] = []
    if text.startswith("]", index):
        return result, index + 1
    while True:
        item, index = _value(text, index, depth)
        result.append(item)
        index, more = _after_member(text, index, "]")
        if not more:
            return result, index


def _after_member(text: str, index: int, closing: str) -> tuple[int, bool]:
    """After a member: where the next one starts and True, or where the container ended and False."""
    index = _skip(text, index)
    if text.startswith(",", index):
        return _skip(text, index + 1), True
    if text.startswith(closing, index):
        return index + 1, False
    raise MalformedBody(f"expected ',' or {closing!r} in body at {index}")


def loads_object(data: bytes | str) -> dict[str, Any]:
    """`loads` for bodies that must be a JSON object."""
    value = loads(data)
    if not isinstance(value, dict):
        raise MalformedBody(f"body is a JSON {type(value).__name__}, expected an object")
    return value
