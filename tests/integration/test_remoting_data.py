"""Our producer and pull consumer against real brokers of every bed version: round trip, retry ladder, DLQ.

Each scenario is cross-checked once with the official `mqadmin` from the same jars, so our client is not its
own judge. The bed's compressed ladder makes retry n wait level 3+n: 1 s, 2 s, 3 s, ...
"""

import asyncio
import re
import uuid
from collections.abc import AsyncIterator

import pytest

from rocketmq_chaos.experiments import create_topic
from rocketmq_lab.bed.rocketmq import RocketMQCluster
from rocketmq_retry.remoting import (
    Admin,
    ConnectionFailed,
    ConnectionPool,
    Message,
    MessageExt,
    MessageQueue,
    Producer,
    PullConsumer,
    PullStatus,
    SendStatus,
    SubscriptionGroupConfig,
    dlq_topic,
    original_topic,
    retry_topic,
)
from tests.messaging import next_message

ARRIVAL = 60.0  # bound for a retry or dead letter to show up; the ladder's own steps are 1-2 s


def _unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def pool() -> AsyncIterator[ConnectionPool]:
    async with ConnectionPool(request_timeout=15) as pool:
        yield pool


async def _drain(consumer: PullConsumer, queues: list[MessageQueue]) -> list[tuple[MessageQueue, MessageExt]]:
    """Everything currently stored in `queues`, from offset 0."""
    found = []
    for queue in queues:
        offset = 0
        while True:
            result = await consumer.pull(queue, offset)
            found += [(queue, message) for message in result.messages]
            if result.status is not PullStatus.FOUND:
                break
            offset = result.next_begin_offset
    return found


async def test_produce_pull_round_trip_keeps_ids_keys_tags_and_properties(
        pool: ConnectionPool, rocketmq_cluster: RocketMQCluster) -> None:
    admin = Admin(pool, [rocketmq_cluster.namesrv_addr])
    topic = await create_topic(admin, rocketmq_cluster, queues=2)
    producer = Producer(pool, [rocketmq_cluster.namesrv_addr])
    sent = {}
    for index in range(8):
        message = Message(topic, f"body-{index}".encode(), tags="TagA", keys=[f"key-{index}", "shared"],
                          properties={"origin": "it", "index": str(index)})
        result = await producer.send(message)
        assert result.status is SendStatus.SEND_OK
        assert result.brokers_tried == [result.receipt.queue.broker_name]
        sent[result.msg_id] = (message, result)
    assert {r.receipt.queue.broker_name for _, r in sent.values()} == {b.name for b in rocketmq_cluster.brokers}

    consumer = PullConsumer(pool, [rocketmq_cluster.namesrv_addr], _unique("it_data_group"))
    pulled = await _drain(consumer, await consumer.queues(topic))
    assert sorted(m.msg_id for _, m in pulled) == sorted(sent)
    for queue, stored in pulled:
        message, result = sent[stored.msg_id]
        assert (stored.body, stored.tags, stored.properties["KEYS"]) == (message.body, "TagA", " ".join(message.keys))
        assert {k: stored.properties[k] for k in message.properties} == message.properties
        assert (queue, stored.queue_offset, stored.offset_msg_id) == (
            result.receipt.queue, result.receipt.queue_offset, result.receipt.offset_msg_id)

    status = rocketmq_cluster.mqadmin("topicStatus", "-t", topic)
    max_offsets = re.findall(r"^\S+\s+\d+\s+\d+\s+(\d+)", status.stdout, re.M)  # broker, queue, min, max
    assert sum(int(n) for n in max_offsets) == 8, status.stdout


async def test_commit_offset_is_read_back(pool: ConnectionPool, rocketmq_cluster: RocketMQCluster) -> None:
    admin = Admin(pool, [rocketmq_cluster.namesrv_addr])
    topic = await create_topic(admin, rocketmq_cluster, queues=1)
    producer = Producer(pool, [rocketmq_cluster.namesrv_addr])
    for index in range(3):
        await producer.send(Message(topic, bytes([index])))
    consumer = PullConsumer(pool, [rocketmq_cluster.namesrv_addr], _unique("it_commit_group"))
    await consumer.heartbeat([topic])
    for queue in await consumer.queues(topic):
        result = await consumer.pull(queue, 0)
        await consumer.commit(queue, result.next_begin_offset)
        assert await consumer.committed_offset(queue) == result.next_begin_offset


@pytest.mark.parametrize("client_override", [None, 1], ids=["group-retryMaxTimes", "client-maxReconsumeTimes"])
async def test_send_back_walks_the_ladder_and_dead_letters_after_the_last_retry(
        pool: ConnectionPool, rocketmq_cluster: RocketMQCluster, client_override: int | None) -> None:
    """retryMaxTimes=2 on the group: 2 redeliveries then the DLQ, unless the client sends its own limit."""
    admin = Admin(pool, [rocketmq_cluster.namesrv_addr])
    topic = await create_topic(admin, rocketmq_cluster, queues=1)
    group = _unique("it_retry_group")
    for broker in rocketmq_cluster.brokers:
        await admin.update_subscription_group(broker.addr, SubscriptionGroupConfig(group, retry_max_times=2))
    sent = await Producer(pool, [rocketmq_cluster.namesrv_addr]).send(Message(topic, b"fails every time", keys=["k1"]))
    consumer = PullConsumer(pool, [rocketmq_cluster.namesrv_addr], group, max_reconsume_times=client_override)
    expected_retries = 2 if client_override is None else client_override

    queue, message = await next_message(consumer, topic, {}, within=ARRIVAL)
    offsets: dict[MessageQueue, int] = {}
    for retry in range(1, expected_retries + 1):
        await consumer.send_back(queue, message)
        queue, message = await next_message(consumer, retry_topic(group), offsets, within=ARRIVAL)
        assert (message.reconsume_times, message.msg_id, original_topic(message)) == (retry, sent.msg_id, topic)
    await consumer.send_back(queue, message)

    queue, dead = await next_message(consumer, dlq_topic(group), {}, within=ARRIVAL)
    assert (dead.msg_id, original_topic(dead), dead.body, dead.properties["KEYS"]) == (
        sent.msg_id, topic, b"fails every time", "k1")
    assert dead.reconsume_times == expected_retries + 1
    retry_queues = await consumer.queues(retry_topic(group))
    assert sum([await admin.max_offset(rocketmq_cluster.broker(q.broker_name).addr, q.topic, q.queue_id)
                for q in retry_queues]) == expected_retries, "a retry beyond the limit reached the retry topic"

    progress = rocketmq_cluster.mqadmin("topicStatus", "-t", dlq_topic(group))
    assert re.search(rf"^{re.escape(queue.broker_name)}\s+0\s+0\s+1\b", progress.stdout, re.M), progress.stdout


async def test_a_broker_killed_mid_call_fails_the_pending_call_at_once(
        pool: ConnectionPool, rocketmq_cluster: RocketMQCluster) -> None:
    """A long poll that would wait 20 s ends with ConnectionFailed when the broker dies, not with RemotingTimeout."""
    admin = Admin(pool, [rocketmq_cluster.namesrv_addr])
    topic = await create_topic(admin, rocketmq_cluster, queues=1)
    victim = rocketmq_cluster.brokers[-1]
    consumer = PullConsumer(pool, [rocketmq_cluster.namesrv_addr], _unique("it_kill_group"))
    [queue] = [q for q in await consumer.queues(topic) if q.broker_name == victim.name]
    polling = asyncio.create_task(consumer.pull(queue, 0, suspend=20.0))
    await asyncio.sleep(1.0)  # the request is on the wire and parked in the broker's hold service
    assert not polling.done()
    await asyncio.to_thread(rocketmq_cluster.kill, victim.name)
    try:
        with pytest.raises(ConnectionFailed, match="closed by the peer"):
            await polling
    finally:
        await asyncio.to_thread(rocketmq_cluster.restart, victim.name)
