"""The redrive engine on real brokers of every bed version: dead letters go back to their topic, nothing is lost.

Messages are dead-lettered for real (a consumer hands each back with maxReconsumeTimes 0, so the broker moves it
to %DLQ%<group>), redriven by our engine, then consumed from the original topic and compared with what the
producer stored there the first time.
"""

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import NamedTuple

import pytest

from rocketmq_lab.bed.rocketmq import RocketMQCluster
from rocketmq_retry.domain.dead_letters import DeadLetterQueueSpec, RedriveSpec
from rocketmq_retry.domain.redrive import RedriveProgress, RedriveScope, RedriveState
from rocketmq_retry.reconcile.redrive import BATCH, Redrive, begin_redrive
from rocketmq_retry.remoting import (
    Admin,
    ConnectionPool,
    Message,
    MessageExt,
    MessageQueue,
    Perm,
    Producer,
    PullConsumer,
    SendResult,
    TopicConfig,
    dlq_topic,
    retry_topic,
)
from rocketmq_retry.remoting.routing import master_addresses
from tests.messaging import collect, dead_letter, end_offsets, until

WITHIN = 90.0  # bound for anything to arrive on a loaded 2-core machine
CALL_TIMEOUT = 15.0
PROPERTIES_OF_A_RETRY = {"RETRY_TOPIC", "ORIGIN_MESSAGE_ID", "RECONSUME_TIME", "MAX_RECONSUME_TIMES", "DELAY",
                         "REAL_TOPIC", "REAL_QID"}


@pytest.fixture
async def pool() -> AsyncIterator[ConnectionPool]:
    async with ConnectionPool(request_timeout=CALL_TIMEOUT) as pool:
        yield pool


def _unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


class DeadLetters(NamedTuple):
    spec: DeadLetterQueueSpec  # of their DLQ
    topic: str  # where they were first sent, and where a redrive sends them back
    originals: list[MessageExt]
    reader: PullConsumer  # a group of its own, to read `topic` from `ends`
    ends: dict[MessageQueue, int]  # where `topic` ended before any redrive


async def _dead_letters(pool: ConnectionPool, cluster: RocketMQCluster, count: int) -> DeadLetters:
    """A fresh topic on every master, `count` messages sent to it and dead-lettered, and a reader of the topic."""
    admin = Admin(pool, [cluster.namesrv_addr])
    topic, group = _unique("it_redrive"), _unique("it_redrive_group")
    for broker in cluster.brokers:
        await admin.create_or_update_topic(broker.addr, TopicConfig(topic, read_queue_nums=2, write_queue_nums=2))
    producer = Producer(pool, [cluster.namesrv_addr])
    brokers = {b.name for b in cluster.brokers}

    async def routed() -> bool:
        return {q.broker_name for q in (await producer.publish_info(topic, refresh=True)).queues} == brokers

    await until(routed, f"route of {topic} to every master", within=WITHIN)
    consumer = PullConsumer(pool, [cluster.namesrv_addr], group, max_reconsume_times=0)
    originals = await dead_letter(producer, consumer, topic, count, retries=0, within=WITHIN)

    async def all_dead() -> bool:
        return await _stored(admin, dlq_topic(group)) == count

    await until(all_dead, f"{count} dead letters", within=WITHIN)
    reader = PullConsumer(pool, [cluster.namesrv_addr], _unique("it_redrive_reader"))
    return DeadLetters(DeadLetterQueueSpec(group), topic, originals, reader, await end_offsets(reader, topic))


async def _stored(admin: Admin, topic: str) -> int:
    """Messages stored in `topic` over every master."""
    route = await admin.topic_route(topic)
    masters = master_addresses(route)
    return sum([await admin.max_offset(masters[q.broker_name], topic, queue_id)
                for q in route.queues for queue_id in range(q.read_queue_nums)])


def _engine(pool: ConnectionPool, cluster: RocketMQCluster, spec: DeadLetterQueueSpec,
            progress: RedriveProgress) -> Redrive:
    servers = [cluster.namesrv_addr]
    return Redrive(PullConsumer(pool, servers, spec.redrive_group), Producer(pool, servers), spec.consumer_group,
                   progress)


TOPIC = RedriveScope.TOPIC  # these runs are read back from the topic


async def test_redrive_sends_every_dead_letter_back_as_it_was_first_stored(
        pool: ConnectionPool, rocketmq_cluster: RocketMQCluster) -> None:
    count, rate = 60, 100
    admin = Admin(pool, [rocketmq_cluster.namesrv_addr])
    spec, topic, originals, reader, ends = await _dead_letters(pool, rocketmq_cluster, count)
    route = await admin.topic_route(dlq_topic(spec.consumer_group))
    assert {q.perm & Perm.READ for q in route.queues} == {Perm.READ}  # 4.9.2+ and 5.x create it readable
    assert all(q.read_queue_nums == 1 for q in route.queues)

    progress = await begin_redrive(admin, spec, RedriveSpec("r1", rate=rate, scope=TOPIC), datetime.now(UTC),
                                   call_timeout=CALL_TIMEOUT)
    assert sum(q.remaining for q in progress.queues) == count
    started = time.monotonic()
    run = await _engine(pool, rocketmq_cluster, spec, progress).run()
    elapsed = time.monotonic() - started

    assert (run.state, run.moved, run.failed, run.duplicates, run.remaining) == (
        RedriveState.SUCCEEDED, count, 0, 0, 0), run.message
    assert elapsed >= (count - 1 - rate // 20) / rate  # the rate held (allowing one burst)
    redriven = [message for _, message in await collect(reader, topic, count, ends, within=WITHIN)]
    by_id = {message.msg_id: message for message in originals}
    assert sorted(message.msg_id for message in redriven) == sorted(by_id)
    for message in redriven:
        original = by_id[message.msg_id]
        assert (message.body, message.tags, message.properties["KEYS"], message.properties["index"],
                message.flag) == (original.body, original.tags, original.properties["KEYS"],
                                  original.properties["index"], original.flag)
        assert message.reconsume_times == 0
        assert not PROPERTIES_OF_A_RETRY & set(message.properties), message.properties
        assert message.properties == original.properties  # as the producer stored it the first time

    # The redrive group has passed every dead letter: a second run finds nothing, and the messages stay stored.
    again = await begin_redrive(admin, spec, RedriveSpec("r2"), datetime.now(UTC), call_timeout=CALL_TIMEOUT)
    assert sum(q.remaining for q in again.queues) == 0
    assert await _stored(admin, dlq_topic(spec.consumer_group)) == count


class CrashingProducer(Producer):
    """Cancels the run's task right after the broker stored message number `at`, before the engine sees the answer:
    what an operator killed mid-send leaves behind."""

    def __init__(self, pool: ConnectionPool, servers: list[str], *, at: int) -> None:
        super().__init__(pool, servers)
        self.at, self.sent = at, 0
        self.task: asyncio.Task[RedriveProgress] | None = None

    async def send(self, message: Message, *, reconsume_times: int | None = None,
                   max_reconsume_times: int | None = None, msg_id: str | None = None) -> SendResult:
        result = await super().send(message, msg_id=msg_id)
        self.sent += 1
        if self.sent == self.at and self.task is not None:
            self.task.cancel()
            await asyncio.sleep(0)  # the cancellation lands here
        return result


async def test_an_interrupted_redrive_resumes_and_every_message_arrives_at_least_once(
        pool: ConnectionPool, rocketmq_cluster: RocketMQCluster) -> None:
    count, crash_at = 150, 45  # one committed batch of 32 on broker-a, then 12 acknowledged on broker-b
    admin = Admin(pool, [rocketmq_cluster.namesrv_addr])
    spec, topic, originals, reader, ends = await _dead_letters(pool, rocketmq_cluster, count)
    progress = await begin_redrive(admin, spec, RedriveSpec("r1", rate=100, scope=TOPIC), datetime.now(UTC),
                                   call_timeout=CALL_TIMEOUT)
    assert [q.broker for q in progress.queues] == sorted(b.name for b in rocketmq_cluster.brokers)
    assert all(q.remaining > BATCH for q in progress.queues)

    servers = [rocketmq_cluster.namesrv_addr]
    crashing = CrashingProducer(pool, servers, at=crash_at)
    engine = Redrive(PullConsumer(pool, servers, spec.redrive_group), crashing, spec.consumer_group,
                     progress)
    crashing.task = task = asyncio.create_task(engine.run())
    await asyncio.gather(task, return_exceptions=True)
    assert task.cancelled()
    assert (progress.state, progress.moved) == (RedriveState.RUNNING, crash_at - 1)

    run = await _engine(pool, rocketmq_cluster, spec, progress).run()
    assert (run.state, run.moved, run.failed) == (RedriveState.SUCCEEDED, count, 0), run.message
    assert run.duplicates == crash_at - 1 - BATCH  # acknowledged on broker-b but not committed: sent again
    arrivals = Counter(message.msg_id for _, message in await collect(reader, topic, count + run.duplicates + 1,
                                                                      ends, within=WITHIN))
    assert set(arrivals) == {message.msg_id for message in originals}  # none lost
    # Plus the message stored but never acknowledged when the run crashed: it is sent again, and counted as moved.
    assert sum(arrivals.values()) == count + run.duplicates + 1


async def test_a_broker_killed_mid_redrive_ends_the_run_clearly_and_loses_no_message(
        pool: ConnectionPool, rocketmq_cluster: RocketMQCluster) -> None:
    """SIGKILL the master holding half the dead letters mid-run: the run finishes Succeeded or Failed with a message;
    resumed after the restart, every dead letter reaches its topic at least once."""
    count = 120
    admin = Admin(pool, [rocketmq_cluster.namesrv_addr])
    spec, topic, originals, reader, ends = await _dead_letters(pool, rocketmq_cluster, count)
    progress = await begin_redrive(admin, spec, RedriveSpec("r1", rate=40, scope=TOPIC), datetime.now(UTC),
                                   call_timeout=CALL_TIMEOUT)
    running = asyncio.create_task(_engine(pool, rocketmq_cluster, spec, progress).run())

    async def under_way() -> bool:
        return progress.moved >= 20

    await until(under_way, "20 messages moved", within=WITHIN)
    victim = rocketmq_cluster.brokers[-1]
    await asyncio.to_thread(rocketmq_cluster.kill, victim.name)
    try:
        first = await running
    finally:
        await asyncio.to_thread(rocketmq_cluster.restart, victim.name)
    assert first.state in (RedriveState.SUCCEEDED, RedriveState.FAILED), first
    assert first.message, "a run that ends must say how"

    if first.state is RedriveState.FAILED:  # the operator resumes a failed run with a new request; so do we here
        progress = await begin_redrive(admin, spec, RedriveSpec("r2", rate=100, scope=TOPIC), datetime.now(UTC),
                                       call_timeout=CALL_TIMEOUT)
        again = await _engine(pool, rocketmq_cluster, spec, progress).run()
        assert again.state is RedriveState.SUCCEEDED, again.message
    wanted, arrived = {message.msg_id for message in originals}, set()
    async with asyncio.timeout(WITHIN):  # duplicates are allowed, so read until every id came, not `count` messages
        while not wanted <= arrived:
            arrived |= {message.msg_id for _, message in await collect(reader, topic, 1, ends, within=WITHIN)}


async def test_a_redrive_to_the_group_stores_each_dead_letter_in_its_retry_topic_as_a_first_retry(
        pool: ConnectionPool, rocketmq_cluster: RocketMQCluster) -> None:
    count = 20
    admin = Admin(pool, [rocketmq_cluster.namesrv_addr])
    spec, topic, originals, reader, _ = await _dead_letters(pool, rocketmq_cluster, count)
    retries = await end_offsets(reader, retry_topic(spec.consumer_group))
    topic_ends = await end_offsets(reader, topic)
    progress = await begin_redrive(admin, spec, RedriveSpec("r1", rate=1000), datetime.now(UTC),
                                   call_timeout=CALL_TIMEOUT)
    run = await _engine(pool, rocketmq_cluster, spec, progress).run()
    assert (run.state, run.moved, run.sends_to) == (RedriveState.SUCCEEDED, count, RedriveScope.GROUP), run.message

    stored = [message for _, message in await collect(reader, retry_topic(spec.consumer_group), count, retries,
                                                      within=WITHIN)]
    by_id = {message.msg_id: message for message in originals}
    assert sorted(message.msg_id for message in stored) == sorted(by_id)
    for message in stored:
        original = by_id[message.msg_id]
        # What the push consumer restores (RETRY_TOPIC) and the broker keeps through send-backs (ORIGIN_MESSAGE_ID),
        # stored as a first retry: the group's whole ladder lies ahead.
        assert (message.reconsume_times, message.properties["RETRY_TOPIC"], message.body,
                message.properties["KEYS"], message.tags) == (0, topic, original.body, original.properties["KEYS"],
                                                              original.tags)
        assert message.properties["ORIGIN_MESSAGE_ID"]
        assert not {"DELAY", "MAX_RECONSUME_TIMES", "RECONSUME_TIME"} & set(message.properties)
    assert await end_offsets(reader, topic) == topic_ends  # the topic's other groups got nothing
