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
from datetime import UTC, datetime
from typing import Final, Protocol, TypeVar

from rocketmq_retry.domain.dead_letters import DeadLetterQueueSpec, RedriveSpec
from rocketmq_retry.domain.redrive import Pacer, QueueProgress, RedriveProgress, RedriveState
from rocketmq_retry.reconcile.reading import ReadFailed, bounded
from rocketmq_retry.remoting.admin import Admin
from rocketmq_retry.remoting.codes import ResponseCode
from rocketmq_retry.remoting.errors import BrokerError, RemotingError
from rocketmq_retry.remoting.message import MessageExt
from rocketmq_retry.remoting.models import SubscriptionGroupConfig, TopicRoute
from rocketmq_retry.remoting.producer import SendResult
from rocketmq_retry.remoting.pulling import PullResult, PullStatus, dlq_topic
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
    refuses offset commits of unknown groups; an existing group is never rewritten. ReadFailed when a broker
    cannot be read, so a run never starts with part of its queues silently left out.
    """
    topic = dlq_topic(spec.consumer_group)
    progress = RedriveProgress(request.request_id, request.rate, now, request.max_messages, request.target_topic)
    route = await route_or_none(admin, topic, call_timeout)
    if route is None:
        return progress
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
            low = await bounded(admin.min_offset(addr, topic, queue_id), call_timeout, f"{where} min offset")
            high = await bounded(admin.max_offset(addr, topic, queue_id), call_timeout, f"{where} max offset")
            committed = await bounded(admin.query_consumer_offset(addr, spec.redrive_group, topic, queue_id),
                                      call_timeout, f"{where} offset of {spec.redrive_group}")
            start = min(max(low, committed or 0), high)
            progress.queues.append(QueueProgress(data.broker_name, queue_id, start, high, start))
    return progress


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
    over the same progress re-sends the uncommitted messages and counts them as duplicates.
    """

    def __init__(self, source: Source, target: Target, topic: str, progress: RedriveProgress, *,
                 attempts: int = ATTEMPTS, pause: float = PAUSE) -> None:
        self.source = source
        self.target = target
        self.topic = topic
        self.progress = progress
        self.attempts = attempts
        self.pause = pause
        self._stopping = asyncio.Event()
        self._pacer = Pacer(progress.rate, burst=max(1, progress.rate // 20))

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> RedriveProgress:
        progress = self.progress
        positions = [await self._resume_point(queue) for queue in progress.queues]
        pending = [index for index, queue in enumerate(progress.queues)
                   if queue.blocked is None and positions[index] < queue.end_offset]
        while pending and not self._stopping.is_set() and progress.quota != 0:
            pending = [index for index in pending if await self._batch(progress.queues[index], positions, index)]
        state, message = self._verdict()
        progress.finish(state, datetime.now(UTC), message)
        log.info("redrive %s of %s: %s", progress.request_id, self.topic, progress.message)
        return progress

    def _verdict(self) -> tuple[RedriveState, str]:
        progress = self.progress
        done = f"moved {progress.moved} message(s), {progress.duplicates} duplicate(s)"
        blocked = [f"{q.broker}#{q.queue_id}: {q.blocked}" for q in progress.queues if q.blocked]
        if self._stopping.is_set():
            return RedriveState.CANCELLED, f"cancelled: {done}"
        if blocked:
            return RedriveState.FAILED, f"{done}; stopped on " + "; ".join(blocked)
        return RedriveState.SUCCEEDED, done

    def _queue(self, queue: QueueProgress) -> MessageQueue:
        return MessageQueue(self.topic, queue.broker, queue.queue_id)

    async def _resume_point(self, queue: QueueProgress) -> int:
        """Where to pull next: the committed offset, which may be ahead of `sent_offset` when status lagged."""
        if queue.blocked is not None or queue.remaining == 0:
            return queue.sent_offset
        try:
            committed = await self._retrying(lambda: self.source.committed_offset(self._queue(queue)),
                                             "reading the committed offset")
        except _GaveUp as error:
            queue.blocked = str(error)
            return queue.sent_offset
        position = min(max(queue.start_offset, committed or 0), queue.end_offset)
        if position > queue.sent_offset:  # committed means acknowledged: count what the status had not caught up with
            self.progress.moved += position - queue.sent_offset
            queue.sent_offset = position
        return position

    async def _batch(self, queue: QueueProgress, positions: list[int], index: int) -> bool:
        """Move up to one batch from the queue's position; whether the queue has more to move."""
        progress, position = self.progress, positions[index]
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
        acknowledged = position
        for message in pulled.messages:
            if message.queue_offset >= queue.end_offset or self._stopping.is_set() or progress.quota == 0:
                break
            try:
                await self._move(message)
            except (_GaveUp, NoOriginalTopic) as error:
                if self._stopping.is_set():
                    break
                progress.failed += 1
                self._block(queue, f"message {message.msg_id} at offset {message.queue_offset}: {error}")
                break
            progress.acknowledged(queue, message.queue_offset)
            acknowledged = message.queue_offset + 1
        if acknowledged > position:
            try:
                await self._retrying(lambda: self.source.commit(self._queue(queue), acknowledged), "commit")
            except _GaveUp as error:
                return self._block(queue, f"{error}; messages from offset {position} were delivered and will be "
                                          "delivered again by the next run")
        positions[index] = acknowledged
        if acknowledged == position and queue.blocked is None and not self._stopping.is_set() and progress.quota != 0:
            positions[index] = pulled.next_begin_offset  # the batch held nothing below end_offset
        return queue.blocked is None and positions[index] < queue.end_offset

    async def _move(self, message: MessageExt) -> None:
        outgoing = redrive_message(message, self.progress.target_topic)
        wait = self._pacer.delay(time.monotonic())
        if wait > 0:
            await asyncio.sleep(wait)
        await self._retrying(lambda: self.target.send(outgoing, msg_id=message.msg_id), f"send to {outgoing.topic}")

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
