"""The status stanza of a RetryPolicy, built from a decision and a reconciliation result (pure).

Keys set to None are deletions in the merge patch that writes the stanza. Per-broker lastAppliedTime survives passes
that had nothing to write, so it tells when the operator last changed the broker.
"""

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Final

from rocketmq_retry.controller.records import Decision, PolicyRecord
from rocketmq_retry.domain.conditions import READY, RETRYABLE_REASONS, Outcome, build_conditions
from rocketmq_retry.domain.consumers import ConsumerClass, observations
from rocketmq_retry.domain.jsontypes import JsonObject, JsonValue
from rocketmq_retry.domain.ladder import Ladder
from rocketmq_retry.domain.status import (
    BrokerStatus,
    apply_outcome,
    consumer_class_status,
    ladder_status,
    masters_summary,
    retry_backlog_status,
)
from rocketmq_retry.domain.timestamps import parse_timestamp
from rocketmq_retry.domain.warnings import PolicyWarning
from rocketmq_retry.reconcile.apply import PolicyResult


@dataclass(frozen=True)
class PolicyEvent:
    type: str  # Normal or Warning
    reason: str
    message: str
    at: datetime | None = None  # when the pass reported it (set by the publisher); the Event's timestamps


def outcome_of(decision: Decision, result: PolicyResult | None) -> Outcome:
    if decision.outcome is not None:
        return decision.outcome
    if result is None:
        raise ValueError("a decision without a fixed outcome needs a reconciliation result")
    if result.error is not None:
        return Outcome(result.error_reason, result.error)
    return apply_outcome(result.brokers)


def is_retryable(outcome: Outcome) -> bool:
    return outcome.reason in RETRYABLE_REASONS


def policy_status(record: PolicyRecord, decision: Decision, result: PolicyResult | None,
                  now: datetime) -> JsonObject:
    """The status to write for `record` after a pass (result None: the brokers were not contacted)."""
    outcome = outcome_of(decision, result)
    previous = record.status
    seen = observations(result.view.consumers) if result is not None else ()
    conditions: list[JsonValue] = list(build_conditions(outcome, _conditions(previous), record.generation, now,
                                                        seen))
    status: JsonObject = {
        "observedGeneration": record.generation,
        "conditions": conditions,
        "conflictWith": decision.conflict_with,
    }
    if result is None:
        return status
    brokers = known_brokers(result, previous)
    status["brokers"] = [_broker_json(broker) for broker in brokers]
    status |= masters_summary(brokers)
    status["ladders"] = [_ladder_json(ladder) for ladder in result.view.ladders]
    status["warnings"] = [_warning_text(warning) for warning in result.view.warnings]
    consumers = result.view.consumers
    status["consumers"] = None if consumers is None else [_consumer_class_json(item) for item in consumers.classes]
    waiting = result.retry_backlog
    if waiting is not None:  # not counted yet: whatever was written stays
        status["retryBacklog"] = _retry_backlog_json(waiting) if any(count for _, count in waiting) else None
    return status


# The parts of a status that many policies have alike (the brokers of one pass, the ladders and warnings of one shape
# of spec) are built once and shared between their statuses, which are never changed in place: the operator keeps
# every policy's last status (controller/publisher.py), and at 10,000 policies copies of these parts were a third of
# its memory at its peak (memray, bench_convergence --memory-dir).
_SHARED_PARTS: Final = 4096


@functools.lru_cache(maxsize=_SHARED_PARTS)
def _broker_json(broker: BrokerStatus) -> JsonObject:
    return broker.to_json()


@functools.lru_cache(maxsize=_SHARED_PARTS)
def _ladder_json(ladder: Ladder) -> JsonObject:
    return ladder_status(ladder)


@functools.lru_cache(maxsize=_SHARED_PARTS)
def _consumer_class_json(item: ConsumerClass) -> JsonObject:
    return consumer_class_status(item)


@functools.lru_cache(maxsize=_SHARED_PARTS)
def _retry_backlog_json(per_master: tuple[tuple[str, int], ...]) -> JsonObject:
    return retry_backlog_status(per_master)


@functools.lru_cache(maxsize=_SHARED_PARTS)
def _warning_text(warning: PolicyWarning) -> str:
    return str(warning)


def ready_reason(status: Mapping[str, Any]) -> str | None:
    return _ready_field(status, "reason")


def ready_message(status: Mapping[str, Any]) -> str:
    return _ready_field(status, "message") or ""


def _ready_field(status: Mapping[str, Any], key: str) -> str | None:
    for condition in _conditions(status):
        if condition.get("type") == READY:
            value = condition.get(key)
            return value if isinstance(value, str) else None
    return None


def transition_event(previous: Mapping[str, Any], status: Mapping[str, Any]) -> PolicyEvent | None:
    """An Event when the Ready reason changes, so Events tell the story without repeating every pass."""
    reason = ready_reason(status)
    if reason is None or reason == ready_reason(previous):
        return None
    ready = next(c for c in _conditions(status) if c.get("type") == READY)
    kind = "Warning" if ready.get("status") == "False" else "Normal"
    return PolicyEvent(kind, reason, str(ready.get("message", "")))


def status_changed(previous: Mapping[str, Any], status: Mapping[str, Any]) -> bool:
    """Whether writing `status` over `previous` changes anything (a None is a deletion, so equal to an absent key).

    Transition times are kept while a condition holds, and lastAppliedTime moves only with a write, so comparing
    them too reports exactly the passes that changed something.
    """
    for key, value in status.items():
        before = previous.get(key)
        if before != value and _comparable(before) != _comparable(value):  # equal as they are: the common case
            return True
    return False


def _comparable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _comparable(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_comparable(item) for item in value]
    return value


def condition_states(status: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(type, status) of every condition in a status stanza."""
    return [(str(condition.get("type")), str(condition.get("status"))) for condition in _conditions(status)]


def _conditions(status: Mapping[str, Any]) -> Sequence[Mapping[str, JsonValue]]:
    found = status.get("conditions")
    return [item for item in found if isinstance(item, Mapping)] if isinstance(found, list) else []


def known_brokers(result: PolicyResult, previous: Mapping[str, Any]) -> list[BrokerStatus]:
    """The pass's brokers, each with the last time a write to it succeeded (this pass's, else the previous status's)."""
    return [_keep_last_applied(broker, previous) for broker in result.brokers]


def _keep_last_applied(broker: BrokerStatus, previous: Mapping[str, Any]) -> BrokerStatus:
    if broker.last_applied is not None:
        return broker
    entries = previous.get("brokers")
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, Mapping) and entry.get("name") == broker.name and entry.get("lastAppliedTime"):
            try:
                return replace(broker, last_applied=parse_timestamp(str(entry["lastAppliedTime"])))
            except ValueError:
                return broker
    return broker
