"""`rocketmq-retry dlq list|export` on real brokers of every bed version: 1,000 real dead letters exported round-trip
(every id, key and body as sent), a selector that lists only its matches, the redrive group's committed offsets left as
they were, and a write-only dead-letter topic refused with what to do about it.

The CLI runs in-process (click's CliRunner) on a thread of its own, as it runs its own event loop.
"""

import asyncio
import base64
import json
import time
import uuid
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from rocketmq_lab.bed.rocketmq import RocketMQCluster
from rocketmq_retry.cli import main
from rocketmq_retry.remoting import (
    Admin,
    MessageExt,
    MessageQueue,
    Producer,
    PullConsumer,
    SubscriptionGroupConfig,
    TopicConfig,
    dlq_topic,
)
from rocketmq_retry.remoting.routing import master_addresses, readable_queues
from tests.messaging import dead_letter, end_offsets, until

WITHIN = 180.0  # bound for 1,000 messages to be sent, failed and dead-lettered on a loaded 2-core machine
COUNT = 1000
MOVED = 100  # dead letters a "previous redrive" has moved from one queue


def _unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


async def _cli(*args: str) -> tuple[Result, float]:
    """`rocketmq-retry` with `args`, and the seconds it took."""
    started = time.perf_counter()
    result = await asyncio.to_thread(CliRunner().invoke, main, list(args))
    return result, time.perf_counter() - started


async def _offsets(admin: Admin, group: str, topic: str) -> dict[MessageQueue, int | None]:
    """`group`'s committed offset on every queue of `topic`."""
    route = await admin.topic_route(topic)
    masters = master_addresses(route)
    return {queue: await admin.query_consumer_offset(masters[queue.broker_name], group, topic, queue.queue_id)
            for queue in readable_queues(topic, route)}


async def _dead_letters(admin: Admin, cluster: RocketMQCluster, count: int) -> tuple[str, list[MessageExt]]:
    """A group with `count` dead letters of a fresh topic on every master, and the messages as first stored."""
    topic, group = _unique("it_browse"), _unique("it_browse_group")
    for broker in cluster.brokers:
        await admin.create_or_update_topic(broker.addr, TopicConfig(topic, read_queue_nums=2, write_queue_nums=2))
    producer = Producer(admin.pool, admin.namesrv_addrs)
    brokers = {b.name for b in cluster.brokers}

    async def routed() -> bool:
        return {q.broker_name for q in (await producer.publish_info(topic, refresh=True)).queues} == brokers

    await until(routed, f"route of {topic} to every master", within=WITHIN)
    consumer = PullConsumer(admin.pool, admin.namesrv_addrs, group, max_reconsume_times=0)
    originals = await dead_letter(producer, consumer, topic, count, retries=0, within=WITHIN)

    async def all_dead() -> bool:
        return sum((await end_offsets(consumer, dlq_topic(group))).values()) == count

    await until(all_dead, f"{count} dead letters", within=WITHIN)
    return group, originals


def _records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


async def test_export_round_trips_list_selects_and_reading_commits_nothing(
        admin: Admin, rocketmq_cluster: RocketMQCluster, tmp_path: Path) -> None:
    group, originals = await _dead_letters(admin, rocketmq_cluster, COUNT)
    topic = dlq_topic(group)
    flags = ["--name-servers", rocketmq_cluster.namesrv_addr, "--group", group, "--broker-timeout", "15"]
    before = await _offsets(admin, group, topic)

    # Every dead letter, exported before any redrive: read as the failing group, the redrive group is not created.
    exported = tmp_path / "dead-letters.jsonl"
    result, took = await _cli("dlq", "export", *flags, "--output", str(exported))
    assert result.exit_code == 0, result.output
    print(f"dlq export of {COUNT} dead letters on {rocketmq_cluster.version}: {took:.2f} s")  # README
    records = _records(exported)
    by_id = {message.msg_id: message for message in originals}
    assert sorted(record["msgId"] for record in records) == sorted(by_id)
    for record in records:
        original = by_id[record["msgId"]]
        assert base64.b64decode(record["body"]) == original.body
        assert record["keys"] == original.properties["KEYS"].split(" ")
        # Failed once, its retries spent (maxReconsumeTimes 0): the broker counted the one consumption.
        assert (record["tags"], record["originalTopic"], record["reconsumeTimes"]) == ("failing", original.topic, 1)
        assert record["properties"]["index"] == original.properties["index"]
        assert record["originMessageId"] is not None
    positions = [(record["broker"], record["queueId"], record["queueOffset"]) for record in records]
    assert positions == sorted(positions)
    assert f"exported {COUNT} of {COUNT} pending dead letter(s)" in result.stderr
    for broker in rocketmq_cluster.brokers:
        assert f"{group}-redrive" not in await admin.get_all_subscription_groups(broker.addr)
    assert await _offsets(admin, group, topic) == before

    # A redrive moved the first MOVED of one queue: they are no longer pending, and reading moves nothing further.
    redrive = f"{group}-redrive"
    for broker in rocketmq_cluster.brokers:
        await admin.update_subscription_group(broker.addr, SubscriptionGroupConfig(redrive))
    first = records[0]
    moved = MessageQueue(topic, first["broker"], first["queueId"])
    await PullConsumer(admin.pool, admin.namesrv_addrs, redrive).commit(moved, MOVED)
    committed = await _offsets(admin, redrive, topic)
    pending = {record["properties"]["index"]: record["msgId"] for record in records
               if (record["broker"], record["queueId"]) != (moved.broker_name, moved.queue_id)
               or record["queueOffset"] >= MOVED}
    assert len(pending) == COUNT - MOVED
    gone = next(record["properties"]["index"] for record in records if record["properties"]["index"] not in pending)
    chosen = sorted({gone, *list(pending)[:3]})
    result, _ = await _cli("dlq", "list", *flags, *(f"--key=key-{index}" for index in chosen))
    assert result.exit_code == 0, result.output
    header, *rows = result.stdout.splitlines()
    assert header.split("\t")[0] == "ID"
    assert sorted(line.split("\t")[0] for line in rows) == sorted(pending[index] for index in chosen
                                                                 if index in pending)
    assert f"listed 3 of {COUNT - MOVED} pending dead letter(s)" in result.stderr
    assert await _offsets(admin, redrive, topic) == committed
    assert await _offsets(admin, group, topic) == before


async def test_a_write_only_dead_letter_topic_is_refused_with_the_fix(
        admin: Admin, rocketmq_cluster: RocketMQCluster) -> None:
    group = _unique("it_browse_legacy")
    topic = dlq_topic(group)
    first = rocketmq_cluster.brokers[0]
    await admin.create_or_update_topic(first.addr, TopicConfig(topic, 1, 1, perm=2))  # as brokers up to 4.9.1 do

    async def routed() -> bool:
        return bool((await admin.topic_route(topic)).queues)

    await until(routed, f"route of {topic}", within=WITHIN)
    result, _ = await _cli("dlq", "list", "--name-servers", rocketmq_cluster.namesrv_addr, "--group", group)
    assert result.exit_code == 1
    assert f"{topic} is not readable on {first.name} (perm 2)" in result.stderr
    assert "spec.readable: true" in result.stderr
