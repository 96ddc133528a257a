"""DeadLetterQueue on the control loop with an in-memory dead-letter queue: depth, BacklogHigh, redrive runs,
refusals, conflicts."""

import asyncio
from datetime import datetime, timedelta
from typing import Any

from rocketmq_retry.controller.config import OperatorConfig
from rocketmq_retry.controller.dead_letters import dead_letter_events
from rocketmq_retry.controller.records import PolicyRecord
from rocketmq_retry.controller.statuses import PolicyEvent
from rocketmq_retry.domain.dead_letters import (
    Backlog,
    BrokerBacklog,
    DeadLetterBrokerState,
    DeadLetterQueueSpec,
    RedriveSpec,
)
from rocketmq_retry.domain.redrive import QueueProgress, RedriveProgress
from rocketmq_retry.domain.spec import ClusterRef
from rocketmq_retry.reconcile.redrive import Redrive
from rocketmq_retry.remoting.producer import SendResult
from rocketmq_retry.remoting.sending import Message
from tests.unit.controller.loopbed import CLUSTER, CONFIG, NAMESRV, NOW, DeadLetterFakes, LoopBed
from tests.unit.fakes import two_masters
from tests.unit.reconcile.test_redrive import TOPIC, FakeDlq, FakeTarget


class GatedTarget(FakeTarget):
    """Holds every send until `gate` opens, so a run stays active while the test looks at it."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()

    async def send(self, message: Message, *, reconsume_times: int | None = None,
                   max_reconsume_times: int | None = None, msg_id: str | None = None) -> SendResult:
        await self.gate.wait()
        return await super().send(message, msg_id=msg_id)


class Bed:
    """The loop with a DeadLetterQueue kind whose brokers' depth is what `observe` reports, over a dead-letter queue
    and a target to redrive to."""

    def __init__(self, stored: dict[str, int] | None = None, target: FakeTarget | None = None,
                 config: OperatorConfig = CONFIG, leading: bool | None = None) -> None:
        self.stored = stored or {"broker-a": 30, "broker-b": 12}
        self.dlq = FakeDlq(self.stored)
        self.target = target or FakeTarget()
        self.oldest = NOW - timedelta(hours=1)  # store time of the oldest pending dead letter on every broker
        self.file_reserved_hours = 72
        self.observed = 0
        self.world = LoopBed(two_masters(), config=config, leading=leading,
                             dead_letters=DeadLetterFakes(self.observe, self.begin, self.engine))
        self.sink = self.world.sink

    async def observe(self, admin: Any, cluster: ClusterRef, spec: DeadLetterQueueSpec, *,
                      call_timeout: float) -> Backlog:
        self.observed += 1
        return Backlog(tuple(BrokerBacklog(broker, f"{broker}:10911", DeadLetterBrokerState.READABLE, 6, 1,
                                           pending := count - self.dlq.committed.get(broker, 0), count,
                                           self.oldest if pending else None,
                                           file_reserved_hours=self.file_reserved_hours)
                             for broker, count in self.stored.items()))

    async def begin(self, admin: Any, spec: DeadLetterQueueSpec, request: RedriveSpec, now: datetime, *,
                    call_timeout: float) -> RedriveProgress:
        queues = [QueueProgress(broker, 0, self.dlq.committed.get(broker, 0), count, self.dlq.committed.get(broker, 0))
                  for broker, count in self.stored.items()]
        return RedriveProgress(request.request_id, request.rate, now, request.max_messages, request.target_topic,
                               queues=queues)

    def engine(self, admin: Any, spec: DeadLetterQueueSpec, progress: RedriveProgress) -> Redrive:
        return Redrive(self.dlq, self.target, TOPIC, progress, attempts=2, pause=0.0)

    def metric(self, name: str, **labels: str) -> float | None:
        return self.world.sample(name, **labels)

    async def apply(self, *records: PolicyRecord) -> None:
        self.world.apply_dead_letters(*records)
        await self.world.settle()

    async def resync(self) -> None:
        self.world.loop.resync("DeadLetterQueue")
        await self.world.settle()

    async def runs_ended(self) -> None:
        """Let the redrive tasks run to their end, and the passes their ends queue."""
        await asyncio.gather(*(task for task in asyncio.all_tasks() if task.get_name().startswith("redrive ")))
        await self.world.settle()


def record(spec: dict[str, Any], *, name: str = "orders-dlq", generation: int = 1, age: int = 0,
           status: dict[str, Any] | None = None) -> PolicyRecord:
    return PolicyRecord("ns", name, f"uid-{name}", generation, NOW - timedelta(seconds=age), {},
                        {"cluster": NAMESRV, "consumerGroup": "orders", **spec}, status or {})


def last_status(bed: Bed) -> dict[str, Any]:
    return dict(bed.sink.patches[-1][1])


def conditions(status: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}


async def test_depth_is_reported_and_backlog_high_flips_at_the_threshold() -> None:
    bed = Bed({"broker-a": 6, "broker-b": 4})
    queue = record({"alertThreshold": 10})
    await bed.apply(queue)
    status = last_status(bed)
    assert (status["depth"], status["storedMessages"], status["topic"], status["redriveGroup"]) == (
        10, 10, "%DLQ%orders", "orders-redrive")
    assert conditions(status) == {"Ready": ("True", "Synced"), "BacklogHigh": ("False", "WithinThreshold"),
                                  "DeadLettersExpiring": ("False", "OutsideMargin")}
    assert bed.metric("rocketmq_retry_dead_letters", cluster=CLUSTER) == 10

    bed.stored["broker-b"] = 5
    await bed.world.advance(CONFIG.dead_letter_interval)  # nothing resyncs without the loop running
    assert bed.observed == 1
    await bed.resync()
    assert conditions(last_status(bed))["BacklogHigh"] == ("True", "AboveThreshold")
    assert bed.sink.events[-1] == ("ns/orders-dlq", "BacklogHigh")
    assert bed.metric("rocketmq_retry_dead_letter_backlogs_high", cluster=CLUSTER) == 1

    patches = len(bed.sink.patches)
    await bed.world.advance(60)
    await bed.resync()
    assert len(bed.sink.patches) == patches  # nothing changed, nothing written

    bed.dlq.committed["broker-a"] = 6  # a redrive elsewhere passed broker-a's dead letters
    await bed.resync()
    assert conditions(last_status(bed))["BacklogHigh"] == ("False", "WithinThreshold")
    assert bed.sink.events[-1] == ("ns/orders-dlq", "BacklogCleared")
    bed.world.dead_letter_index.remove(queue)
    bed.world.loop.gone("DeadLetterQueue", queue)
    assert bed.metric("rocketmq_retry_dead_letters", cluster=CLUSTER) is None


async def test_the_loop_resyncs_dead_letter_queues_at_their_own_interval() -> None:
    bed = Bed(config=OperatorConfig(batch_window=0.0, dead_letter_interval=7, sweep_interval=1000))
    await bed.apply(record({}))
    run = asyncio.create_task(bed.world.loop.run())
    await asyncio.sleep(0)
    await bed.world.advance(7 * 3)
    assert bed.observed == 4
    run.cancel()
    await asyncio.gather(run, return_exceptions=True)


async def test_a_redrive_runs_to_success_is_counted_and_reports_as_it_goes() -> None:
    bed = Bed(target=GatedTarget())
    queue = record({"redrive": {"requestId": "r1", "rate": 10000}})
    await bed.apply(queue)
    assert last_status(bed)["redrive"]["state"] == "Running"
    reads = bed.observed
    await bed.world.advance(CONFIG.redrive_progress_interval)
    assert bed.observed == reads + 1  # a running redrive is looked at every few seconds

    assert isinstance(bed.target, GatedTarget)
    bed.target.gate.set()
    await bed.runs_ended()  # its end queues the object at once
    redrive = last_status(bed)["redrive"]
    assert (redrive["requestId"], redrive["state"], redrive["moved"], redrive["remaining"]) == (
        "r1", "Succeeded", 42, 0)
    assert last_status(bed)["depth"] == 0
    assert ("ns/orders-dlq", "RedriveSucceeded") in bed.sink.events
    assert len(bed.target.sent) == 42
    assert bed.metric("rocketmq_retry_redrive_messages_total", cluster=CLUSTER, result="moved") == 42

    await bed.resync()  # the same requestId never runs twice
    assert len(bed.target.sent) == 42


async def test_a_second_request_while_one_runs_is_refused_for_good() -> None:
    bed = Bed(target=GatedTarget())
    await bed.apply(record({"redrive": {"requestId": "r1"}}))
    assert last_status(bed)["redrive"]["state"] == "Running"
    assert ("ns/orders-dlq", "RedriveStarted") in bed.sink.events

    await bed.apply(record({"redrive": {"requestId": "r2"}}, generation=2))
    status = last_status(bed)
    assert conditions(status)["RedriveRejected"] == ("True", "AnotherRedriveActive")
    assert status["redrive"]["rejectedRequestId"] == "r2"
    assert bed.sink.events[-1] == ("ns/orders-dlq", "RedriveRejected")

    assert isinstance(bed.target, GatedTarget)
    bed.target.gate.set()
    await bed.runs_ended()
    await bed.resync()
    status = last_status(bed)
    assert (status["redrive"]["requestId"], status["redrive"]["state"]) == ("r1", "Succeeded")
    assert conditions(status)["RedriveRejected"][0] == "True"  # still named by the spec, still refused
    assert len(bed.target.sent) == 42


async def test_cancel_stops_the_run_and_keeps_the_rest_pending() -> None:
    bed = Bed(target=GatedTarget())
    await bed.apply(record({"redrive": {"requestId": "r1"}}))
    await bed.apply(record({"redrive": {"requestId": "r1", "cancel": True}}, generation=2))
    assert isinstance(bed.target, GatedTarget)
    bed.target.gate.set()
    await bed.runs_ended()
    redrive = last_status(bed)["redrive"]
    assert redrive["state"] == "Cancelled"
    assert redrive["moved"] + redrive["remaining"] == 42
    assert redrive["remaining"] > 0
    assert last_status(bed)["depth"] == redrive["remaining"]


async def test_a_run_left_running_by_a_previous_operator_is_resumed() -> None:
    bed = Bed({"broker-a": 40})
    bed.dlq.committed["broker-a"] = 32  # the previous operator committed one batch and acknowledged 36
    left = RedriveProgress("r1", 10000, NOW, queues=[QueueProgress("broker-a", 0, 0, 40, 36)], moved=36)
    await bed.apply(record({"redrive": {"requestId": "r1"}}, status={"redrive": left.to_json()}))
    await bed.runs_ended()
    redrive = last_status(bed)["redrive"]
    assert (redrive["state"], redrive["moved"], redrive["duplicates"]) == ("Succeeded", 40, 4)
    assert sorted(msg_id for _, msg_id, _, _ in bed.target.sent) == sorted(
        [f"broker-a-{offset}" for offset in range(32, 40)])
    # Counted from where the previous operator's status left off.
    assert bed.metric("rocketmq_retry_redrive_messages_total", cluster=CLUSTER, result="moved") == 4
    assert bed.metric("rocketmq_retry_redrive_messages_total", cluster=CLUSTER, result="duplicate") == 4


async def test_a_replica_that_stops_leading_stops_its_run_for_the_leader_to_resume() -> None:
    bed = Bed(target=GatedTarget(), leading=True)
    await bed.apply(record({"redrive": {"requestId": "r1"}}))
    assert last_status(bed)["redrive"]["state"] == "Running"
    [run] = [task for task in asyncio.all_tasks() if task.get_name().startswith("redrive ")]

    bed.world.leading = False
    await bed.world.advance(CONFIG.redrive_progress_interval)
    await asyncio.gather(run, return_exceptions=True)
    assert run.cancelled()
    assert last_status(bed)["redrive"]["state"] == "Running"  # as the leader finds it, to resume


async def test_a_new_request_marked_cancel_is_recorded_without_moving_anything() -> None:
    bed = Bed()
    await bed.apply(record({"redrive": {"requestId": "r1", "cancel": True}}))
    redrive = last_status(bed)["redrive"]
    assert (redrive["state"], redrive["moved"], redrive["message"]) == ("Cancelled", 0, "cancelled before it started")
    assert not bed.target.sent


async def test_the_younger_of_two_objects_for_one_group_reports_a_conflict_and_reads_nothing() -> None:
    bed = Bed()
    await bed.apply(record({}, name="first", age=60))
    reads = bed.observed
    await bed.apply(record({"redrive": {"requestId": "r1"}}, name="second"))
    status = last_status(bed)
    assert conditions(status) == {"Ready": ("False", "Conflict"), "Stalled": ("True", "Conflict")}
    assert status["conflictWith"] == "ns/first"
    assert (bed.observed - reads, bed.target.sent) == (0, [])


async def test_an_invalid_spec_is_reported_without_broker_calls() -> None:
    bed = Bed()
    await bed.apply(record({"alertThreshold": -1}))
    assert conditions(last_status(bed))["Ready"] == ("False", "InvalidSpec")
    assert bed.observed == 0


async def test_the_depth_gauge_sums_the_objects_of_a_cluster() -> None:
    bed = Bed({"broker-a": 7})
    first, second = record({}, name="a"), record({}, name="b")
    second.spec["consumerGroup"] = "payments"  # type: ignore[index]
    await bed.apply(first, second)
    assert bed.metric("rocketmq_retry_dead_letters", cluster=CLUSTER) == 14
    bed.world.dead_letter_index.remove(first)
    bed.world.loop.gone("DeadLetterQueue", first)
    assert bed.metric("rocketmq_retry_dead_letters", cluster=CLUSTER) == 7


async def test_dead_letters_expiring_flips_with_the_brokers_retention_with_events_and_gauges() -> None:
    bed = Bed({"broker-a": 6, "broker-b": 4})
    queue = record({"expiryMargin": "12h"})
    await bed.apply(queue)
    status = last_status(bed)
    assert conditions(status)["DeadLettersExpiring"] == ("False", "OutsideMargin")
    assert status["earliestRemovalTime"] == "2026-01-05T02:04:05Z"  # stored an hour before NOW, kept 72 h
    assert [b["fileReservedHours"] for b in status["brokers"]] == [72, 72]
    assert bed.metric("rocketmq_retry_dead_letter_queues_expiring", cluster=CLUSTER) == 0
    removal = bed.metric("rocketmq_retry_dead_letters_earliest_removal_timestamp_seconds", cluster=CLUSTER)
    assert removal == (NOW + timedelta(hours=71)).timestamp()

    bed.file_reserved_hours = 1  # `mqadmin updateBrokerConfig -k fileReservedTime -v 1` on every master
    await bed.resync()
    status = last_status(bed)
    assert conditions(status)["DeadLettersExpiring"] == ("True", "WithinMargin")
    assert status["earliestRemovalTime"] == "2026-01-02T03:04:05Z"
    assert bed.sink.events[-1] == ("ns/orders-dlq", "DeadLettersExpiring")
    assert bed.metric("rocketmq_retry_dead_letter_queues_expiring", cluster=CLUSTER) == 1
    assert bed.metric("rocketmq_retry_dead_letters_earliest_removal_timestamp_seconds",
                      cluster=CLUSTER) == NOW.timestamp()

    bed.dlq.committed.update(bed.stored)  # every dead letter redriven: nothing left to lose
    await bed.resync()
    status = last_status(bed)
    assert conditions(status)["DeadLettersExpiring"] == ("False", "NoPendingDeadLetters")
    assert status["earliestRemovalTime"] is None  # deleted by the merge patch
    assert bed.sink.events[-1] == ("ns/orders-dlq", "DeadLettersExpiryCleared")
    assert bed.metric("rocketmq_retry_dead_letter_queues_expiring", cluster=CLUSTER) == 0
    assert bed.metric("rocketmq_retry_dead_letters_earliest_removal_timestamp_seconds", cluster=CLUSTER) is None
    bed.world.dead_letter_index.remove(queue)
    bed.world.loop.gone("DeadLetterQueue", queue)
    assert bed.metric("rocketmq_retry_dead_letter_queues_expiring", cluster=CLUSTER) is None


def test_expiry_events_are_a_warning_when_it_turns_true_and_normal_when_it_clears() -> None:
    def status(state: str) -> dict[str, Any]:
        return {"conditions": [{"type": "DeadLettersExpiring", "status": state, "reason": "r", "message": state}]}

    assert dead_letter_events(status("False"), status("True"), [], None) == [
        PolicyEvent("Warning", "DeadLettersExpiring", "True")]
    assert dead_letter_events(status("True"), status("False"), [], None) == [
        PolicyEvent("Normal", "DeadLettersExpiryCleared", "False")]
    assert dead_letter_events(status("Unknown"), status("False"), [], None) == []
    assert dead_letter_events(status("True"), status("Unknown"), [], None) == []
