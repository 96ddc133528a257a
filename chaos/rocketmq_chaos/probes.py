"""Probe clients that load the brokers during an experiment and write what they see to the journal.

The producer is open-loop (sends start on a fixed schedule whether or not earlier ones finished), so a
broker that stalls shows up as latency and failures instead of silently slowing the load down.
"""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Final

from rocketmq_retry.remoting import (
    BrokerError,
    Message,
    MessageExt,
    MessageQueue,
    Producer,
    PullConsumer,
    PullStatus,
    RemotingError,
    SendAttempt,
    SendFailed,
    dlq_topic,
    retry_topic,
)

from .journal import Attempt, DeadLetter, HandBack, Journal, Receive, Send

Clock = Callable[[], float]
HEARTBEAT_INTERVAL: Final = 30.0  # the official clients' heartbeatBrokerInterval


class ProducerProbe:
    """Journals every send with its attempts, each answered one with the status its broker stored it with."""

    def __init__(self, producer: Producer, topic: str, journal: Journal, *, rate: float, max_in_flight: int = 256,
                 clock: Clock = time.time) -> None:
        self.producer = producer
        self.topic = topic
        self.journal = journal
        self.rate = rate
        self._slots = asyncio.Semaphore(max_in_flight)
        self._clock = clock

    async def run(self, duration: float) -> int:
        """Send for `duration` seconds at `rate` messages/s; returns how many sends were started."""
        loop = asyncio.get_running_loop()
        begun = loop.time()
        tasks: set[asyncio.Task[None]] = set()
        started = 0
        while (due := begun + started / self.rate) < begun + duration:
            await asyncio.sleep(max(0.0, due - loop.time()))
            await self._slots.acquire()
            task = asyncio.create_task(self._send(started))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            started += 1
        await asyncio.gather(*tasks)
        return started

    async def _send(self, sequence: int) -> None:
        t = self._clock()
        begun = time.monotonic()
        try:
            result = await self.producer.send(Message(self.topic, f"probe-{sequence}".encode(), keys=[str(sequence)]))
        except SendFailed as failed:
            self.journal.record(Send(t, failed.msg_id, False, time.monotonic() - begun,
                                     _attempts(failed.attempts, t, begun), str(failed)))
        else:
            self.journal.record(Send(t, result.msg_id, True, time.monotonic() - begun,
                                     _attempts(result.attempts, t, begun), status=result.status.value))
        finally:
            self._slots.release()


def _attempts(attempts: Sequence[SendAttempt], wall: float, monotonic: float) -> tuple[Attempt, ...]:
    """The producer's attempts (monotonic start times) on the journal's wall clock."""
    return tuple(Attempt(a.broker_name, wall + (a.started - monotonic), a.latency, a.error,
                         None if a.status is None else a.status.value) for a in attempts)


async def stored(consumer: PullConsumer, topic: str) -> AsyncIterator[tuple[MessageQueue, MessageExt]]:
    """Every message stored in `topic` now, read from offset 0 of each queue; nothing while it has no route (a
    retry or dead-letter topic before its first message)."""
    try:
        queues = await consumer.queues(topic)
    except BrokerError:
        return
    for queue in queues:
        offset = 0
        while True:
            result = await consumer.pull(queue, offset)
            for message in result.messages:
                yield queue, message
            if result.status is not PullStatus.FOUND:
                break
            offset = result.next_begin_offset


async def drain(consumer: PullConsumer, topic: str, journal: Journal, *, clock: Clock = time.time) -> int:
    """Read every message currently stored in `topic` from offset 0 and record it; returns how many."""
    count = 0
    async for queue, message in stored(consumer, topic):
        journal.record(_receive(clock(), queue, message))
        count += 1
    return count


async def drain_dead_letters(consumer: PullConsumer, journal: Journal, *, clock: Clock = time.time) -> int:
    """Record every message stored in the DLQ of the consumer's group; returns how many."""
    count = 0
    async for queue, message in stored(consumer, dlq_topic(consumer.group)):
        journal.record(_dead_letter(clock(), queue, message))
        count += 1
    return count


async def dead_letters_reach(consumer: PullConsumer, count: int, *, poll_interval: float = 0.5) -> None:
    """Wait until the DLQ of the consumer's group holds at least `count` messages (the caller bounds the wait)."""
    while True:
        if sum([1 async for _ in stored(consumer, dlq_topic(consumer.group))]) >= count:
            return
        await asyncio.sleep(poll_interval)


def _receive(t: float, queue: MessageQueue, message: MessageExt) -> Receive:
    return Receive(t, message.msg_id, queue.topic, queue.broker_name, message.reconsume_times,
                   message.store_timestamp / 1000, message.properties.get("ORIGIN_MESSAGE_ID"))


def _dead_letter(t: float, queue: MessageQueue, message: MessageExt) -> DeadLetter:
    return DeadLetter(t, message.msg_id, queue.broker_name, message.reconsume_times, message.store_timestamp / 1000)


class FailingConsumer:
    """Fails every delivery of `topic` on purpose and follows each message through its retries to the DLQ.

    Reads the topic, the group's retry topic and its DLQ; retry and DLQ topics have no route until the
    broker creates them on the first hand-back, which is waited out. Like the official clients it sends a heartbeat
    to every master every `HEARTBEAT_INTERVAL` s: a broker creates the group's retry topic on a heartbeat when it lacks
    it (ClientManageProcessor.heartBeat), which a newly elected master does when its replica had not yet copied the
    topic; without it the retries it holds stay unreadable.
    """

    def __init__(self, consumer: PullConsumer, topic: str, journal: Journal, *, clock: Clock = time.time) -> None:
        self.consumer = consumer
        self.topic = topic
        self.journal = journal
        self._clock = clock
        self._offsets: dict[MessageQueue, int] = {}

    async def run(self, dead_letters: int, *, within: float, poll_interval: float = 0.1, settle: float = 0.0) -> None:
        """Until `dead_letters` messages reached the DLQ, then `settle` seconds more (copies a broker stored twice
        climb later than the first); TimeoutError after `within` seconds."""
        group = self.consumer.group
        await self._skip_earlier_runs((retry_topic(group), dlq_topic(group)))
        loop = asyncio.get_running_loop()
        settled_at: float | None = None
        heartbeat_at = loop.time()
        async with asyncio.timeout(within):
            while settled_at is None or loop.time() < settled_at:
                if loop.time() >= heartbeat_at:
                    await self._heartbeat()
                    heartbeat_at = loop.time() + HEARTBEAT_INTERVAL
                for topic in (self.topic, retry_topic(group), dlq_topic(group)):
                    await self._poll(topic)
                if settled_at is None and len(self.journal.of(DeadLetter)) >= dead_letters:
                    settled_at = loop.time() + settle
                await asyncio.sleep(poll_interval)

    async def _skip_earlier_runs(self, topics: Sequence[str]) -> None:
        """A group that existed before (the operator's, a demo run earlier) already has retries and dead letters."""
        for topic in topics:
            try:
                queues = await self.consumer.queues(topic)
            except BrokerError:
                continue
            for queue in queues:
                self._offsets[queue] = await self.consumer.max_offset(queue)

    async def _heartbeat(self) -> None:
        with contextlib.suppress(RemotingError):  # a master killed mid-ladder: the next heartbeat finds its successor
            await self.consumer.heartbeat([self.topic])

    async def _poll(self, topic: str) -> None:
        try:
            queues = await self.consumer.queues(topic)
        except BrokerError:  # no route yet
            return
        for queue in queues:
            try:
                result = await self.consumer.pull(queue, self._offsets.get(queue, 0))
                for message in result.messages:
                    await self._handle(queue, message)
                    self._offsets[queue] = message.queue_offset + 1
                self._offsets[queue] = result.next_begin_offset
            except RemotingError:  # a broker killed mid-ladder: read on from the last handled message when it is back
                continue

    async def _handle(self, queue: MessageQueue, message: MessageExt) -> None:
        now = self._clock()
        if queue.topic == dlq_topic(self.consumer.group):
            self.journal.record(_dead_letter(now, queue, message))
            return
        self.journal.record(_receive(now, queue, message))
        await self.consumer.send_back(queue, message)
        self.journal.record(HandBack(self._clock(), message.msg_id, message.reconsume_times))

