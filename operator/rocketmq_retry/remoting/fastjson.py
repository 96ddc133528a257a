"""Parse the JSON that RocketMQ servers write with fastjson, which is not always standard JSON.

fastjson writes `Map<Long, String>` keys bare (`{"brokerAddrs":{0:"127.0.0.1:10911"}}`), e.g. in
GET_BROKER_CLUSTER_INFO bodies, which `json.loads` rejects. One regular-expression pass quotes such
keys; string literals are matched first so their contents are never touched.

Maps keyed by objects are written with object keys (`{"mqTable":{{"brokerName":"b","queueId":0,"topic":"t"}:{…}}}`,
in consumer running info), which no JSON parser reads; `loads_member` reads one member of such a body without
parsing the others.
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


def loads_member(data: bytes | str, key: str) -> Any:
    """The value of top-level member `key` of a JSON object whose other members need not be JSON; None if absent.

    Skips the other members by tracking strings and nesting only, so it runs in one pass over the text.
    """
    try:
        text = data.decode() if isinstance(data, bytes) else data
    except ValueError as exc:
        raise MalformedBody(f"body is not text: {exc}") from None
    wanted = json.dumps(key)
    depth, index, length = 0, 0, len(text)
    while index < length:
        char = text[index]
        if char == '"':
            end = _string_end(text, index)
            if depth == 1 and text[index:end] == wanted:
                colon = _skip_space(text, end)
                if colon < length and text[colon] == ":":
                    return loads(_one_value(text, _skip_space(text, colon + 1)))
            index = end
            continue
        if char in "{[":
            depth += 1
        elif char in "}]":
            depth -= 1
        index += 1
    return None


def _string_end(text: str, start: int) -> int:
    """The index just past the string literal that opens at `start`."""
    index = start + 1
    while index < len(text):
        if text[index] == "\\":
            index += 2
        elif text[index] == '"':
            return index + 1
        else:
            index += 1
    raise MalformedBody("unterminated string in body")


def _skip_space(text: str, index: int) -> int:
    while index < len(text) and text[index] in " \t\r\n":
        index += 1
    return index


def _one_value(text: str, start: int) -> str:
    """The text of the JSON value that begins at `start`, up to the comma or brace that ends it."""
    depth, index = 0, start
    while index < len(text):
        char = text[index]
        if char == '"':
            index = _string_end(text, index)
            continue
        if char in "{[":
            depth += 1
        elif char in "}]":
            if depth == 0:
                break
            depth -= 1
        elif char == "," and depth == 0:
            break
        index += 1
    return text[start:index]


def loads_object(data: bytes | str) -> dict[str, Any]:
    """`loads` for bodies that must be a JSON object."""
    value = loads(data)
    if not isinstance(value, dict):
        raise MalformedBody(f"body is a JSON {type(value).__name__}, expected an object")
    return value
