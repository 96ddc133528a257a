"""Reusing a master's recent read: only within max_age, with the operator's own writes folded in, never after a
failed write, and never without topics when a pass needs them."""

from datetime import UTC, datetime, timedelta

import pytest

from rocketmq_retry.reconcile.reading import Master, ReadFailed
from rocketmq_retry.reconcile.snapshots import Snapshots
from tests.unit.fakes import two_masters

A = Master("broker-a", "127.0.0.1:10911")


T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


async def test_a_read_is_reused_within_max_age_and_read_again_after() -> None:
    admin = two_masters()
    snapshots = Snapshots()
    broker = admin.broker("broker-a")

    first = await snapshots.read(admin, A, 1.0, with_topics=False, max_age=2.0, now=T0)
    later = T0 + timedelta(seconds=1.9)
    assert await snapshots.read(admin, A, 1.0, with_topics=False, max_age=2.0, now=later) is first
    assert await snapshots.read(admin, A, 1.0, with_topics=False, max_age=0.0, now=later) is not first  # fresh
    await snapshots.read(admin, A, 1.0, with_topics=False, max_age=2.0, now=later + timedelta(seconds=2))

    assert broker.group_reads == 3


async def test_a_pass_that_needs_topics_does_not_reuse_a_read_without_them() -> None:
    admin = two_masters()
    snapshots = Snapshots()
    await snapshots.read(admin, A, 1.0, with_topics=False, max_age=2.0, now=T0)

    with_topics = await snapshots.read(admin, A, 1.0, with_topics=True, max_age=2.0, now=T0)

    assert with_topics.topics_read
    assert await snapshots.read(admin, A, 1.0, with_topics=False, max_age=2.0, now=T0) is with_topics
    assert admin.broker("broker-a").topic_reads == 1


async def test_writes_are_folded_in_and_a_failed_write_or_read_drops_the_kept_read() -> None:
    admin = two_masters()
    snapshots = Snapshots()
    await snapshots.read(admin, A, 1.0, with_topics=False, max_age=2.0, now=T0)
    snapshots.wrote(A, [{"groupName": "orders", "retryMaxTimes": 3}])

    kept = await snapshots.read(admin, A, 1.0, with_topics=False, max_age=2.0, now=T0)
    assert kept.groups["orders"]["retryMaxTimes"] == 3
    snapshots.forget(A)
    assert "orders" not in (await snapshots.read(admin, A, 1.0, with_topics=False, max_age=2.0, now=T0)).groups

    admin.broker("broker-a").down = True
    with pytest.raises(ReadFailed):
        await snapshots.read(admin, A, 1.0, with_topics=False, max_age=0.0, now=T0)
    admin.broker("broker-a").down = False
    reads = admin.broker("broker-a").group_reads
    await snapshots.read(admin, A, 1.0, with_topics=False, max_age=2.0, now=T0)
    assert admin.broker("broker-a").group_reads == reads + 1
