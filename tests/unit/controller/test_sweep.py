"""The drift sweep: repairs what drifted in one batched write per broker, writes status and Events only on change."""

import asyncio
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from rocketmq_retry.controller import sweep
from rocketmq_retry.controller.engine import reconcile_record
from rocketmq_retry.controller.records import PolicyRecord
from rocketmq_retry.controller.statuses import PolicyEvent
from rocketmq_retry.controller.sweep import Sweeper
from rocketmq_retry.domain.jsontypes import JsonObject
from tests.unit.controller.test_engine import NAMESRV, NOW, record, runtime_for
from tests.unit.fakes import claims, two_masters


class RecordingSink:
    def __init__(self) -> None:
        self.patches: list[tuple[str, JsonObject]] = []
        self.events: list[tuple[str, str]] = []
        self.refuse = 0  # status writes to refuse before accepting
        self.refused = 0

    async def patch_status(self, record: PolicyRecord, status: JsonObject) -> None:
        if self.refused < self.refuse:
            self.refused += 1
            raise ConnectionError("the API server is away")
        self.patches.append((record.ref, status))

    async def post_event(self, record: PolicyRecord, event: PolicyEvent) -> None:
        self.events.append((record.ref, event.reason))


def _spec(group: str, retries: int) -> dict[str, Any]:
    return {"cluster": NAMESRV, "consumerGroup": group, "maxRetries": retries}


async def test_drift_and_lost_stores_are_repaired_in_one_batch_and_reported_once() -> None:
    admin = two_masters()
    sink = RecordingSink()
    records = [record("a", _spec("a", 1)), record("b", _spec("b", 2)),
               record("gone", _spec("gone", 3), deleting=True)]
    passes = iter(range(100))
    sweeper = Sweeper(runtime_for(admin), lambda: records, sink, clock=lambda: NOW + timedelta(minutes=next(passes)))

    await sweeper.sweep_once()

    assert admin.broker("broker-a").writes == [["a", "b"]]  # the deleting policy is left to its finalizer
    assert sorted(ref for ref, _ in sink.patches) == ["ns/a", "ns/b"]
    assert sorted(sink.events) == [("ns/a", "Synced"), ("ns/b", "Synced")]

    sink.patches.clear()
    sink.events.clear()
    await sweeper.sweep_once()
    assert (sink.patches, sink.events) == ([], [])
    assert admin.broker("broker-a").writes == [["a", "b"]]

    admin.broker("broker-a").groups["a"]["retryMaxTimes"] = 16  # edited by hand
    admin.broker("broker-b").groups.clear()  # restarted with an empty store
    await sweeper.sweep_once()

    assert admin.broker("broker-a").writes[-1] == ["a"]
    assert admin.broker("broker-b").writes[-1] == ["a", "b"]
    assert {b.groups["a"]["retryMaxTimes"] for b in admin.brokers.values()} == {1}
    assert sorted(ref for ref, _ in sink.patches) == ["ns/a", "ns/b"]  # lastAppliedTime moved
    applied = {b["name"]: b["lastAppliedTime"] for b in dict(sink.patches)["ns/b"]["brokers"]}
    assert applied == {"broker-a": "2026-01-02T03:04:05Z", "broker-b": "2026-01-02T03:06:05Z"}
    assert sink.events == []  # still Synced


async def test_a_broker_going_down_changes_status_and_posts_one_event() -> None:
    admin = two_masters()
    sink = RecordingSink()
    records = [record("a", _spec("a", 1))]
    sweeper = Sweeper(runtime_for(admin), lambda: records, sink, clock=lambda: NOW)
    await sweeper.sweep_once()
    admin.broker("broker-b").down = True

    await sweeper.sweep_once()
    await sweeper.sweep_once()

    assert sink.events == [("ns/a", "Synced"), ("ns/a", "PartiallyApplied")]
    assert sink.patches[-1][1]["synced"] == "1/2"
    assert len(sink.patches) == 2


async def test_the_conflict_loser_takes_over_when_the_owner_is_gone() -> None:
    admin = two_masters()
    sink = RecordingSink()
    owner = record("first", _spec("orders", 4), age=60)
    loser = record("second", _spec("orders", 7))
    records = [owner, loser]
    sweeper = Sweeper(runtime_for(admin), lambda: list(records), sink, clock=lambda: NOW)

    await sweeper.sweep_once()
    assert admin.broker("broker-a").groups["orders"]["retryMaxTimes"] == 4
    loser_status = dict(sink.patches)["ns/second"]
    assert loser_status["conflictWith"] == "ns/first"

    records.remove(owner)
    await sweeper.sweep_once()

    assert {b.groups["orders"]["retryMaxTimes"] for b in admin.brokers.values()} == {7}
    assert sink.patches[-1][0] == "ns/second"
    assert sink.patches[-1][1]["conflictWith"] is None
    assert sink.events[-1] == ("ns/second", "Synced")


async def test_a_newer_generation_seen_under_the_lock_wins_over_the_one_the_pass_started_with() -> None:
    admin = two_masters()
    sink = RecordingSink()
    calls = 0
    old = record("a", _spec("a", 1))
    new = replace(old, generation=2, spec=_spec("a", 5))

    def source() -> list[PolicyRecord]:
        nonlocal calls
        calls += 1
        return [old] if calls == 1 else [new]

    await Sweeper(runtime_for(admin), source, sink, clock=lambda: NOW).sweep_once()

    assert admin.broker("broker-a").groups["a"]["retryMaxTimes"] == 5
    assert sink.patches[0][1]["observedGeneration"] == 2


async def test_the_sweep_forgets_the_written_status_of_objects_that_are_gone() -> None:
    runtime = runtime_for(two_masters())
    kept, gone = record("kept", _spec("kept", 1)), record("gone", _spec("gone", 1))
    for policy in (kept, gone):
        runtime.memory.remember(policy, {"observedGeneration": 7})
    sweeper = Sweeper(runtime, lambda: [kept], RecordingSink(), clock=lambda: NOW)

    await sweeper.sweep_once()

    assert runtime.memory.current(gone).status == {}
    assert runtime.memory.current(kept).status["observedGeneration"] == 1


async def test_event_passes_reuse_a_recent_read_and_sweep_passes_always_read() -> None:
    admin = two_masters()
    runtime = runtime_for(admin)
    a, b = record("a", _spec("a", 1)), record("b", _spec("b", 2))
    await reconcile_record(runtime, a, claims(a, b), NOW)
    await reconcile_record(runtime, b, claims(a, b), NOW)

    assert admin.broker("broker-a").group_reads == 1
    assert {name: group["retryMaxTimes"] for name, group in admin.broker("broker-a").groups.items()} == {"a": 1, "b": 2}
    admin.broker("broker-a").groups["a"]["retryMaxTimes"] = 16  # edited by hand: only a fresh read sees it

    await Sweeper(runtime, lambda: [a, b], RecordingSink(), clock=lambda: NOW).sweep_once()

    assert admin.broker("broker-a").group_reads == 2
    assert admin.broker("broker-a").groups["a"]["retryMaxTimes"] == 1


async def test_statuses_are_written_a_bounded_number_at_a_time_and_a_refused_one_again_next_sweep(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sweep, "PUBLISH_AT_ONCE", 2)
    in_flight, most = 0, 0

    class SlowSink(RecordingSink):
        async def patch_status(self, record: PolicyRecord, status: JsonObject) -> None:
            nonlocal in_flight, most
            in_flight += 1
            most = max(most, in_flight)
            await asyncio.sleep(0.01)
            in_flight -= 1
            await super().patch_status(record, status)

    sink = SlowSink()
    sink.refuse = 1
    records = [record(f"p{n}", _spec(f"g{n}", 1)) for n in range(5)]
    sweeper = Sweeper(runtime_for(two_masters()), lambda: records, sink, clock=lambda: NOW)

    await sweeper.sweep_once()
    assert most == 2
    assert len(sink.patches) == 4  # one write was refused

    await sweeper.sweep_once()
    assert len(sink.patches) == 5  # the refused one is written again; the others are unchanged
