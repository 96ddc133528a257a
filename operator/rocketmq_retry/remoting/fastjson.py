"""Parse the JSON that RocketMQ servers write with fastjson, which is not always standard JSON.

fastjson writes `Map<Long, String>` keys bare (`{"brokerAddrs":{0:"127.0.0.1:10911"}}`), e.g. in
GET_BROKER_CLUSTER_INFO bodies, which `json.loads` rejects. One regular-expression pass quotes such
keys; string literals are matched first so their contents are never touched.
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


def loads_object(data: bytes | str) -> dict[str, Any]:
    """`loads` for bodies that must be a JSON object."""
    value = loads(data)
    if not isinstance(value, dict):
        raise MalformedBody(f"body is a JSON {type(value).__name__}, expected an object")
    return value
