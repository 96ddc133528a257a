"""The DeadLetterQueue worker with an in-memory dead-letter queue: depth, BacklogHigh, redrive runs, refusals."""

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from rocketmq_retry.controller.dead_letters import DeadLetterRuntime, DeadLetterWorker
from rocketmq_retry.controller.records import PolicyRecord
from rocketmq_retry.domain.dead_letters import (
    Backlog,
    BrokerBacklog,
    DeadLetterBrokerState,
    DeadLetterQueueSpec,
    RedriveSpec,
)
from rocketmq_retry.domain.redrive import QueueProgress, RedriveProgress
from rocketmq_retry.domain.spec import ClusterRef
from rocketmq_retry.reconcile.config import OperatorConfig
from rocketmq_retry.reconcile.redrive import Redrive
from rocketmq_retry.remoting.producer import SendResult
from rocketmq_retry.remoting.sending import Message
from tests.unit.controller.test_engine import NAMESRV, NoSecrets
from tests.unit.controller.test_sweep import RecordingSink
from tests.unit.reconcile.test_redrive import TOPIC, FakeDlq, FakeTarget

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
CLUSTER = "*@127.0.0.1:9876"


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
    """A worker's world: the brokers' depth as `observe` reports it, a dead-letter queue and a target to redrive."""

    def __init__(self, stored: dict[str, int] | None = None, target: FakeTarget | None = None) -> None:
        self.stored = stored or {"broker-a": 30, "broker-b": 12}
        self.dlq = FakeDlq(self.stored)
        self.target = target or FakeTarget()
        self.sink = RecordingSink()
        self.observed = 0
        self.runtime = DeadLetterRuntime(OperatorConfig(dead_letter_interval=1e-9), lambda cluster, creds: object(),
                                         NoSecrets(), self.sink, observe=self.observe, begin=self.begin,
                                         engine=self.engine)

    async def observe(self, admin: Any, cluster: ClusterRef, spec: DeadLetterQueueSpec, *,
                      call_timeout: float) -> Backlog:
        self.observed += 1
        return Backlog(tuple(BrokerBacklog(broker, f"{broker}:10911", DeadLetterBrokerState.READABLE, 6, 1,
                                           count - self.dlq.committed.get(broker, 0), count)
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
        return self.runtime.metrics.registry.get_sample_value(name, labels)


def record(spec: dict[str, Any], *, name: str = "orders-dlq", generation: int = 1, age: int = 0,
           status: dict[str, Any] | None = None) -> PolicyRecord:
    return PolicyRecord("ns", name, f"uid-{name}", generation, NOW - timedelta(seconds=age), {},
                        {"cluster": NAMESRV, "consumerGroup": "orders", **spec}, status or {})


def last_status(bed: Bed) -> dict[str, Any]:
    return dict(bed.sink.patches[-1][1])


def conditions(status: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}


async def settle(worker: DeadLetterWorker) -> None:
    """Let the worker's redrive task (kopf-free, named after the run) run to its end."""
    await asyncio.gather(*(task for task in asyncio.all_tasks() if task.get_name().startswith("redrive ")))
    assert not worker.alive


async def test_depth_is_reported_and_backlog_high_flips_at_the_threshold() -> None:
    bed = Bed({"broker-a": 6, "broker-b": 4})
    worker = DeadLetterWorker(bed.runtime, record({"alertThreshold": 10}))
    obj = record({"alertThreshold": 10})
    await worker.tick(obj, [obj], NOW)
    status = last_status(bed)
    assert (status["depth"], status["storedMessages"], status["topic"], status["redriveGroup"]) == (
        10, 10, "%DLQ%orders", "orders-redrive")
    assert conditions(status) == {"Ready": ("True", "Synced"), "BacklogHigh": ("False", "WithinThreshold")}
    assert bed.metric("rocketmq_retry_dead_letters", cluster=CLUSTER) == 10

    bed.stored["broker-b"] = 5
    await worker.tick(obj, [obj], NOW)
    assert conditions(last_status(bed))["BacklogHigh"] == ("True", "AboveThreshold")
    assert bed.sink.events[-1] == ("ns/orders-dlq", "BacklogHigh")
    assert bed.metric("rocketmq_retry_dead_letter_backlogs_high", cluster=CLUSTER) == 1

    patches = len(bed.sink.patches)
    await worker.tick(obj, [obj], NOW + timedelta(minutes=1))
    assert len(bed.sink.patches) == patches  # nothing changed, nothing written

    bed.dlq.committed["broker-a"] = 6  # a redrive elsewhere passed broker-a's dead letters
    await worker.tick(obj, [obj], NOW)
    assert conditions(last_status(bed))["BacklogHigh"] == ("False", "WithinThreshold")
    assert bed.sink.events[-1] == ("ns/orders-dlq", "BacklogCleared")
    await worker.close()
    assert bed.metric("rocketmq_retry_dead_letters", cluster=CLUSTER) is None


async def test_a_redrive_runs_to_success_and_is_counted() -> None:
    bed = Bed()
    obj = record({"redrive": {"requestId": "r1", "rate": 10000}})
    worker = DeadLetterWorker(bed.runtime, obj)
    await worker.tick(obj, [obj], NOW)
    await settle(worker)
    await worker.tick(obj, [obj], NOW)
    redrive = last_status(bed)["redrive"]
    assert (redrive["requestId"], redrive["state"], redrive["moved"], redrive["remaining"]) == (
        "r1", "Succeeded", 42, 0)
    assert last_status(bed)["depth"] == 0
    assert ("ns/orders-dlq", "RedriveSucceeded") in bed.sink.events
    assert len(bed.target.sent) == 42
    assert bed.metric("rocketmq_retry_redrive_messages_total", cluster=CLUSTER, result="moved") == 42

    await worker.tick(obj, [obj], NOW)  # the same requestId never runs twice
    assert len(bed.target.sent) == 42


async def test_a_second_request_while_one_runs_is_refused_for_good() -> None:
    bed = Bed(target=GatedTarget())
    first = record({"redrive": {"requestId": "r1"}})
    worker = DeadLetterWorker(bed.runtime, first)
    await worker.tick(first, [first], NOW)
    assert worker.alive
    assert last_status(bed)["redrive"]["state"] == "Running"
    assert ("ns/orders-dlq", "RedriveStarted") in bed.sink.events

    second = record({"redrive": {"requestId": "r2"}}, generation=2)
    await worker.tick(second, [second], NOW)
    status = last_status(bed)
    assert conditions(status)["RedriveRejected"] == ("True", "AnotherRedriveActive")
    assert status["redrive"]["rejectedRequestId"] == "r2"
    assert bed.sink.events[-1] == ("ns/orders-dlq", "RedriveRejected")

    assert isinstance(bed.target, GatedTarget)
    bed.target.gate.set()
    await settle(worker)
    await worker.tick(second, [second], NOW)
    await worker.tick(second, [second], NOW)
    status = last_status(bed)
    assert (status["redrive"]["requestId"], status["redrive"]["state"]) == ("r1", "Succeeded")
    assert conditions(status)["RedriveRejected"][0] == "True"  # still named by the spec, still refused
    assert len(bed.target.sent) == 42


async def test_cancel_stops_the_run_and_keeps_the_rest_pending() -> None:
    bed = Bed(target=GatedTarget())
    running = record({"redrive": {"requestId": "r1"}})
    worker = DeadLetterWorker(bed.runtime, running)
    await worker.tick(running, [running], NOW)
    cancelled = record({"redrive": {"requestId": "r1", "cancel": True}}, generation=2)
    await worker.tick(cancelled, [cancelled], NOW)
    assert isinstance(bed.target, GatedTarget)
    bed.target.gate.set()
    await settle(worker)
    await worker.tick(cancelled, [cancelled], NOW)
    redrive = last_status(bed)["redrive"]
    assert redrive["state"] == "Cancelled"
    assert redrive["moved"] + redrive["remaining"] == 42
    assert redrive["remaining"] > 0
    assert last_status(bed)["depth"] == redrive["remaining"]


async def test_a_run_left_running_by_a_previous_operator_is_resumed() -> None:
    bed = Bed({"broker-a": 40})
    bed.dlq.committed["broker-a"] = 32  # the previous operator committed one batch and acknowledged 36
    left = RedriveProgress("r1", 10000, NOW, queues=[QueueProgress("broker-a", 0, 0, 40, 36)], moved=36)
    obj = record({"redrive": {"requestId": "r1"}}, status={"redrive": left.to_json()})
    worker = DeadLetterWorker(bed.runtime, obj)
    await worker.tick(obj, [obj], NOW)
    await settle(worker)
    await worker.tick(obj, [obj], NOW)
    redrive = last_status(bed)["redrive"]
    assert (redrive["state"], redrive["moved"], redrive["duplicates"]) == ("Succeeded", 40, 4)
    assert sorted(msg_id for _, msg_id, _, _ in bed.target.sent) == sorted(
        [f"broker-a-{offset}" for offset in range(32, 40)])
    # Counted from where the previous operator's status left off.
    assert bed.metric("rocketmq_retry_redrive_messages_total", cluster=CLUSTER, result="moved") == 4
    assert bed.metric("rocketmq_retry_redrive_messages_total", cluster=CLUSTER, result="duplicate") == 4


async def test_a_new_request_marked_cancel_is_recorded_without_moving_anything() -> None:
    bed = Bed()
    obj = record({"redrive": {"requestId": "r1", "cancel": True}})
    worker = DeadLetterWorker(bed.runtime, obj)
    await worker.tick(obj, [obj], NOW)
    redrive = last_status(bed)["redrive"]
    assert (redrive["state"], redrive["moved"], redrive["message"]) == ("Cancelled", 0, "cancelled before it started")
    assert not bed.target.sent


async def test_the_younger_of_two_objects_for_one_group_reports_a_conflict_and_reads_nothing() -> None:
    bed = Bed()
    older, younger = record({}, name="first", age=60), record({"redrive": {"requestId": "r1"}}, name="second")
    worker = DeadLetterWorker(bed.runtime, younger)
    await worker.tick(younger, [older, younger], NOW)
    status = last_status(bed)
    assert conditions(status) == {"Ready": ("False", "Conflict"), "Stalled": ("True", "Conflict")}
    assert status["conflictWith"] == "ns/first"
    assert (bed.observed, bed.target.sent, worker.alive) == (0, [], False)


async def test_an_invalid_spec_is_reported_without_broker_calls() -> None:
    bed = Bed()
    obj = record({"alertThreshold": -1})
    await DeadLetterWorker(bed.runtime, obj).tick(obj, [obj], NOW)
    assert conditions(last_status(bed))["Ready"] == ("False", "InvalidSpec")
    assert bed.observed == 0


async def test_the_depth_gauge_sums_the_objects_of_a_cluster() -> None:
    bed = Bed({"broker-a": 7})
    first, second = record({}, name="a"), record({}, name="b")
    second.spec["consumerGroup"] = "payments"
    workers = [DeadLetterWorker(bed.runtime, obj) for obj in (first, second)]
    for worker, obj in zip(workers, (first, second), strict=True):
        await worker.tick(obj, [first, second], NOW)
    assert bed.metric("rocketmq_retry_dead_letters", cluster=CLUSTER) == 14
    await workers[0].close()
    assert bed.metric("rocketmq_retry_dead_letters", cluster=CLUSTER) == 7


