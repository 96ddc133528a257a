"""DeadLetterQueue objects, pure: the typed spec, the one-run-at-a-time rule for redrives, and the status stanza.

Depth is counted against the redrive group's committed offset: a dead letter stays in `%DLQ%<group>` after it was
redriven (the operator never deletes messages), so `max - min` alone would never go down. Both numbers are reported.
"""

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

from rocketmq_retry.domain.conditions import Outcome, Reason, build_conditions, condition
from rocketmq_retry.domain.expiry import DEAD_LETTERS_EXPIRING, DEFAULT_EXPIRY_MARGIN_MS, Retention, expiry_condition
from rocketmq_retry.domain.jsontypes import JsonObject, JsonValue
from rocketmq_retry.domain.redrive import RedriveProgress, RedriveScope
from rocketmq_retry.domain.selection import Selector, read_selector
from rocketmq_retry.domain.spec import (
    GROUP_MAX_LENGTH,
    GROUP_PATTERN,
    ClusterRef,
    Problems,
    SpecError,
    read_cluster,
    read_group,
)
from rocketmq_retry.domain.timestamps import format_timestamp

REDRIVE_GROUP_SUFFIX: Final = "-redrive"
DLQ_GROUP_MAX_LENGTH: Final = GROUP_MAX_LENGTH - len(REDRIVE_GROUP_SUFFIX)  # the redrive group must fit the limit
TOPIC_PATTERN: Final = GROUP_PATTERN  # TopicValidator allows the same characters as group names
TOPIC_MAX_LENGTH: Final = 127
RESERVED_TOPIC_PREFIXES: Final = ("%RETRY%", "%DLQ%")
REQUEST_ID_PATTERN: Final = r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
REQUEST_ID_MAX_LENGTH: Final = 63
RATE_LIMIT: Final = 10000
DEFAULT_RATE: Final = 100
INT64_MAX: Final = 2**63 - 1
BACKLOG_HIGH: Final = "BacklogHigh"
REDRIVE_REJECTED: Final = "RedriveRejected"
_TOPIC = re.compile(TOPIC_PATTERN)
_REQUEST_ID = re.compile(REQUEST_ID_PATTERN)


@dataclass(frozen=True)
class RedriveSpec:
    request_id: str
    rate: int = DEFAULT_RATE
    max_messages: int | None = None
    target_topic: str | None = None
    cancel: bool = False
    scope: RedriveScope = RedriveScope.GROUP
    selector: Selector = field(default_factory=Selector)
    dry_run: bool = False

    def start(self, now: datetime) -> RedriveProgress:
        """The progress of a run of this request, before it learnt its queues."""
        return RedriveProgress(self.request_id, self.rate, now, self.max_messages, self.target_topic, self.scope,
                               self.selector, self.dry_run)


@dataclass(frozen=True)
class DeadLetterQueueSpec:
    consumer_group: str
    cluster: ClusterRef | None = None
    readable: bool = False
    alert_threshold: int | None = None
    redrive: RedriveSpec | None = None
    expiry_margin_ms: int = DEFAULT_EXPIRY_MARGIN_MS

    @property
    def redrive_group(self) -> str:
        """The consumer group whose committed offsets on the DLQ mark what has been redriven."""
        return self.consumer_group + REDRIVE_GROUP_SUFFIX


def parse_dead_letter_spec(raw: object) -> DeadLetterQueueSpec:
    """The typed spec of a DeadLetterQueue object, or SpecError naming every problem."""
    problems = Problems()
    spec = problems.mapping(raw, "spec")
    if spec is None:
        raise SpecError(problems.items)
    group = read_group(spec.get("consumerGroup"), problems, DLQ_GROUP_MAX_LENGTH)
    cluster = threshold = redrive = margin = None
    if (value := spec.get("cluster")) is not None:
        cluster = read_cluster(value, "spec.cluster", problems)
    readable = problems.typed(spec.get("readable", False), bool, "spec.readable", "a boolean")
    if (value := spec.get("alertThreshold")) is not None:
        threshold = problems.integer(value, "spec.alertThreshold", 0, INT64_MAX)
    if (value := spec.get("redrive")) is not None:
        redrive = _redrive(value, "spec.redrive", problems)
    if (value := spec.get("expiryMargin")) is not None:
        margin = problems.duration(value, "spec.expiryMargin")
    if problems.items or group is None:
        raise SpecError(problems.items)
    return DeadLetterQueueSpec(group, cluster, bool(readable), threshold, redrive,
                               DEFAULT_EXPIRY_MARGIN_MS if margin is None else margin)


def _redrive(raw: object, path: str, problems: Problems) -> RedriveSpec | None:
    redrive = problems.mapping(raw, path)
    if redrive is None:
        return None
    request_id = problems.typed(redrive.get("requestId"), str, f"{path}.requestId", "a string")
    if request_id is not None and (not _REQUEST_ID.fullmatch(request_id) or len(request_id) > REQUEST_ID_MAX_LENGTH):
        problems.add(f"{path}.requestId", f"{request_id!r} is not a request id: letters, digits and -_. "
                                          f"(at most {REQUEST_ID_MAX_LENGTH}), starting and ending alphanumeric")
        request_id = None
    rate = problems.integer(redrive.get("rate", DEFAULT_RATE), f"{path}.rate", 1, RATE_LIMIT)
    limit = redrive.get("maxMessages")
    max_messages = None if limit is None else problems.integer(limit, f"{path}.maxMessages", 1, INT64_MAX)
    topic = redrive.get("targetTopic")
    target = None if topic is None else _target_topic(topic, f"{path}.targetTopic", problems)
    cancel = problems.typed(redrive.get("cancel", False), bool, f"{path}.cancel", "a boolean")
    scope = _scope(redrive.get("scope", str(RedriveScope.GROUP)), f"{path}.scope", problems)
    raw_selector = redrive.get("selector")
    selector = Selector() if raw_selector is None else read_selector(raw_selector, f"{path}.selector", problems)
    dry_run = problems.typed(redrive.get("dryRun", False), bool, f"{path}.dryRun", "a boolean")
    if request_id is None or rate is None or cancel is None or (limit is not None and max_messages is None) \
            or (topic is not None and target is None) or scope is None or selector is None or dry_run is None:
        return None
    return RedriveSpec(request_id, rate, max_messages, target, cancel, scope, selector, dry_run)


def _scope(value: object, path: str, problems: Problems) -> RedriveScope | None:
    try:
        return RedriveScope(str(value))
    except ValueError:
        problems.add(path, f"{value!r} is not a scope: Group (the failing group only) or Topic (every group "
                           "subscribed to the topic)")
        return None


def _target_topic(value: object, path: str, problems: Problems) -> str | None:
    topic = problems.typed(value, str, path, "a topic name")
    if topic is None:
        return None
    if not _TOPIC.fullmatch(topic) or len(topic) > TOPIC_MAX_LENGTH:
        problems.add(path, f"{topic!r} is not a RocketMQ topic name (letters, digits and %|_-, "
                           f"at most {TOPIC_MAX_LENGTH} characters)")
        return None
    if topic.startswith(RESERVED_TOPIC_PREFIXES):
        problems.add(path, f"{topic!r} is a retry or dead-letter topic; redrive to the topic consumers subscribe to")
        return None
    return topic


class RedriveAction(StrEnum):
    NONE = "None"
    START = "Start"  # a new request: snapshot the queues and run
    RESUME = "Resume"  # status says Running but no run is alive in this process (the operator restarted)
    CANCEL = "Cancel"  # stop the active run, or mark it cancelled when none is alive
    SKIP = "Skip"  # a new request already marked cancel: record it as cancelled without moving anything


@dataclass(frozen=True)
class RedrivePlan:
    action: RedriveAction
    reject: str | None = None  # a new request id refused because another run is active


def plan_redrive(request: RedriveSpec | None, last: RedriveProgress | None, *, alive: bool) -> RedrivePlan:
    """What to do about `request` given the last run; at most one run is active per dead-letter queue.

    A new requestId while a run is active is refused for good, as SQS refuses a second move task: starting it
    later, when nobody watches, would surprise more than it helps. Removing `spec.redrive` cancels the active run.
    """
    if last is not None and last.active:
        same = request is not None and request.request_id == last.request_id
        if request is None or (same and request.cancel):
            return RedrivePlan(RedriveAction.CANCEL)
        refused = None if same or request.request_id == last.rejected_request_id else request.request_id
        return RedrivePlan(RedriveAction.NONE if alive else RedriveAction.RESUME, refused)
    if request is None or (last is not None and request.request_id in (last.request_id, last.rejected_request_id)):
        return RedrivePlan(RedriveAction.NONE)
    return RedrivePlan(RedriveAction.SKIP if request.cancel else RedriveAction.START)


class DeadLetterBrokerState(StrEnum):
    READABLE = "Readable"
    NOT_READABLE = "NotReadable"  # the topic exists write-only (perm 2, as brokers up to 4.9.1 create it)
    ABSENT = "Absent"  # nothing was dead-lettered on this master yet, and readable is off
    FAILED = "Failed"


@dataclass(frozen=True)
class BrokerBacklog:
    """The dead-letter queue on one master."""

    name: str
    address: str
    state: DeadLetterBrokerState
    perm: int | None = None
    queues: int = 0
    depth: int = 0  # dead letters past the redrive group's committed offset
    stored: int = 0  # max - min offset: every dead letter the broker still stores
    oldest: datetime | None = None  # store time of the oldest pending dead letter, where readable
    made_readable: bool = False  # this pass wrote the topic's perm
    message: str | None = None
    file_reserved_hours: int | None = None  # the master's fileReservedTime: how long it keeps commit-log files

    @property
    def retention(self) -> Retention:
        """When this master may remove its oldest pending dead letter, or why that cannot be told."""
        if self.state is DeadLetterBrokerState.FAILED:
            return Retention(self.name, unknown=self.message or "the dead-letter queue could not be read")
        if self.depth == 0:
            return Retention(self.name)
        if self.state is DeadLetterBrokerState.NOT_READABLE:
            return Retention(self.name, unknown="the dead-letter topic is write-only, so the store times of its "
                                                "dead letters cannot be read (set readable: true)")
        if self.oldest is None:
            return Retention(self.name, unknown="the store time of the oldest pending dead letter could not be read")
        if self.file_reserved_hours is None:
            return Retention(self.name, unknown=self.message or "fileReservedTime is unknown")
        return Retention(self.name, self.oldest, self.file_reserved_hours)

    def to_json(self) -> JsonObject:
        entry: JsonObject = {"name": self.name, "address": self.address, "state": str(self.state),
                             "queues": self.queues, "depth": self.depth, "storedMessages": self.stored}
        removal = self.retention.removal
        optional: dict[str, JsonValue] = {
            "perm": self.perm, "message": self.message, "fileReservedHours": self.file_reserved_hours,
            "earliestRemovalTime": None if removal is None else format_timestamp(removal),
            "oldestDeadLetterTime": None if self.oldest is None else format_timestamp(self.oldest)}
        entry |= {key: value for key, value in optional.items() if value is not None}
        return entry


@dataclass(frozen=True)
class Backlog:
    """One read of the dead-letter queue on every master; `error` when not even the masters could be listed."""

    brokers: tuple[BrokerBacklog, ...]
    error: str | None = None
    error_reason: Reason = Reason.BROKER_UNREACHABLE

    @property
    def read(self) -> list[BrokerBacklog]:
        return [broker for broker in self.brokers if broker.state is not DeadLetterBrokerState.FAILED]

    @property
    def complete(self) -> bool:
        return self.error is None and bool(self.brokers) and len(self.read) == len(self.brokers)

    @property
    def depth(self) -> int:
        return sum(broker.depth for broker in self.read)

    @property
    def oldest(self) -> datetime | None:
        return min((broker.oldest for broker in self.read if broker.oldest is not None), default=None)

    @property
    def earliest_removal(self) -> datetime | None:
        """The earliest time a master may remove a pending dead letter, where known."""
        return min((removal for broker in self.read if (removal := broker.retention.removal) is not None),
                   default=None)


def backlog_outcome(backlog: Backlog, *, readable: bool) -> Outcome:
    """Ready: True once every master was read (and, when asked, holds the dead-letter topic readable)."""
    if backlog.error is not None:
        return Outcome(backlog.error_reason, backlog.error)
    if not backlog.brokers:
        return Outcome(Reason.BROKER_UNREACHABLE, "the name servers report no master broker for the cluster")
    failed = [broker for broker in backlog.brokers if broker.state is DeadLetterBrokerState.FAILED]
    details = "; ".join(f"{broker.name}: {broker.message or 'failed'}" for broker in failed)
    total = len(backlog.brokers)
    if len(failed) == total:
        return Outcome(Reason.BROKER_UNREACHABLE, f"no master broker could be read: {details}")
    if failed:
        return Outcome(Reason.PARTIALLY_APPLIED, f"read {total - len(failed)} of {total} master brokers; {details}")
    what = "readable and read" if readable else "read"
    return Outcome(Reason.SYNCED, f"dead-letter queue {what} on all {total} master brokers, "
                                  f"{backlog.depth} dead letter(s) pending")


def backlog_condition(threshold: int | None, backlog: Backlog | None) -> tuple[str, str, str] | None:
    """(status, reason, message) of BacklogHigh: True while pending dead letters exceed `alertThreshold`."""
    if threshold is None or backlog is None:
        return None
    if backlog.error is not None:
        return "Unknown", "DepthUnknown", f"the depth could not be read: {backlog.error}"
    depth = backlog.depth
    if depth > threshold:
        return "True", "AboveThreshold", f"{depth} dead letter(s) pending, above alertThreshold {threshold}"
    if not backlog.complete:
        return "Unknown", "DepthIncomplete", (f"at least {depth} dead letter(s) pending (not every master could be "
                                              f"read), alertThreshold {threshold}")
    return "False", "WithinThreshold", f"{depth} dead letter(s) pending, alertThreshold {threshold}"


def _expiring_condition(spec: DeadLetterQueueSpec | None, backlog: Backlog | None,
                        now: datetime) -> tuple[str, str, str] | None:
    """DeadLettersExpiring over every master's retention, once the spec is usable and the masters were looked at."""
    if spec is None or backlog is None:
        return None
    return expiry_condition(spec.expiry_margin_ms, [broker.retention for broker in backlog.brokers], now,
                            error=backlog.error)


def rejection_condition(request: RedriveSpec | None, last: RedriveProgress | None) -> tuple[str, str, str] | None:
    """RedriveRejected, present while the spec asks for a request that was refused, or changes one that started."""
    if request is None or last is None:
        return None
    if request.request_id == last.rejected_request_id:
        return "True", "AnotherRedriveActive", (
            f"requestId {request.request_id} was refused because redrive {last.request_id} was active (one redrive "
            "at a time per dead-letter queue); it will not start: set a new requestId once no redrive is running")
    if request.request_id == last.request_id and _changed(request, last):
        return "True", "RunChanged", (
            f"redrive {last.request_id} started with other parameters and keeps them (a started run's selector, "
            "scope, rate, limit and dry run cannot change); set a new requestId to run with these")
    return None


def _changed(request: RedriveSpec, last: RedriveProgress) -> bool:
    """Whether the spec asks for other parameters than the run has; a run recorded before scopes keeps Topic."""
    asked, ran = request.start(last.started).parameters, last.parameters
    if last.scope is None:
        del asked["scope"], ran["scope"]
    return asked != ran


@dataclass(frozen=True)
class DeadLetterView:
    """Everything one pass learnt about a DeadLetterQueue object, for its status."""

    outcome: Outcome
    spec: DeadLetterQueueSpec | None = None
    topic: str | None = None
    backlog: Backlog | None = None
    redrive: RedriveProgress | None = None
    conflict_with: str | None = None


def dead_letter_status(view: DeadLetterView, previous: Mapping[str, Any], generation: int,
                       now: datetime) -> JsonObject:
    """The status stanza; depth and brokers keep their last values while the brokers cannot be read."""
    earlier = [item for item in previous.get("conditions") or [] if isinstance(item, Mapping)]
    conditions = build_conditions(view.outcome, earlier, generation, now)
    spec = view.spec
    extra = {BACKLOG_HIGH: backlog_condition(spec.alert_threshold if spec else None, view.backlog),
             REDRIVE_REJECTED: rejection_condition(spec.redrive if spec else None, view.redrive),
             DEAD_LETTERS_EXPIRING: _expiring_condition(spec, view.backlog, now)}
    by_type = {str(item.get("type")): item for item in earlier}
    kept: list[JsonValue] = [item for item in conditions if item.get("type") not in extra]
    kept += [condition(kind, *found, generation=generation, earlier=by_type.get(kind), now=now)
             for kind, found in extra.items() if found is not None]
    status: JsonObject = {"observedGeneration": generation, "conditions": kept, "conflictWith": view.conflict_with}
    if spec is not None and view.topic is not None:
        status |= {"topic": view.topic, "redriveGroup": spec.redrive_group}
    backlog = view.backlog
    if backlog is not None and backlog.error is None:
        oldest, removal = backlog.oldest, backlog.earliest_removal
        status |= {"depth": backlog.depth, "storedMessages": sum(broker.stored for broker in backlog.read),
                   "oldestDeadLetterTime": None if oldest is None else format_timestamp(oldest),
                   "earliestRemovalTime": None if removal is None else format_timestamp(removal),
                   "brokers": [broker.to_json() for broker in backlog.brokers]}
    if view.redrive is not None:
        status["redrive"] = view.redrive.to_json()
    return status


def made_readable(backlog: Backlog | None) -> Sequence[str]:
    """Names of the masters on which this pass made the dead-letter topic readable."""
    return [broker.name for broker in backlog.brokers if broker.made_readable] if backlog else []
