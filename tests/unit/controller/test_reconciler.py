"""The event-driven reconciler: what a watch event queues, what a worker writes, backoff, takeover on deletion."""

import asyncio
from collections.abc import AsyncIterator, Callable, Collection
from dataclasses import replace
from typing import Any

import pytest

from rocketmq_retry.controller.reconciler import Reconciler
from rocketmq_retry.controller.records import PolicyRecord
from rocketmq_retry.domain.jsontypes import JsonObject
from rocketmq_retry.domain.management import PAUSE_ANNOTATION
from tests.unit.controller.test_engine import NAMESRV, NOW, ready, record, runtime_for
from tests.unit.controller.test_sweep import RecordingSink
from tests.unit.fakes import FakeAdmin, claims, two_masters


def _spec(group: str, retries: int = 3) -> dict[str, Any]:
    return {"cluster": NAMESRV, "consumerGroup": group, "maxRetries": retries}


class Bed:
    """A reconciler with its workers running over the fake cluster, the claims index it reads and the sink it
    writes to."""

    def __init__(self, admin: FakeAdmin, sink: RecordingSink) -> None:
        self.admin = admin
        self.sink = sink
        self.claims = claims()
        self.leading = True
        self.leadership_asked = 0
        self.reconciler = Reconciler(runtime_for(admin), self.claims, sink, workers=8, backoff=lambda _: 0.05,
                                     clock=lambda: NOW, leads=self._leads)

    async def _leads(self, namespaces: Collection[str]) -> bool:
        assert set(namespaces) == {"ns"}
        self.leadership_asked += 1
        return self.leading

    def statuses(self, name: str) -> list[JsonObject]:
        return [status for ref, status in self.sink.patches if ref == f"ns/{name}"]

    async def settled(self, done: Callable[[], bool], what: str) -> None:
        """Wait until `done`, then a moment more, so that work it did not expect would show."""
        for _ in range(200):
            if done():
                await asyncio.sleep(0.1)
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"not reached in 2 s: {what}")


@pytest.fixture
async def bed() -> AsyncIterator[Bed]:
    found = Bed(two_masters(), RecordingSink())
    workers = asyncio.create_task(found.reconciler.run())
    yield found
    workers.cancel()
    with pytest.raises(asyncio.CancelledError):
        await workers


def _echo(policy: PolicyRecord, status: JsonObject) -> PolicyRecord:
    """The watch event the operator's own status write brings back."""
    return replace(policy, status=status)


async def test_a_new_policy_is_applied_once_and_its_own_status_write_queues_nothing(bed: Bed) -> None:
    policy = record("orders", _spec("orders"))
    bed.claims.update(claims(policy))
    bed.reconciler.observe(policy)
    await bed.settled(lambda: bool(bed.sink.patches), "a status write")

    [status] = bed.statuses("orders")
    assert ready(status)[:2] == ("True", "Synced")
    assert bed.sink.events == [("ns/orders", "Synced")]
    bed.reconciler.observe(_echo(policy, status))
    bed.reconciler.observe(_echo(policy, status))
    await asyncio.sleep(0.1)
    assert len(bed.sink.patches) == 1
    assert bed.admin.broker("broker-a").writes == [["orders"]]


async def test_a_new_generation_or_annotation_is_reconciled_again(bed: Bed) -> None:
    policy = record("orders", _spec("orders", retries=3))
    bed.claims.update(claims(policy))
    bed.reconciler.observe(policy)
    await bed.settled(lambda: len(bed.sink.patches) == 1, "the first status")

    edited = replace(policy, spec=_spec("orders", retries=5), generation=2)
    bed.claims.update(claims(edited))
    bed.reconciler.observe(edited)
    await bed.settled(lambda: len(bed.sink.patches) == 2, "the status of generation 2")
    assert bed.statuses("orders")[-1]["observedGeneration"] == 2
    assert bed.admin.broker("broker-b").groups["orders"]["retryMaxTimes"] == 5

    paused = replace(edited, annotations={PAUSE_ANNOTATION: "true"})
    bed.claims.update(claims(paused))
    bed.reconciler.observe(paused)
    await bed.settled(lambda: len(bed.sink.patches) == 3, "the paused status")
    assert ready(bed.statuses("orders")[-1])[1] == "ReconciliationPaused"


async def test_a_burst_of_events_costs_a_couple_of_batched_writes_and_one_status_each(bed: Bed) -> None:
    policies = [record(f"p{n}", _spec(f"g{n}")) for n in range(50)]
    bed.claims.update(claims(*policies))
    for policy in policies:
        bed.reconciler.observe(policy)
        bed.reconciler.observe(policy)  # a second event of the same version
    await bed.settled(lambda: len(bed.sink.patches) >= 50, "50 statuses")

    assert sorted(ref for ref, _ in bed.sink.patches) == sorted(f"ns/p{n}" for n in range(50))
    writes = bed.admin.broker("broker-a").writes
    assert len(writes) <= 8  # at most one pass per worker's call, folded; one per policy would be 50
    assert sorted(group for call in writes for group in call) == sorted(f"g{n}" for n in range(50))


async def test_a_retryable_outcome_is_retried_with_backoff_until_it_clears(bed: Bed) -> None:
    bed.admin.namesrv_down = True
    earlier = {"conditions": [{"type": "Ready", "status": "False", "reason": "BrokerUnreachable", "message": "old",
                               "lastTransitionTime": "2026-01-01T00:00:00Z"}]}
    policy = record("orders", _spec("orders"), generation=2, status=earlier)
    bed.claims.update(claims(policy))
    bed.reconciler.observe(policy)
    await bed.settled(lambda: bool(bed.sink.patches), "the unreachable status")

    [status] = bed.statuses("orders")
    assert status["observedGeneration"] == 2
    assert status["totalMasters"] == 0
    assert ready(status)[1:] == ("BrokerUnreachable", ready(status)[2])
    assert ready(status)[2].startswith("cannot list the cluster's masters: name servers: ")
    assert status["conditions"][0]["lastTransitionTime"] == "2026-01-01T00:00:00Z"  # the condition held
    assert bed.sink.events == []  # the reason did not change

    bed.admin.namesrv_down = False
    await bed.settled(lambda: len(bed.sink.patches) == 2, "the synced status after a retry")
    assert ready(bed.statuses("orders")[-1])[1] == "Synced"
    await asyncio.sleep(0.2)
    assert len(bed.sink.patches) == 2  # Synced is not retried


async def test_only_the_leading_replica_retries(bed: Bed) -> None:
    bed.admin.namesrv_down = True
    policy = record("orders", _spec("orders"))
    bed.claims.update(claims(policy))
    bed.reconciler.observe(policy)
    await bed.settled(lambda: bed.leadership_asked >= 2, "two retries")
    assert len(bed.sink.patches) == 1  # the first attempt is an event's: kopf delivers those to the leader only

    bed.leading = False
    asked = bed.leadership_asked
    await asyncio.sleep(0.3)
    assert bed.leadership_asked == asked + 1  # asked once, then the retries stopped

    bed.admin.namesrv_down = False
    edited = replace(policy, generation=2)
    bed.reconciler.observe(edited)  # a new event: this replica leads again
    await bed.settled(lambda: len(bed.sink.patches) == 2, "the synced status")
    assert ready(bed.statuses("orders")[-1])[1] == "Synced"


async def test_a_failed_status_write_is_retried_and_written_again(bed: Bed) -> None:
    policy = record("orders", _spec("orders"))
    bed.claims.update(claims(policy))
    bed.sink.refuse = 1
    bed.reconciler.observe(policy)
    await bed.settled(lambda: bool(bed.sink.patches), "the status after the refused write")
    assert ready(bed.statuses("orders")[0])[1] == "Synced"
    assert bed.sink.refused == 1


async def test_deleting_the_owner_hands_the_group_to_the_other_claimant(bed: Bed) -> None:
    older = record("older", _spec("shared", retries=1), age=60)
    newer = record("newer", _spec("shared", retries=7))
    bed.claims.update(claims(older, newer))
    bed.reconciler.observe(older)
    bed.reconciler.observe(newer)
    await bed.settled(lambda: len(bed.sink.patches) == 2, "both statuses")
    assert ready(bed.statuses("newer")[-1])[1] == "Conflict"

    bed.claims.clear()
    bed.claims.update(claims(newer))  # kopf's index drops the object before its DELETED event is handled
    bed.reconciler.gone(older)
    await bed.settled(lambda: len(bed.statuses("newer")) == 2, "the newer policy's takeover")
    assert ready(bed.statuses("newer")[-1])[1] == "Synced"
    assert {b.groups["shared"]["retryMaxTimes"] for b in bed.admin.brokers.values()} == {7}


async def test_an_object_being_deleted_is_left_to_its_finalizer(bed: Bed) -> None:
    policy = record("orders", _spec("orders"))
    bed.claims.update(claims(policy))
    bed.reconciler.observe(replace(policy, deleting=True))
    await asyncio.sleep(0.2)
    assert (bed.sink.patches, bed.admin.broker("broker-a").writes) == ([], [])
