"""Which dead letters a redrive, a dry run or an export takes, pure: the selector of `spec.redrive.selector` and of
`rocketmq-retry dlq list|export`.

Fields combine with AND, the values of one field with OR; an empty selector takes every dead letter. Store times
are the dead letter's own, when the broker stored it in `%DLQ%<group>`: the moment the message ran out of retries,
which is what a user correlates with an incident or a fix. A message id matches the id clients report (UNIQ_KEY),
the store-position id, or the id of the message first sent (ORIGIN_MESSAGE_ID), whichever the user copied.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from rocketmq_retry.domain.jsontypes import JsonObject, JsonValue
from rocketmq_retry.domain.spec import Problems
from rocketmq_retry.domain.timestamps import format_timestamp, parse_timestamp
from rocketmq_retry.remoting.message import PROPERTY_KEYS, PROPERTY_ORIGIN_MESSAGE_ID, MessageExt

MESSAGE_ID_PATTERN: Final = r"^[0-9A-Fa-f]{32}([0-9A-Fa-f]{24})?$"  # 16 bytes (UNIQ_KEY, IPv4 offset id) or 28 (IPv6)
MAX_IDS: Final = 1000
MAX_VALUES: Final = 100  # tags or keys
VALUE_MAX_LENGTH: Final = 255
_MESSAGE_ID = re.compile(MESSAGE_ID_PATTERN)


@dataclass(frozen=True)
class Selector:
    message_ids: frozenset[str] = field(default_factory=frozenset)  # upper case, as brokers and clients print them
    tags: frozenset[str] = field(default_factory=frozenset)
    keys: frozenset[str] = field(default_factory=frozenset)
    stored_after: datetime | None = None  # inclusive
    stored_before: datetime | None = None  # exclusive

    @property
    def everything(self) -> bool:
        return self == Selector()

    def matches(self, message: MessageExt) -> bool:
        if self.message_ids and self.message_ids.isdisjoint(message_ids(message)):
            return False
        if self.tags and message.tags not in self.tags:
            return False
        if self.keys and self.keys.isdisjoint(message_keys(message)):
            return False
        stored = store_time(message)
        if self.stored_after is not None and stored < self.stored_after:
            return False
        return self.stored_before is None or stored < self.stored_before

    def why_nothing(self, scanned: int, now: datetime, absent_ids: frozenset[str] | set[str] = frozenset()) -> str:
        """Why a scan of `scanned` pending dead letters selected none, for a run's message."""
        if scanned == 0:
            return "no dead letter was pending"
        reasons = []
        if self.stored_after is not None and self.stored_after > now:
            reasons.append(f"storedAfter {format_timestamp(self.stored_after)} is in the future")
        if absent_ids:
            shown = ", ".join(sorted(absent_ids)[:5]) + (", ..." if len(absent_ids) > 5 else "")
            reasons.append(f"{len(absent_ids)} of {len(self.message_ids)} message id(s) are not pending ({shown})")
        because = "; ".join(reasons) if reasons else f"none matched {self.describe()}"
        return f"none of the {scanned} pending dead letter(s) was selected: {because}"

    def describe(self) -> str:
        parts = [f"{name} {', '.join(sorted(values))}" for name, values in
                 (("ids", self.message_ids), ("tags", self.tags), ("keys", self.keys)) if values]
        if self.stored_after is not None:
            parts.append(f"stored from {format_timestamp(self.stored_after)}")
        if self.stored_before is not None:
            parts.append(f"stored before {format_timestamp(self.stored_before)}")
        return "; ".join(parts) or "every dead letter"

    def to_json(self) -> JsonObject:
        """The spec's form; only the fields set."""
        entry: dict[str, JsonValue] = {"messageIds": list[JsonValue](sorted(self.message_ids)),
                                       "tags": list[JsonValue](sorted(self.tags)),
                                       "keys": list[JsonValue](sorted(self.keys)),
                                       "storedAfter": _format(self.stored_after),
                                       "storedBefore": _format(self.stored_before)}
        return {key: value for key, value in entry.items() if value}


def read_selector(raw: object, path: str, problems: Problems) -> Selector | None:
    """The selector at `path` of a spec, or None after adding every problem to `problems`."""
    selector = problems.mapping(raw, path)
    if selector is None:
        return None
    before = len(problems.items)
    ids = _strings(selector.get("messageIds"), f"{path}.messageIds", problems, MAX_IDS)
    for index, value in enumerate(ids):
        if not _MESSAGE_ID.fullmatch(value):
            problems.add(f"{path}.messageIds[{index}]", f"{value!r} is not a RocketMQ message id (32 or 56 hex digits)")
    tags = _strings(selector.get("tags"), f"{path}.tags", problems, MAX_VALUES)
    keys = _strings(selector.get("keys"), f"{path}.keys", problems, MAX_VALUES)
    after = _time(selector.get("storedAfter"), f"{path}.storedAfter", problems)
    stored_before = _time(selector.get("storedBefore"), f"{path}.storedBefore", problems)
    if after is not None and stored_before is not None and after >= stored_before:
        problems.add(f"{path}.storedBefore", f"{format_timestamp(stored_before)} is not after storedAfter "
                                             f"{format_timestamp(after)}: the window selects nothing")
    if len(problems.items) > before:
        return None
    return Selector(frozenset(value.upper() for value in ids), frozenset(tags), frozenset(keys), after,
                    stored_before)


def selector_from_json(raw: Mapping[str, Any]) -> Selector:
    """The selector a status recorded (written by `Selector.to_json`); ValueError otherwise."""
    problems = Problems()
    selector = read_selector(raw, "selector", problems)
    if selector is None:
        raise ValueError(str(problems.items))
    return selector


def message_ids(message: MessageExt) -> set[str]:
    ids = {message.msg_id, message.offset_msg_id}
    if origin := message.properties.get(PROPERTY_ORIGIN_MESSAGE_ID):
        ids.add(origin)
    return {value.upper() for value in ids}


def message_keys(message: MessageExt) -> list[str]:
    """Keys as the Java client joins them (MessageConst.KEY_SEPARATOR, a space)."""
    return [key for key in message.properties.get(PROPERTY_KEYS, "").split(" ") if key]


def store_time(message: MessageExt) -> datetime:
    return datetime.fromtimestamp(message.store_timestamp / 1000, UTC)


def _strings(raw: object, path: str, problems: Problems, limit: int) -> list[str]:
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(item, str) and 0 < len(item) <= VALUE_MAX_LENGTH
                                            for item in raw):
        problems.add(path, f"must be a list of non-empty strings of at most {VALUE_MAX_LENGTH} characters")
        return []
    if len(raw) > limit:
        problems.add(path, f"{len(raw)} values; at most {limit}")
        return []
    return list(raw)


def _time(raw: object, path: str, problems: Problems) -> datetime | None:
    if raw is None:
        return None
    try:
        if not isinstance(raw, str):
            raise ValueError
        return parse_timestamp(raw)
    except ValueError:
        problems.add(path, f"{raw!r} is not an RFC 3339 time with a zone, such as 2026-12-06T08:00:00Z")
        return None


def _format(moment: datetime | None) -> str | None:
    return None if moment is None else format_timestamp(moment)
