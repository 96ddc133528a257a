"""The control loop with a stub kind, on a clock the test moves: what is queued, batching per cluster, one pass per
object at a time, backoff, status memory and publishing, resyncs, the leadership gate and finalizers."""

import asyncio
import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

import pytest

from rocketmq_retry.controller.config import OperatorConfig
from rocketmq_retry.controller.loop import NO_CLUSTER, ControlLoop, Finalized, Job, Report
from rocketmq_retry.controller.publisher import StatusMemory
from rocketmq_retry.controller.records import ClaimKey, PolicyRecord
from rocketmq_retry.controller.statuses import PolicyEvent
from rocketmq_retry.domain.management import PAUSE_ANNOTATION
from tests.unit.controller.loopbed import NOW, Index, RecordingSink, advance, record, settle
from tests.unit.fakes import FakeClock

CONFIG = OperatorConfig(batch_window=0.0)


def obj(name: str, cluster: str = "c1", *, generation: int = 1, **more: Any) -> PolicyRecord:
    return record(name, {"cluster": cluster, "group": name}, generation=generation, **more)


class StubKind:
    """A kind whose pass writes `observedGeneration`, records what it was given, and can be held or made to fail."""

    name = "Stub"
    resync_interval = 30.0

    def __init__(self) -> None:
        self.sink = RecordingSink()
        self.index = Index()
        self.passes: list[tuple[str, list[str], bool]] = []  # cluster, names, fresh
        self.times: list[float] = []
        self.hold: asyncio.Event | None = None
        self.fail = 0  # passes to fail with an exception
        self.outcome: Callable[[Job], Report | Finalized] = lambda job: Report(
            {"observedGeneration": job.record.generation})
        self.forgotten: list[str] = []
        self.clock: FakeClock | None = None

    def claim(self, record: PolicyRecord) -> ClaimKey | None:
        spec: Mapping[str, str] = record.spec  # type: ignore[assignment]
        return (spec["cluster"], spec["group"]) if spec.get("cluster") else None

    def claimants(self, claim: ClaimKey | None) -> list[PolicyRecord]:
        return self.index.get(claim, [])

    async def run_pass(self, cluster: str, jobs: Sequence[Job], now: datetime, *,
                       fresh: bool) -> dict[str, Report | Finalized]:
        self.passes.append((cluster, sorted(job.record.name for job in jobs), fresh))
        self.times.append((now - NOW).total_seconds())
        if self.hold is not None:
            await self.hold.wait()
        if self.fail:
            self.fail -= 1
            raise RuntimeError("the brokers' table was unreadable")
        return {job.record.uid: self.outcome(job) for job in jobs}

    def forget(self, uid: str) -> None:
        self.forgotten.append(uid)


class Bed:
    def __init__(self, config: OperatorConfig = CONFIG, leads: Callable[[Collection[str]], Any] | None = None) -> None:
        self.kind = StubKind()
        self.clock = FakeClock(NOW)
        self.memory = StatusMemory()
        self.loop = ControlLoop(config, [self.kind], self.memory, clock=self.clock, leads=leads)

    def apply(self, *records: PolicyRecord) -> None:
        for found in records:
            self.kind.index.put(self.kind.claim(found), found)
            self.loop.observe("Stub", found)

    async def settle(self) -> None:
        await settle(self.clock, self.loop)

    async def advance(self, seconds: float) -> None:
        await advance(self.clock, self.loop, seconds)


async def test_a_new_object_is_passed_once_and_its_own_status_write_queues_nothing() -> None:
    bed = Bed()
    first = obj("a")
    bed.apply(first, first)  # a second event of the same version
    await bed.settle()
    assert bed.kind.passes == [("c1", ["a"], False)]
    assert bed.kind.sink.patches == [("ns/a", {"observedGeneration": 1})]

    bed.apply(replace(first, status={"observedGeneration": 1}))  # the status write coming back
    await bed.advance(10)
    assert len(bed.kind.passes) == 1


async def test_a_new_generation_or_management_annotation_is_passed_again() -> None:
    bed = Bed()
    bed.apply(obj("a"))
    await bed.settle()
    bed.apply(obj("a", generation=2))
    await bed.settle()
    bed.apply(obj("a", generation=2, annotations={PAUSE_ANNOTATION: "true"}))
    await bed.settle()
    bed.apply(obj("a", generation=2, annotations={PAUSE_ANNOTATION: "true", "unrelated": "x"}))
    await bed.settle()

    assert len(bed.kind.passes) == 3
    assert [status["observedGeneration"] for _, status in bed.kind.sink.patches] == [1, 2]  # the third: no change


async def test_objects_waiting_for_a_cluster_share_its_next_pass_and_clusters_pass_apart() -> None:
    bed = Bed()
    bed.apply(*(obj(f"p{n}") for n in range(50)), obj("elsewhere", "c2"), obj("invalid", ""))
    await bed.settle()

    assert sorted(bed.kind.passes) == [(NO_CLUSTER, ["invalid"], False), ("c1", sorted(f"p{n}" for n in range(50)),
                                                                        False), ("c2", ["elsewhere"], False)]
    assert len(bed.kind.sink.patches) == 52


async def test_an_object_queued_during_its_pass_waits_for_it_and_joins_the_next() -> None:
    bed = Bed()
    bed.kind.hold = asyncio.Event()
    bed.apply(obj("a"))
    bed.clock.fire_due()
    await asyncio.sleep(0)
    assert bed.kind.passes == [("c1", ["a"], False)]

    bed.apply(obj("a", generation=2), obj("b"))  # while the first pass runs
    bed.clock.fire_due()
    await asyncio.sleep(0)
    assert len(bed.kind.passes) == 1  # one pass per cluster at a time

    bed.kind.hold.set()
    await bed.settle()
    assert bed.kind.passes == [("c1", ["a"], False), ("c1", ["a", "b"], False)]
    assert bed.kind.sink.statuses("ns/a")[-1] == {"observedGeneration": 2}


async def test_a_retryable_outcome_is_passed_again_with_doubling_backoff_until_it_clears() -> None:
    bed = Bed()
    bed.kind.outcome = lambda job: Report({"observedGeneration": 1}, retry=True)
    bed.apply(obj("a"))
    await bed.advance(CONFIG.retry_first * (1 + 2 + 4) + 1)
    assert bed.kind.times == [0, 5, 15, 35]

    bed.kind.outcome = lambda job: Report({"observedGeneration": 1})
    await bed.advance(CONFIG.retry_first * 8)
    assert bed.kind.times == [0, 5, 15, 35, 75]
    await bed.advance(bed.kind.resync_interval - 1)  # no more retries; the resync timer is not running here
    assert len(bed.kind.times) == 5
    assert len(bed.kind.sink.patches) == 1  # the same status each time: written once


async def test_a_failed_pass_is_retried_and_a_new_event_resets_the_backoff() -> None:
    bed = Bed()
    bed.kind.fail = 3
    bed.apply(obj("a"))
    await bed.advance(CONFIG.retry_first * 3 + 1)
    assert bed.kind.times == [0, 5, 15]
    bed.apply(obj("a", generation=2))  # a new spec: at once, and the backoff starts over
    await bed.settle()
    assert bed.kind.times == [0, 5, 15, 16]
    assert bed.kind.sink.patches == [("ns/a", {"observedGeneration": 2})]


async def test_a_refused_status_write_is_retried_and_written_again() -> None:
    bed = Bed()
    bed.kind.sink.refuse = 1
    bed.apply(obj("a"))
    await bed.advance(CONFIG.retry_first)
    assert bed.kind.sink.refused == 1
    assert bed.kind.sink.patches == [("ns/a", {"observedGeneration": 1})]


async def test_statuses_are_written_a_bounded_number_at_a_time() -> None:
    bed = Bed(replace(CONFIG, statuses_at_once=2))
    in_flight, most = 0, 0
    write = bed.kind.sink.patch_status

    async def slow(record: PolicyRecord, status: Any) -> None:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0)
        in_flight -= 1
        await write(record, status)

    bed.kind.sink.patch_status = slow  # type: ignore[method-assign]
    bed.apply(*(obj(f"p{n}") for n in range(5)))
    await bed.settle()
    assert (most, len(bed.kind.sink.patches)) == (2, 5)


async def test_a_resync_passes_every_object_fresh_and_writes_only_what_changed() -> None:
    bed = Bed()
    bed.apply(obj("a"), obj("b", "c2"))
    await bed.settle()
    run = asyncio.create_task(bed.loop.run())
    await asyncio.sleep(0)

    await bed.advance(bed.kind.resync_interval)
    assert sorted(bed.kind.passes[2:]) == [("c1", ["a"], True), ("c2", ["b"], True)]
    bed.loop.resync("Stub", {"c2"})
    await bed.settle()
    assert bed.kind.passes[4:] == [("c2", ["b"], True)]
    assert len(bed.kind.sink.patches) == 2
    run.cancel()
    await asyncio.gather(run, return_exceptions=True)


async def test_the_status_memory_starts_each_pass_and_is_forgotten_with_the_object() -> None:
    bed = Bed()
    seen: list[Mapping[str, Any]] = []
    bed.kind.outcome = lambda job: (seen.append(job.record.status), Report({"observedGeneration": 1}))[1]
    a = obj("a")
    bed.apply(a)
    await bed.settle()
    bed.loop.resync("Stub")
    await bed.settle()
    assert seen == [{}, {"observedGeneration": 1}]  # the watch had not brought the write back yet

    bed.kind.index.remove(a)
    bed.loop.gone("Stub", a)
    assert bed.memory.current(a).status == {}
    assert bed.kind.forgotten == ["uid-a"]


async def test_deleting_an_object_queues_the_others_that_claim_the_same_group() -> None:
    bed = Bed()
    older, newer, other = obj("a"), replace(obj("a", uid="uid-a2"), name="a2"), obj("b")
    bed.apply(older, newer, other)
    await bed.settle()

    bed.kind.index.remove(older)
    bed.loop.gone("Stub", older)
    await bed.settle()
    assert bed.kind.passes[-1] == ("c1", ["a2"], False)


async def test_an_object_being_deleted_is_left_to_its_finalizer() -> None:
    bed = Bed()
    bed.apply(obj("a", deleting=True))
    await bed.advance(60)
    assert (bed.kind.passes, bed.kind.sink.patches) == ([], [])


async def test_a_finalizer_waits_for_the_pass_under_way_and_gets_its_own_outcome() -> None:
    bed = Bed()
    bed.kind.hold = asyncio.Event()
    bed.kind.outcome = lambda job: Finalized(True, "reset") if job.finalizing else Report({"observedGeneration": 1})
    bed.apply(obj("a"))
    bed.clock.fire_due()
    await asyncio.sleep(0)

    deleting = obj("a", deleting=True)
    bed.kind.index.put(bed.kind.claim(deleting), deleting)
    finalizing = asyncio.ensure_future(bed.loop.finalize("Stub", deleting))
    bed.apply(deleting)  # kopf's event of the deletion, while the finalizer waits
    await asyncio.sleep(0)
    assert not finalizing.done()
    bed.kind.hold.set()
    await bed.settle()

    assert await finalizing == Finalized(True, "reset")
    assert bed.kind.passes == [("c1", ["a"], False), ("c1", ["a"], True)]


async def test_a_replica_that_does_not_lead_passes_nothing_and_lets_go_of_what_it_holds(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="rocketmq_retry.controller.loop")
    leading = False

    async def leads(namespaces: Collection[str]) -> bool:
        assert set(namespaces) == {"ns"}
        return leading

    bed = Bed(leads=leads)
    bed.apply(obj("a"))
    await bed.settle()
    assert (bed.kind.passes, bed.kind.forgotten) == ([], ["uid-a"])
    assert "control loop paused" in caplog.text

    leading = True
    bed.loop.resync("Stub")
    await bed.settle()
    assert bed.kind.passes == [("c1", ["a"], True)]
    assert "control loop resumed" in caplog.text


def test_retry_delays_double_up_to_the_maximum() -> None:
    assert [CONFIG.retry_delay(n) for n in (0, 1, 2, 5, 6, 7, 100)] == [5, 10, 20, 160, 300, 300, 300]


async def test_an_object_deleted_while_its_status_is_written_leaves_nothing_in_the_memory() -> None:
    bed = Bed()
    a = obj("a")
    write = bed.kind.sink.patch_status

    async def deleted_meanwhile(record: PolicyRecord, status: Any) -> None:
        bed.kind.index.remove(a)
        bed.loop.gone("Stub", a)
        await write(record, status)

    bed.kind.sink.patch_status = deleted_meanwhile  # type: ignore[method-assign]
    bed.apply(a)
    await bed.advance(60)
    assert bed.kind.sink.patches == [("ns/a", {"observedGeneration": 1})]
    assert bed.memory.current(a).status == {}
    assert len(bed.kind.passes) == 1


async def test_status_writes_do_not_hold_the_next_pass_and_an_objects_waiting_writes_fold_into_one() -> None:
    bed = Bed()
    gate = asyncio.Event()
    write = bed.kind.sink.patch_status

    async def slow(record: PolicyRecord, status: Any) -> None:
        await gate.wait()
        await write(record, status)

    async def passed(generation: int) -> None:
        """Until a pass concluded `generation` (the memory takes a status when its pass ends): steps of the event
        loop, no time."""
        for _ in range(100):
            bed.clock.fire_due()
            if bed.memory.current(obj("a")).status.get("observedGeneration") == generation:
                return
            await asyncio.sleep(0)
        raise AssertionError(f"no pass concluded generation {generation} while a status write waited")

    bed.kind.sink.patch_status = slow  # type: ignore[method-assign]
    bed.apply(obj("a"))
    await passed(1)  # the pass ends; its write waits
    bed.apply(obj("a", generation=2))
    await passed(2)
    bed.apply(obj("a", generation=3))
    await passed(3)  # none waited for the write under way
    assert len(bed.kind.passes) == 3

    gate.set()
    await bed.settle()
    assert bed.kind.sink.patches == [("ns/a", {"observedGeneration": 1}), ("ns/a", {"observedGeneration": 3})]


async def test_a_slots_next_pass_waits_while_many_status_writes_are_behind() -> None:
    bed = Bed(replace(CONFIG, statuses_at_once=1))  # the next pass waits while 2 objects or more are being written
    gate = asyncio.Event()
    write = bed.kind.sink.patch_status

    async def slow(record: PolicyRecord, status: Any) -> None:
        await gate.wait()
        await write(record, status)

    bed.kind.sink.patch_status = slow  # type: ignore[method-assign]
    bed.apply(obj("a"), obj("b"))
    for _ in range(20):
        bed.clock.fire_due()
        await asyncio.sleep(0)
    bed.apply(obj("c"))
    for _ in range(20):
        bed.clock.fire_due()
        await asyncio.sleep(0)
    assert bed.kind.passes == [("c1", ["a", "b"], False)]  # c waits: two writes are behind

    gate.set()
    await bed.settle()
    assert bed.kind.passes == [("c1", ["a", "b"], False), ("c1", ["c"], False)]


async def test_events_follow_the_status_writes_and_carry_the_time_their_pass_reported_them() -> None:
    bed = Bed()
    gate = asyncio.Event()
    write = bed.kind.sink.patch_status
    posted: list[tuple[str, str, datetime | None]] = []
    post = bed.kind.sink.post_event

    async def slow(record: PolicyRecord, status: Any) -> None:
        await gate.wait()
        await write(record, status)

    async def recorded(record: PolicyRecord, event: PolicyEvent) -> None:
        posted.append((record.ref, event.reason, event.at))
        await post(record, event)

    bed.kind.sink.patch_status = slow  # type: ignore[method-assign]
    bed.kind.sink.post_event = recorded  # type: ignore[method-assign]
    bed.kind.outcome = lambda job: Report({"observedGeneration": job.record.generation},
                                          [PolicyEvent("Normal", "Synced", job.record.name)])
    bed.apply(obj("a"), obj("b", status={"observedGeneration": 1}))  # b's status stays: only its Event is new
    for _ in range(20):
        bed.clock.fire_due()
        await asyncio.sleep(0)
    assert len(bed.kind.passes) == 1
    assert posted == []  # a's status write waits, and every Event behind it, b's too

    gate.set()
    await bed.settle()
    assert bed.kind.sink.patches == [("ns/a", {"observedGeneration": 1})]
    assert sorted((ref, reason) for ref, reason, _ in posted) == [("ns/a", "Synced"), ("ns/b", "Synced")]
    assert all(at is not None for _, _, at in posted)


async def test_a_refused_event_is_logged_and_nothing_is_passed_again(caplog: pytest.LogCaptureFixture) -> None:
    bed = Bed()

    async def refused(record: PolicyRecord, event: PolicyEvent) -> None:
        raise ConnectionError("the API server is away")

    bed.kind.sink.post_event = refused  # type: ignore[method-assign]
    bed.kind.outcome = lambda job: Report({"observedGeneration": 1}, [PolicyEvent("Warning", "Degraded", "x")])
    bed.apply(obj("a"))
    with caplog.at_level(logging.WARNING):
        await bed.advance(60)

    assert bed.kind.sink.patches == [("ns/a", {"observedGeneration": 1})]
    assert "[ns/a] cannot post the Degraded Event: the API server is away" in caplog.text
    assert len(bed.kind.passes) == 1
