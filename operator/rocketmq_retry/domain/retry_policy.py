"""The broker's `groupRetryPolicy` JSON, to and from the spec's backoff.

On the broker a null sub-object means "use a default", and which default depends on the reader: the proxy hands gRPC
clients a default ExponentialRetryPolicy for `EXPONENTIAL` (GrpcClientSettingsManager) while
GroupRetryPolicy.getRetryPolicy falls back to the default CustomizedRetryPolicy. The operator therefore always writes
the sub-object in full, and compares policies by type plus the sub-object that type selects.

This module is the only reader of the field: the remoting layer hands it over as raw JSON, so a body another tool
wrote that this reader finds odd is reported on the policy that claims its group and never fails a broker's read.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeGuard

from rocketmq_retry.domain.broker import (
    DEFAULT_CUSTOMIZED_NEXT_MS,
    DEFAULT_EXPONENTIAL_INITIAL_MS,
    DEFAULT_EXPONENTIAL_MAX_MS,
    DEFAULT_EXPONENTIAL_MULTIPLIER,
    DEFAULT_GROUP_RETRY_POLICY,
)
from rocketmq_retry.domain.jsontypes import JsonObject
from rocketmq_retry.domain.spec import Backoff, CustomizedBackoff, ExponentialBackoff

CUSTOMIZED = "CUSTOMIZED"
EXPONENTIAL = "EXPONENTIAL"
__all__ = ["DEFAULT_GROUP_RETRY_POLICY", "StoredRetryPolicy", "group_retry_policy_json", "grpc_backoff",
           "read_group_retry_policy", "same_group_retry_policy"]
_SUB_OBJECT = {CUSTOMIZED: "customizedRetryPolicy", EXPONENTIAL: "exponentialRetryPolicy"}
_EXPONENTIAL_FIELDS = {
    "initial": DEFAULT_EXPONENTIAL_INITIAL_MS,
    "max": DEFAULT_EXPONENTIAL_MAX_MS,
    "multiplier": DEFAULT_EXPONENTIAL_MULTIPLIER,
}


def group_retry_policy_json(backoff: Backoff) -> JsonObject:
    """The `groupRetryPolicy` body for a backoff, with the selected sub-object spelled out."""
    if isinstance(backoff, CustomizedBackoff):
        return {"type": CUSTOMIZED, "customizedRetryPolicy": {"next": list(backoff.delays_ms)}}
    return {
        "type": EXPONENTIAL,
        "exponentialRetryPolicy": {"initial": backoff.initial_ms, "max": backoff.max_ms,
                                   "multiplier": backoff.multiplier},
    }


@dataclass(frozen=True)
class StoredRetryPolicy:
    """A broker's `groupRetryPolicy` as read: the backoff gRPC clients get and, for an odd body, what is odd.

    `backoff` is None when no client-usable backoff follows from the body (a malformed sub-object); `problem` is None
    for every body RocketMQ itself writes, absent or partial ones included.
    """

    backoff: Backoff | None
    problem: str | None = None


def read_group_retry_policy(raw: object) -> StoredRetryPolicy:
    """The one reader of a stored `groupRetryPolicy` (any JSON value, None = absent); it never raises.

    Defaults follow GrpcClientSettingsManager.mergeSubscriptionData: every type but EXPONENTIAL selects the customized
    sub-object, and a null sub-object or field takes the Java default.
    """
    if raw is None:
        return StoredRetryPolicy(CustomizedBackoff(DEFAULT_CUSTOMIZED_NEXT_MS))
    if not isinstance(raw, Mapping):
        return StoredRetryPolicy(None, f"groupRetryPolicy is not a JSON object: {raw!r}")
    kind = raw.get("type", CUSTOMIZED)
    if kind == EXPONENTIAL:
        return _exponential(raw.get(_SUB_OBJECT[EXPONENTIAL]))
    read = _customized(raw.get(_SUB_OBJECT[CUSTOMIZED]))
    if kind in (CUSTOMIZED, None) or read.problem is not None:
        return read
    return StoredRetryPolicy(read.backoff, f"groupRetryPolicy.type {kind!r} is neither {CUSTOMIZED} nor "
                                           f"{EXPONENTIAL}; the proxy treats it as {CUSTOMIZED}")


def grpc_backoff(raw: object) -> Backoff:
    """The backoff gRPC clients receive for a broker's `groupRetryPolicy` (absent = the broker's default).

    ValueError when none does (see read_group_retry_policy); an unknown type is read as CUSTOMIZED, as the proxy does.
    """
    read = read_group_retry_policy(raw)
    if read.backoff is None:
        raise ValueError(read.problem)
    return read.backoff


def _exponential(sub: object) -> StoredRetryPolicy:
    where = f"groupRetryPolicy.{_SUB_OBJECT[EXPONENTIAL]}"
    if sub is None:
        sub = {}
    if not isinstance(sub, Mapping):
        return StoredRetryPolicy(None, f"{where} is not a JSON object: {sub!r}")
    values = {}
    for key, default in _EXPONENTIAL_FIELDS.items():
        value = sub.get(key)
        if value is None:
            value = default
        if not _is_long(value):
            return StoredRetryPolicy(None, f"{where}.{key} is not a whole number: {value!r}")
        values[key] = value
    return StoredRetryPolicy(ExponentialBackoff(values["initial"], values["max"], values["multiplier"]))


def _customized(sub: object) -> StoredRetryPolicy:
    where = f"groupRetryPolicy.{_SUB_OBJECT[CUSTOMIZED]}"
    if sub is None:
        sub = {}
    if not isinstance(sub, Mapping):
        return StoredRetryPolicy(None, f"{where} is not a JSON object: {sub!r}")
    next_ms = sub.get("next")
    if next_ms is None:
        return StoredRetryPolicy(CustomizedBackoff(DEFAULT_CUSTOMIZED_NEXT_MS))
    if not isinstance(next_ms, list) or not next_ms or not all(_is_long(delay) for delay in next_ms):
        # gRPC clients refuse an empty list (CustomizedBackoffRetryPolicy: "durations must not be empty").
        return StoredRetryPolicy(None, f"{where}.next is not a non-empty list of whole numbers: {next_ms!r}")
    return StoredRetryPolicy(CustomizedBackoff(tuple(next_ms)))


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


def _is_long(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)
