"""Reusing a master's recent read: only within max_age, with the operator's own writes folded in, never after a
failed write or read, never without topics when a pass needs them; and never to edit a group the broker holds."""

from datetime import UTC, datetime, timedelta

import pytest

from rocketmq_retry.domain.broker import BrokerLine, default_group_config
from rocketmq_retry.domain.spec import parse_cluster, parse_spec
from rocketmq_retry.reconcile.apply import Intent, Mode, reconcile_cluster
from rocketmq_retry.reconcile.reading import Master, ReadFailed
from rocketmq_retry.reconcile.snapshots import Snapshots
from rocketmq_retry.remoting.models import TopicConfig
from tests.unit.fakes import two_masters

A = Master("broker-a", "127.0.0.1:10911")


T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


async def test_a_read_is_recent_within_max_age_only() -> None:
    admin = two_masters()
    snapshots = Snapshots()
    assert snapshots.recent(A, with_topics=False, max_age=2.0, now=T0) is None

    first = await snapshots.read(admin, A, 1.0, with_topics=False, now=T0)
    later = T0 + timedelta(seconds=1.9)
    assert snapshots.recent(A, with_topics=False, max_age=2.0, now=later) is first
    assert snapshots.recent(A, with_topics=False, max_age=0.0, now=later) is None
    assert snapshots.recent(A, with_topics=False, max_age=2.0, now=later + timedelta(seconds=2)) is None


async def test_a_pass_that_needs_topics_does_not_reuse_a_read_without_them() -> None:
    admin = two_masters()
    snapshots = Snapshots()
    await snapshots.read(admin, A, 1.0, with_topics=False, now=T0)
    assert snapshots.recent(A, with_topics=True, max_age=2.0, now=T0) is None

    with_topics = await snapshots.read(admin, A, 1.0, with_topics=True, now=T0)

    assert with_topics.topics_read
    assert snapshots.recent(A, with_topics=False, max_age=2.0, now=T0) is with_topics
    assert admin.broker("broker-a").topic_reads == 1


async def test_writes_are_folded_in_and_a_failed_write_or_read_drops_the_kept_read() -> None:
    admin = two_masters()
    snapshots = Snapshots()
    await snapshots.read(admin, A, 1.0, with_topics=False, now=T0)
    snapshots.wrote(A, [{"groupName": "orders", "retryMaxTimes": 3}], {"orders": TopicConfig("%RETRY%orders")})

    kept = snapshots.recent(A, with_topics=False, max_age=2.0, now=T0)
    assert kept is not None
    assert kept.groups["orders"]["retryMaxTimes"] == 3
    assert kept.retry_topics["orders"].topic_name == "%RETRY%orders"
    snapshots.forget(A)
    assert snapshots.recent(A, with_topics=False, max_age=2.0, now=T0) is None

    await snapshots.read(admin, A, 1.0, with_topics=False, now=T0)
    admin.broker("broker-a").down = True
    with pytest.raises(ReadFailed):
        await snapshots.read(admin, A, 1.0, with_topics=False, now=T0)
    assert snapshots.recent(A, with_topics=False, max_age=2.0, now=T0) is None


async def test_an_event_pass_creates_from_a_recent_read_but_edits_an_existing_group_only_after_reading_it() -> None:
    """Another tool changed a field the policy does not own after the operator's last read: the edit of the owned
    field must keep it, so the pass reads the group table again rather than writing the whole config it read before."""
    admin = two_masters()
    cluster = parse_cluster({"nameServers": "127.0.0.1:9876"})
    for broker in admin.brokers.values():
        broker.store(default_group_config("payments", BrokerLine.V5))
    snapshots = Snapshots()

    async def apply(group: str, retries: int, now: datetime) -> None:
        intent = Intent(f"ns/{group}", parse_spec({"consumerGroup": group, "maxRetries": retries}), Mode.APPLY)
        await reconcile_cluster(admin, cluster, [intent], call_timeout=1.0, now=now, snapshots=snapshots,
                                max_age=2.0)

    await apply("orders", 3, T0)  # no kept read yet: reads, then creates the group
    reads = admin.broker("broker-a").group_reads
    await apply("invoices", 3, T0 + timedelta(seconds=0.5))  # a new group: the recent read tells it is missing
    assert admin.broker("broker-a").group_reads == reads

    for broker in admin.brokers.values():  # another tool, after the operator's read
        broker.groups["payments"]["consumeEnable"] = False
    await apply("payments", 7, T0 + timedelta(seconds=1))

    assert admin.broker("broker-a").group_reads == reads + 1
    for broker in admin.brokers.values():
        assert (broker.groups["payments"]["retryMaxTimes"], broker.groups["payments"]["consumeEnable"]) == (7, False)
