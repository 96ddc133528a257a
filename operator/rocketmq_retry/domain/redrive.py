"""A redrive run's pure parts: the send schedule that enforces its rate, and its progress as status keeps it.

The run's end offsets are fixed when it starts, so messages that fail again and return to the dead-letter queue are
not redriven a second time by the same run. Progress separates `moved` (distinct messages acknowledged by the
target) from `duplicates` (re-sends of messages an interrupted attempt had already delivered), which is what
at-least-once delivery costs when a run resumes from the last committed offset.

The redrive group keeps one committed offset per queue, so it can mark as done only a queue's prefix. A run with a
selector commits up to the first message it leaves in place; the messages it moves past that point stay pending in
the depth, and a later run over them moves them again.
"""

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

from rocketmq_retry.domain.jsontypes import JsonObject, JsonValue
from rocketmq_retry.domain.selection import Selector, message_keys, selector_from_json, store_time
from rocketmq_retry.domain.timestamps import format_timestamp, parse_timestamp
from rocketmq_retry.remoting.message import MessageExt

SAMPLE_SIZE: Final = 20  # selected messages a run lists in status; `rocketmq-retry dlq list` shows them all


class RedriveState(StrEnum):
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    CANCELLED = "Cancelled"


class RedriveScope(StrEnum):
    GROUP = "Group"  # to %RETRY%<group>: only the group that failed consumes the message again
    TOPIC = "Topic"  # to the original topic: every group subscribed to it consumes the message again


class Pacer:
    """Spaces sends `1/rate` seconds apart, so a run never exceeds its rate by more than `burst` messages.

    After a stall (a slow broker, a pause between retries) at most `burst` sends go out back to back to catch up;
    the rest of the lost time is not made up, because a backlog flushed at full speed is what the rate guards against.
    """

    def __init__(self, rate: float, *, burst: int = 1) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.interval = 1.0 / rate
        self.burst = burst
        self._next: float | None = None

    def delay(self, now: float) -> float:
        """Seconds to wait before the next send, for a caller asking at monotonic time `now`; reserves that slot."""
        earliest = now - (self.burst - 1) * self.interval
        slot = earliest if self._next is None else max(self._next, earliest)
        self._next = slot + self.interval
        return max(0.0, slot - now)


@dataclass
class QueueProgress:
    """One dead-letter queue's part of a run: from `start_offset` up to, not including, `end_offset`."""

    broker: str
    queue_id: int
    start_offset: int
    end_offset: int
    sent_offset: int  # every selected message below it has been acknowledged by the target at least once
    blocked: str | None = None  # why the run stopped on this queue before end_offset
    first_unselected: int | None = None  # the first message the run's selector left in place

    @property
    def remaining(self) -> int:
        return max(0, self.end_offset - self.sent_offset)

    @property
    def commit_point(self) -> int:
        """The redrive group may commit up to here: every message below it was moved, by this run or before it."""
        return self.sent_offset if self.first_unselected is None else min(self.sent_offset, self.first_unselected)

    def to_json(self) -> JsonObject:
        entry: JsonObject = {"broker": self.broker, "queueId": self.queue_id, "startOffset": self.start_offset,
                             "endOffset": self.end_offset, "sentOffset": self.sent_offset}
        if self.blocked:
            entry["blocked"] = self.blocked
        if self.first_unselected is not None:
            entry["firstUnselectedOffset"] = self.first_unselected
        return entry


@dataclass
class RedriveProgress:
    """A run's parameters, counters and per-queue positions; mutated by the engine, written to status."""

    request_id: str
    rate: int
    started: datetime
    max_messages: int | None = None
    target_topic: str | None = None
    scope: RedriveScope | None = RedriveScope.GROUP  # None: a run recorded before scopes, which went to the topic
    selector: Selector = field(default_factory=Selector)
    dry_run: bool = False
    state: RedriveState = RedriveState.RUNNING
    queues: list[QueueProgress] = field(default_factory=list)
    moved: int = 0
    failed: int = 0
    duplicates: int = 0
    matched: int = 0  # messages the selector took (a dry run's count of what a run would move)
    skipped: int = 0  # messages it left in place
    sample: list[JsonObject] = field(default_factory=list)  # the first SAMPLE_SIZE messages it took
    finished: datetime | None = None
    message: str | None = None
    rejected_request_id: str | None = None  # a later request refused while this run was active

    @property
    def active(self) -> bool:
        return self.state is RedriveState.RUNNING

    @property
    def sends_to(self) -> RedriveScope:
        return self.scope or RedriveScope.TOPIC

    @property
    def parameters(self) -> dict[str, object]:
        """What the request asked for, but `cancel`: a started run never changes them."""
        return {"rate": self.rate, "maxMessages": self.max_messages, "targetTopic": self.target_topic,
                "scope": self.scope, "selector": self.selector, "dryRun": self.dry_run}

    @property
    def quota(self) -> int | None:
        """Messages the run may still take, None without maxMessages (a dry run takes by counting)."""
        taken = self.matched if self.dry_run else self.moved
        return None if self.max_messages is None else max(0, self.max_messages - taken)

    def select(self, queue: QueueProgress, message: MessageExt) -> bool:
        """Whether the run takes `message`; one it leaves in place is passed, and the first of them ends what the
        run may commit."""
        if self.selector.matches(message):
            return True
        self.skipped += 1
        if queue.first_unselected is None:
            queue.first_unselected = message.queue_offset
        self.passed(queue, message)
        return False

    def counted(self, queue: QueueProgress, message: MessageExt) -> None:
        """A dry run took `message`: count it as what a run would move."""
        self._took(queue, message)
        self.passed(queue, message)

    def passed(self, queue: QueueProgress, message: MessageExt) -> None:
        queue.sent_offset = max(queue.sent_offset, message.queue_offset + 1)

    @property
    def remaining(self) -> int:
        """Messages the run has yet to move: 0 once it succeeded, what was left when it failed or was cancelled."""
        if self.state is RedriveState.SUCCEEDED:
            return 0
        left = sum(queue.remaining for queue in self.queues)
        quota = self.quota
        return left if quota is None else min(left, quota)

    def acknowledged(self, queue: QueueProgress, message: MessageExt) -> bool:
        """Count the target's acknowledgement of `message`; True when it was a duplicate."""
        if message.queue_offset < queue.sent_offset:
            self.duplicates += 1
            return True
        queue.sent_offset = message.queue_offset + 1
        self.moved += 1
        self._took(queue, message)
        return False

    def _took(self, queue: QueueProgress, message: MessageExt) -> None:
        self.matched += 1
        if len(self.sample) < SAMPLE_SIZE:
            self.sample.append(sampled(queue, message))

    def finish(self, state: RedriveState, now: datetime, message: str | None = None) -> None:
        self.state, self.finished, self.message = state, now, message

    @property
    def planned(self) -> int:
        """Messages the run set out to move: what was pending on its queues when it started, up to maxMessages."""
        pending = sum(queue.end_offset - queue.start_offset for queue in self.queues)
        return pending if self.max_messages is None else min(pending, self.max_messages)

    def to_json(self) -> JsonObject:
        """The status stanza; unset optional keys are None, which deletes a previous run's value in a merge patch."""
        return {"requestId": self.request_id, "state": str(self.state), "rate": self.rate,
                "maxMessages": self.max_messages, "targetTopic": self.target_topic,
                "scope": None if self.scope is None else str(self.scope), "selector": self.selector.to_json() or None,
                "dryRun": self.dry_run or None, "moved": self.moved, "failed": self.failed,
                "duplicates": self.duplicates, "matched": self.matched, "skipped": self.skipped,
                "remaining": self.remaining, "selected": list[JsonValue](self.sample) or None,
                "startTime": format_timestamp(self.started),
                "finishTime": None if self.finished is None else format_timestamp(self.finished),
                "message": self.message, "rejectedRequestId": self.rejected_request_id,
                "queues": [queue.to_json() for queue in self.queues]}

    @classmethod
    def from_json(cls, raw: Any) -> "RedriveProgress":
        """The run a status stanza describes; ValueError when it is not one the operator wrote."""
        try:
            queues = [QueueProgress(str(q["broker"]), _int(q["queueId"]), _int(q["startOffset"]),
                                    _int(q["endOffset"]), _int(q["sentOffset"]), q.get("blocked"),
                                    None if q.get("firstUnselectedOffset") is None
                                    else _int(q["firstUnselectedOffset"]))
                      for q in raw.get("queues", [])]
            finished = raw.get("finishTime")
            return cls(request_id=str(raw["requestId"]), rate=_int(raw["rate"]),
                       started=parse_timestamp(str(raw["startTime"])),
                       max_messages=None if raw.get("maxMessages") is None else _int(raw["maxMessages"]),
                       target_topic=raw.get("targetTopic"),
                       scope=None if raw.get("scope") is None else RedriveScope(raw["scope"]),
                       selector=selector_from_json(raw.get("selector") or {}), dry_run=raw.get("dryRun") is True,
                       state=RedriveState(raw["state"]), queues=queues,
                       moved=_int(raw.get("moved", 0)), failed=_int(raw.get("failed", 0)),
                       duplicates=_int(raw.get("duplicates", 0)), matched=_int(raw.get("matched", 0)),
                       skipped=_int(raw.get("skipped", 0)), sample=list(raw.get("selected") or []),
                       finished=None if finished is None else parse_timestamp(str(finished)),
                       message=raw.get("message"), rejected_request_id=raw.get("rejectedRequestId"))
        except (KeyError, TypeError, AttributeError) as error:
            raise ValueError(f"not a redrive status: {error}") from None


def sampled(queue: QueueProgress, message: MessageExt) -> JsonObject:
    """A selected message as a run lists it: enough to find it again with `rocketmq-retry dlq list --id`."""
    entry: JsonObject = {"msgId": message.msg_id, "storeTime": format_timestamp(store_time(message)),
                         "broker": queue.broker, "queueId": queue.queue_id, "offset": message.queue_offset}
    if keys := message_keys(message):
        entry["keys"] = " ".join(keys)
    if message.tags:
        entry["tags"] = message.tags
    return entry


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"not an integer: {value!r}")
    return value
