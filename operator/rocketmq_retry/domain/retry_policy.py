"""The broker's `groupRetryPolicy` JSON, to and from the spec's backoff.

On the broker a null sub-object means "use a default", and which default depends on the reader: the proxy hands gRPC
clients a default ExponentialRetryPolicy for `EXPONENTIAL` (GrpcClientSettingsManager) while
GroupRetryPolicy.getRetryPolicy falls back to the default CustomizedRetryPolicy. The operator therefore always writes
the sub-object in full, and compares policies by type plus the sub-object that type selects.
"""

from collections.abc import Mapping
from typing import TypeGuard

from rocketmq_retry.domain.broker import (
    DEFAULT_CUSTOMIZED_NEXT_MS,
    DEFAULT_EXPONENTIAL_INITIAL_MS,
    DEFAULT_EXPONENTIAL_MAX_MS,
    DEFAULT_EXPONENTIAL_MULTIPLIER,
)
from rocketmq_retry.domain.jsontypes import JsonObject
from rocketmq_retry.domain.spec import Backoff, CustomizedBackoff, ExponentialBackoff

CUSTOMIZED = "CUSTOMIZED"
EXPONENTIAL = "EXPONENTIAL"
_SUB_OBJECT = {CUSTOMIZED: "customizedRetryPolicy", EXPONENTIAL: "exponentialRetryPolicy"}
_EXPONENTIAL_FIELDS = {
    "initial": DEFAULT_EXPONENTIAL_INITIAL_MS,
    "max": DEFAULT_EXPONENTIAL_MAX_MS,
    "multiplier": DEFAULT_EXPONENTIAL_MULTIPLIER,
}

# What a broker holds for a group nobody configured: type CUSTOMIZED with the default ladder.
DEFAULT_GROUP_RETRY_POLICY: JsonObject = {"type": CUSTOMIZED}


def group_retry_policy_json(backoff: Backoff) -> JsonObject:
    """The `groupRetryPolicy` body for a backoff, with the selected sub-object spelled out."""
    if isinstance(backoff, CustomizedBackoff):
        return {"type": CUSTOMIZED, "customizedRetryPolicy": {"next": list(backoff.delays_ms)}}
    return {
        "type": EXPONENTIAL,
        "exponentialRetryPolicy": {"initial": backoff.initial_ms, "max": backoff.max_ms,
                                   "multiplier": backoff.multiplier},
    }


def grpc_backoff(raw: object) -> Backoff:
    """The backoff gRPC clients receive for a broker's `groupRetryPolicy` (absent = the broker's default)."""
    policy: Mapping[str, object] = raw if isinstance(raw, Mapping) else DEFAULT_GROUP_RETRY_POLICY
    if policy.get("type") == EXPONENTIAL:
        sub = policy.get(_SUB_OBJECT[EXPONENTIAL])
        values = {key: _long(sub, key, default) for key, default in _EXPONENTIAL_FIELDS.items()}
        return ExponentialBackoff(values["initial"], values["max"], values["multiplier"])
    sub = policy.get(_SUB_OBJECT[CUSTOMIZED])
    next_ms: object = sub.get("next") if isinstance(sub, Mapping) else None
    if next_ms is None:
        return CustomizedBackoff(DEFAULT_CUSTOMIZED_NEXT_MS)
    listed: list[object] = list(next_ms) if isinstance(next_ms, list) else []
    delays = tuple(delay for delay in listed if _is_long(delay))
    if not delays or len(delays) != len(listed):
        # gRPC clients refuse an empty list (CustomizedBackoffRetryPolicy: "durations must not be empty").
        raise ValueError(f"groupRetryPolicy.customizedRetryPolicy.next is not a non-empty list of numbers: {next_ms!r}")
    return CustomizedBackoff(delays)


def same_group_retry_policy(actual: object, desired: object) -> bool:
    """Whether two `groupRetryPolicy` bodies select the same policy; sub-objects of the other type do not count."""
    if not isinstance(actual, Mapping) or not isinstance(desired, Mapping):
        return actual == desired
    kind = desired.get("type")
    if actual.get("type") != kind:
        return False
    key = _SUB_OBJECT.get(str(kind))
    return key is None or _selected(actual.get(key)) == _selected(desired.get(key))


def _selected(sub: object) -> object:
    """A sub-object reduced to the fields RocketMQ reads, so unknown or reordered keys compare equal."""
    if not isinstance(sub, Mapping):
        return sub
    return {key: sub.get(key) for key in ("next", *_EXPONENTIAL_FIELDS) if key in sub}


def _long(sub: object, key: str, default: int) -> int:
    value = sub.get(key, default) if isinstance(sub, Mapping) else default
    if not _is_long(value):
        raise ValueError(f"groupRetryPolicy.exponentialRetryPolicy.{key} is not a number: {value!r}")
    return value


def _is_long(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)
