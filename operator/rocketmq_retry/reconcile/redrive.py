"""The redrive engine: moves a dead-letter queue's pending messages back to their topics, at a fixed rate.

It pulls `%DLQ%<group>` as the redrive group, re-sends each message and commits the group's offset only after every
message below it was acknowledged by its target: a run that is cancelled, crashes or loses its broker resumes from the
committed offset and delivers the messages in between again (at least once, never zero times). Knows nothing of
Kubernetes; the operator runs it as a task and reads its progress.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Protocol, TypeVar

from rocketmq_retry.domain.dead_letters import DeadLetterQueueSpec, RedriveSpec
from rocketmq_retry.domain.redrive import Pacer, QueueProgress, RedriveProgress, RedriveScope, RedriveState
from rocketmq_retry.domain.selection import message_ids
from rocketmq_retry.reconcile.reading import ReadFailed, bounded
from rocketmq_retry.remoting.admin import Admin
from rocketmq_retry.remoting.codes import ResponseCode
from rocketmq_retry.remoting.errors import BrokerError, RemotingError
from rocketmq_retry.remoting.message import MessageExt
from rocketmq_retry.remoting.models import SubscriptionGroupConfig, TopicRoute
from rocketmq_retry.remoting.producer import SendResult
from rocketmq_retry.remoting.pulling import PullResult, PullStatus, dlq_topic, retry_topic
from rocketmq_retry.remoting.redriving import NoOriginalTopic, redrive_message
from rocketmq_retry.remoting.routing import MessageQueue, master_addresses
from rocketmq_retry.remoting.sending import Message

log = logging.getLogger(__name__)

BATCH: Final = 32  # messages per pull, and at most this many are re-sent again after a crash
ATTEMPTS: Final = 5  # tries of one pull, send or commit (a send is itself up to 3 broker attempts) before giving up
PAUSE: Final = 1.0  # seconds before the second try, doubling after each further failure
_T = TypeVar("_T")


class Source(Protocol):
    """The dead-letter side: rocketmq_retry.remoting.PullConsumer of the redrive group."""

    async def pull(self, queue: MessageQueue, offset: int, *, max_messages: int = 32, suspend: float = 0.0,
                   commit_offset: int | None = None) -> PullResult: ...
    async def committed_offset(self, queue: MessageQueue) -> int | None: ...
    async def commit(self, queue: MessageQueue, offset: int) -> None: ...


class Target(Protocol):
    """The sending side: rocketmq_retry.remoting.Producer."""

    async def send(self, message: Message, *, reconsume_times: int | None = None,
                   max_reconsume_times: int | None = None, msg_id: str | None = None) -> SendResult: ...


async def begin_redrive(admin: Admin, spec: DeadLetterQueueSpec, request: RedriveSpec, now: datetime, *,
                        call_timeout: float) -> RedriveProgress:
    """Fix the run's range on every dead-letter queue, from the redrive group's committed offset to today's end.

    The redrive group is created on the masters that hold a dead-letter queue and lack it, because RocketMQ 5
    refuses offset commits of unknown groups; an existing group is never rewritten.
    ReadFailed when a broker cannot be read, so a run never starts with part of its queues silently left out, and
    when a run for the group alone finds no retry topic: no consumer of the group would receive its messages.
    """
    topic = dlq_topic(spec.consumer_group)
    progress = request.start(now)
    route = await route_or_none(admin, topic, call_timeout)
    if route is None:
        return progress
    if progress.sends_to is RedriveScope.GROUP and not progress.dry_run:
        await _expect_retry_topic(admin, spec.consumer_group, call_timeout)
    masters = master_addresses(route)
    for data in sorted(route.queues, key=lambda queue: queue.broker_name):
        addr = masters.get(data.broker_name)
        where = f"{data.broker_name} ({addr})"
        if addr is None:
            raise ReadFailed(f"{topic} on {data.broker_name}: the broker has no master")
        groups = await bounded(admin.get_all_subscription_groups(addr), call_timeout, f"{where} subscription groups")
        if spec.redrive_group not in groups:
            await bounded(admin.update_subscription_group(addr, SubscriptionGroupConfig(spec.redrive_group)),
                          call_timeout, f"{where} creation of {spec.redrive_group}")
        for queue_id in range(data.read_queue_nums):
            pending = await pending_range(admin, MessageQueue(topic, data.broker_name, queue_id), addr,
                                          redrive_group=spec.redrive_group, call_timeout=call_timeout)
            progress.queues.append(QueueProgress(data.broker_name, queue_id, pending.start, pending.end,
                                                 pending.start))
    return progress


@dataclass(frozen=True)
class PendingRange:
    """One dead-letter queue: the broker stores `low` to `end`; pending (not yet redriven) is `start` to `end`."""

    low: int
    start: int
    end: int


async def pending_range(admin: Admin, queue: MessageQueue, addr: str, *, redrive_group: str,
                        call_timeout: float) -> PendingRange:
    """`queue` on its master `addr`. Pending starts at the redrive group's committed offset, within what the broker
    still stores: retention may have removed messages past it, and a group that never committed has every stored
    message pending."""
    topic, queue_id, where = queue.topic, queue.queue_id, f"{queue.broker_name} ({addr})"
    low = await bounded(admin.min_offset(addr, topic, queue_id), call_timeout, f"{where} min offset")
    end = await bounded(admin.max_offset(addr, topic, queue_id), call_timeout, f"{where} max offset")
    committed = await bounded(admin.query_consumer_offset(addr, redrive_group, topic, queue_id), call_timeout,
                              f"{where} offset of {redrive_group}")
    return PendingRange(low, min(max(low, committed or 0), end), end)


async def _expect_retry_topic(admin: Admin, group: str, call_timeout: float) -> None:
    """The group's retry topic is routed: a consumer of the group connected (its heartbeat creates the topic)."""
    if await route_or_none(admin, retry_topic(group), call_timeout) is None:
        raise ReadFailed(f"{retry_topic(group)} has no route: no consumer of {group} has connected to these brokers, "
                         "so none would receive the dead letters; start the group's consumers, or redrive with "
                         "scope: Topic")


async def route_or_none(admin: Admin, topic: str, call_timeout: float) -> TopicRoute | None:
    """The topic's route, None when no broker has registered it (no message was dead-lettered yet)."""
    try:
        async with asyncio.timeout(call_timeout):
            return await admin.topic_route(topic)
    except BrokerError as error:
        if error.code == ResponseCode.TOPIC_NOT_EXIST:
            return None
        raise ReadFailed(f"route of {topic}: {error}") from error
    except (RemotingError, TimeoutError) as error:
        raise ReadFailed(f"route of {topic}: {error or 'no answer'}") from error


class _GaveUp(Exception):
    """A pull, send or commit failed on every attempt; the message is meant for status."""


class Redrive:
    """One run over `progress`, which it updates as messages are acknowledged; `stop()` cancels it gracefully.

    Cancelling the task instead stops it abruptly, as a crash would: nothing more is committed, and a later run
    over the same progress re-sends the uncommitted messages and counts them as duplicates. A run resumes from the
    committed offset while that offset can mark its progress; past the first message its selector left in place
    (and in a dry run, which commits nothing) it resumes from the position its progress recorded.
    """

    def __init__(self, source: Source, target: Target, group: str, progress: RedriveProgress, *,
                 attempts: int = ATTEMPTS, pause: float = PAUSE) -> None:
        self.source = source
        self.target = target
        self.group = group
        self.topic = dlq_topic(group)
        self.progress = progress
        self.attempts = attempts
        self.pause = pause
        self._stopping = asyncio.Event()
        self._pacer = Pacer(progress.rate, burst=max(1, progress.rate // 20))
        self._committed: dict[int, int] = {}  # by queue index, as last read or written
        self._found_ids: set[str] = set()  # the selector's message ids seen on the queues

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> RedriveProgress:
        progress = self.progress
        positions = [await self._resume_point(index) for index in range(len(progress.queues))]
        pending = [index for index, queue in enumerate(progress.queues)
                   if queue.blocked is None and positions[index] < queue.end_offset]
        while pending and not self._stopping.is_set() and progress.quota != 0:
            pending = [index for index in pending if await self._batch(index, positions)]
        state, message = self._verdict()
        progress.finish(state, datetime.now(UTC), message)
        log.info("redrive %s of %s: %s", progress.request_id, self.topic, progress.message)
        return progress

    def _verdict(self) -> tuple[RedriveState, str]:
        progress = self.progress
        done = f"moved {progress.moved} message(s), {progress.duplicates} duplicate(s)"
        if progress.dry_run:
            done = f"dry run: {progress.matched} message(s) selected, none moved"
        if progress.skipped:
            done += f"; {progress.skipped} left in place by the selector"
        if progress.matched == 0 and not progress.selector.everything:
            absent = progress.selector.message_ids - self._found_ids
            done += f"; {progress.selector.why_nothing(progress.skipped, datetime.now(UTC), absent)}"
        blocked = [f"{q.broker}#{q.queue_id}: {q.blocked}" for q in progress.queues if q.blocked]
        if self._stopping.is_set():
            return RedriveState.CANCELLED, f"cancelled: {done}"
        if blocked:
            return RedriveState.FAILED, f"{done}; stopped on " + "; ".join(blocked)
        return RedriveState.SUCCEEDED, done

    def _queue(self, queue: QueueProgress) -> MessageQueue:
        return MessageQueue(self.topic, queue.broker, queue.queue_id)

    async def _resume_point(self, index: int) -> int:
        """Where to pull next: the committed offset, which may be ahead of `sent_offset` when status lagged, unless
        the run went past what the committed offset can mark."""
        queue = self.progress.queues[index]
        if queue.blocked is not None or queue.remaining == 0:
            return queue.sent_offset
        try:
            committed = await self._retrying(lambda: self.source.committed_offset(self._queue(queue)),
                                             "reading the committed offset")
        except _GaveUp as error:
            queue.blocked = str(error)
            return queue.sent_offset
        self._committed[index] = committed or 0
        position = min(max(queue.start_offset, committed or 0), queue.end_offset)
        if self.progress.dry_run or queue.first_unselected is not None:
            return max(position, queue.sent_offset)
        if position > queue.sent_offset:  # committed means acknowledged: count what the status had not caught up with
            self.progress.moved += position - queue.sent_offset
            queue.sent_offset = position
        return position

    async def _batch(self, index: int, positions: list[int]) -> bool:
        """Go through up to one batch from the queue's position; whether the queue has more to go through."""
        progress, queue, position = self.progress, self.progress.queues[index], positions[index]
        quota = progress.quota
        wanted = min(BATCH, queue.end_offset - position, BATCH if quota is None else quota)
        try:
            pulled = await self._retrying(
                lambda: self.source.pull(self._queue(queue), position, max_messages=wanted), "pull")
        except _GaveUp as error:
            return self._block(queue, str(error))
        if pulled.status is not PullStatus.FOUND:
            # NO_NEW_MSG: the store ends before end_offset (the broker lost its store); OFFSET_ILLEGAL: retention
            # deleted the messages below next_begin_offset. Neither leaves anything to move at this position.
            log.warning("%s at offset %d: %s (next %d)", self._queue(queue), position, pulled.status,
                        pulled.next_begin_offset)
            done = pulled.status is PullStatus.NO_NEW_MSG
            positions[index] = queue.end_offset if done else pulled.next_begin_offset
            return positions[index] < queue.end_offset
        scanned = position
        for message in pulled.messages:
            if message.queue_offset >= queue.end_offset or self._stopping.is_set() or progress.quota == 0:
                break
            if not await self._take(queue, message):
                break
            scanned = message.queue_offset + 1
        if queue.commit_point > self._committed.get(index, queue.start_offset) and not progress.dry_run:
            point = queue.commit_point
            try:
                await self._retrying(lambda: self.source.commit(self._queue(queue), point), "commit")
            except _GaveUp as error:
                return self._block(queue, f"{error}; messages from offset {position} were delivered and will be "
                                          "delivered again by the next run")
            self._committed[index] = point
        positions[index] = scanned
        if scanned == position and queue.blocked is None and not self._stopping.is_set() and progress.quota != 0:
            positions[index] = pulled.next_begin_offset  # the batch held nothing below end_offset
        return queue.blocked is None and positions[index] < queue.end_offset

    async def _take(self, queue: QueueProgress, message: MessageExt) -> bool:
        """Move `message` if the run selects it (count it, in a dry run); False when the queue cannot go on."""
        progress = self.progress
        if not progress.select(queue, message):
            return True
        if progress.dry_run:
            progress.counted(queue, message)
            return True
        self._found_ids |= progress.selector.message_ids & message_ids(message)
        try:
            await self._move(message)
        except (_GaveUp, NoOriginalTopic) as error:
            if not self._stopping.is_set():
                progress.failed += 1
                self._block(queue, f"message {message.msg_id} at offset {message.queue_offset}: {error}")
            return False
        progress.acknowledged(queue, message)
        return True

    async def _move(self, message: MessageExt) -> None:
        group = self.group if self.progress.sends_to is RedriveScope.GROUP else None
        outgoing = redrive_message(message, self.progress.target_topic, group=group)
        wait = self._pacer.delay(time.monotonic())
        if wait > 0:
            await asyncio.sleep(wait)
        await self._retrying(lambda: self.target.send(outgoing.message, msg_id=message.msg_id,
                                                      reconsume_times=outgoing.reconsume_times,
                                                      max_reconsume_times=outgoing.max_reconsume_times),
                             f"send to {outgoing.message.topic}")

    def _block(self, queue: QueueProgress, reason: str) -> bool:
        queue.blocked = reason
        log.warning("redrive %s stops on %s: %s", self.progress.request_id, self._queue(queue), reason)
        return False

    async def _retrying(self, call: Callable[[], Awaitable[_T]], what: str) -> _T:
        """`call`, tried up to `attempts` times with doubling pauses; _GaveUp with the last error after that."""
        last: Exception | None = None
        for attempt in range(self.attempts):
            try:
                return await call()
            except (RemotingError, TimeoutError) as error:
                last = error
                if _permanent(error):
                    break
            if attempt + 1 < self.attempts:
                try:
                    await asyncio.wait_for(self._stopping.wait(), self.pause * 2 ** attempt)
                    break  # stopped while pausing
                except TimeoutError:
                    pass
        raise _GaveUp(f"{what} failed: {last}")


def _permanent(error: Exception) -> bool:
    """A refusal that no retry changes: the dead-letter topic is not readable."""
    return isinstance(error, BrokerError) and error.code == ResponseCode.NO_PERMISSION
