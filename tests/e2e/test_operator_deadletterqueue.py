"""DeadLetterQueue end to end: the operator as a process with the chart's ServiceAccount token, real brokers of every
bed version, real dead letters (each message fails its one retry), and a redrive consumed from the original topic.

Waits are generous bounds, never timing assertions; the operator reads the brokers every DLQ_INTERVAL seconds.
"""

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import kubernetes
import pytest

from rocketmq_lab.bed.ports import free_port
from rocketmq_lab.bed.processes import ManagedProcess, wait_until
from rocketmq_lab.bed.rocketmq import RocketMQCluster
from rocketmq_retry.reconcile.redrive import BATCH
from rocketmq_retry.remoting import (
    Admin,
    ConnectionPool,
    MessageExt,
    MessageQueue,
    Producer,
    PullConsumer,
    TopicConfig,
)
from tests.conftest import Kube
from tests.e2e.running import CustomObjects, chart_installed, metric, operator_process
from tests.messaging import collect, dead_letter, end_offsets, until

DLQ_INTERVAL = 2
CONVERGE = 120.0  # bound for anything the operator does; JVM brokers on a loaded 2-core machine can be slow
TOTAL, THRESHOLD = 300, 299


def _unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def namespace(kube: Kube) -> str:
    return kube.new_namespace("e2e-dlq")


@pytest.fixture(scope="module")
def metrics_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def operator(kube: Kube, namespace: str, rocketmq_cluster: RocketMQCluster, metrics_port: int,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[ManagedProcess]:
    with chart_installed(kube, namespace) as kubeconfig:
        process = operator_process(kubeconfig, namespace, tmp_path_factory.mktemp("operator"), "--dlq-interval",
                                   str(DLQ_INTERVAL), "--broker-timeout", "10", "--metrics-port", str(metrics_port))
        process.start()
        try:
            yield process
        finally:
            process.stop()


@pytest.fixture
def queues(kube: Kube, namespace: str, operator: ManagedProcess) -> CustomObjects:
    return CustomObjects(kube, namespace, "DeadLetterQueue", "deadletterqueues", operator, converge=CONVERGE)


def _conditions(found: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in found.get("status", {}).get("conditions", [])}


def _redrive(found: dict[str, Any]) -> dict[str, Any]:
    redrive: dict[str, Any] = found.get("status", {}).get("redrive", {})
    return redrive


def _events(kube: Kube, namespace: str, name: str) -> list[str]:
    listed = kubernetes.client.CoreV1Api(kube.api).list_namespaced_event(namespace).items
    return [event.reason for event in listed if event.involved_object.name == name]


class Messages:
    """The test's topic and group on the bed, with our own clients (one event loop per call: the test is sync)."""

    def __init__(self, cluster: RocketMQCluster) -> None:
        self.cluster = cluster
        self.topic, self.group = _unique("e2e_dlq_topic"), _unique("e2e_dlq_group")

    def run(self, work: Any) -> Any:
        async def with_clients() -> Any:
            async with ConnectionPool(request_timeout=15) as pool:
                return await work(pool, [self.cluster.namesrv_addr])

        return asyncio.run(with_clients())

    def create_topic(self) -> None:
        async def create(pool: ConnectionPool, servers: list[str]) -> None:
            admin = Admin(pool, servers)
            for broker in self.cluster.brokers:
                await admin.create_or_update_topic(broker.addr, TopicConfig(self.topic, read_queue_nums=2,
                                                                            write_queue_nums=2))
            brokers = {b.name for b in self.cluster.brokers}

            async def routed() -> bool:
                return {q.broker_name for q in (await admin.topic_route(self.topic)).queues} == brokers

            await until(routed, f"route of {self.topic}", within=CONVERGE)

        self.run(create)

    def dead_letter(self, count: int) -> list[MessageExt]:
        """Send `count` messages and fail each twice: once, then again on its one retry, so it is dead-lettered."""
        async def fail(pool: ConnectionPool, servers: list[str]) -> list[MessageExt]:
            consumer = PullConsumer(pool, servers, self.group, max_reconsume_times=1)
            return await dead_letter(Producer(pool, servers), consumer, self.topic, count, retries=1, within=CONVERGE)

        result: list[MessageExt] = self.run(fail)
        return result

    def ends(self) -> dict[MessageQueue, int]:
        async def read(pool: ConnectionPool, servers: list[str]) -> dict[MessageQueue, int]:
            return await end_offsets(PullConsumer(pool, servers, _unique("e2e_dlq_reader")), self.topic)

        result: dict[MessageQueue, int] = self.run(read)
        return result

    def consume(self, offsets: dict[MessageQueue, int], count: int) -> list[MessageExt]:
        async def read(pool: ConnectionPool, servers: list[str]) -> list[MessageExt]:
            reader = PullConsumer(pool, servers, _unique("e2e_dlq_reader"))
            return [message for _, message in await collect(reader, self.topic, count, offsets, within=CONVERGE)]

        result: list[MessageExt] = self.run(read)
        return result


def test_dead_letters_in_status_backlog_alert_and_a_redrive_that_delivers_every_one(
        queues: CustomObjects, rocketmq_cluster: RocketMQCluster, kube: Kube, metrics_port: int) -> None:
    cluster_key = f"*@{rocketmq_cluster.namesrv_addr}"
    messages = Messages(rocketmq_cluster)
    messages.create_topic()
    dead = messages.dead_letter(THRESHOLD)
    queues.create("orders", {"cluster": {"nameServers": rocketmq_cluster.namesrv_addr},
                             "consumerGroup": messages.group, "readable": True, "alertThreshold": THRESHOLD})

    # At the threshold: every dead letter counted, no alert yet.
    found = queues.wait("orders", f"depth {THRESHOLD}", lambda found: found.get("status", {}).get("depth") == THRESHOLD
                        and _conditions(found).get("Ready") == ("True", "Synced"))
    status = found["status"]
    assert _conditions(found)["BacklogHigh"] == ("False", "WithinThreshold")
    assert {b["name"] for b in status["brokers"]} == {b.name for b in rocketmq_cluster.brokers}
    assert all(b["state"] == "Readable" and b["perm"] == 6 and b["queues"] == 1 for b in status["brokers"])
    assert sum(b["depth"] for b in status["brokers"]) == THRESHOLD == status["storedMessages"]
    assert datetime.fromisoformat(status["oldestDeadLetterTime"]) <= datetime.fromisoformat(
        found["metadata"]["creationTimestamp"])
    assert (status["topic"], status["redriveGroup"]) == (f"%DLQ%{messages.group}", f"{messages.group}-redrive")

    # One more dead letter crosses it.
    dead += messages.dead_letter(TOTAL - THRESHOLD)
    queues.wait("orders", "BacklogHigh=True", lambda found: _conditions(found).get("BacklogHigh", ("",))[0] == "True")
    assert queues.get("orders")["status"]["depth"] == TOTAL  # type: ignore[index]
    wait_until(lambda: "BacklogHigh" in _events(kube, queues.namespace, "orders"), timeout=CONVERGE,
               what="a BacklogHigh Event")
    wait_until(lambda: metric(metrics_port, "rocketmq_retry_dead_letters", cluster=cluster_key) == TOTAL,
               timeout=CONVERGE, what="the depth gauge")
    assert metric(metrics_port, "rocketmq_retry_dead_letter_backlogs_high", cluster=cluster_key) == 1
    ends = messages.ends()

    # One redrive at a time: a slow run, a second request refused while it runs, then the slow run cancelled.
    queues.patch_spec("orders", {"redrive": {"requestId": "slow", "rate": 5}})
    queues.wait("orders", "the slow run moving", lambda found: _redrive(found).get("state") == "Running"
                and _redrive(found).get("moved", 0) > 0)
    queues.patch_spec("orders", {"redrive": {"requestId": "second"}})
    refused = queues.wait("orders", "RedriveRejected", lambda found: "RedriveRejected" in _conditions(found))
    assert _conditions(refused)["RedriveRejected"] == ("True", "AnotherRedriveActive")
    assert (_redrive(refused)["requestId"], _redrive(refused)["rejectedRequestId"]) == ("slow", "second")
    queues.patch_spec("orders", {"redrive": {"requestId": "slow", "cancel": True}})
    cancelled = _redrive(queues.wait("orders", "the slow run cancelled",
                                     lambda found: _redrive(found).get("state") == "Cancelled"))
    slow_moved = cancelled["moved"]
    assert 0 < slow_moved < TOTAL
    assert cancelled["remaining"] == TOTAL - slow_moved

    # The real one: every remaining dead letter at 200 msg/s.
    queues.patch_spec("orders", {"redrive": {"requestId": "all", "rate": 200, "cancel": False}})
    done = queues.wait("orders", "the redrive succeeded and the backlog cleared",
                       lambda found: _redrive(found).get("requestId") == "all"
                       and _redrive(found).get("state") == "Succeeded" and found["status"].get("depth") == 0
                       and _conditions(found).get("BacklogHigh", ("",))[0] == "False")
    run = _redrive(done)
    assert (run["moved"], run["failed"], run["duplicates"], run["remaining"]) == (TOTAL - slow_moved, 0, 0, 0)
    assert "rejectedRequestId" not in run  # the slow run's refusal went with it
    assert done["status"]["storedMessages"] == TOTAL  # the dead letters stay stored; the redrive group passed them
    seconds = (datetime.fromisoformat(run["finishTime"]) - datetime.fromisoformat(run["startTime"])).total_seconds()
    assert seconds >= run["moved"] / 200 - 2  # the rate held (timestamps have whole seconds)
    wait_until(lambda: {"BacklogCleared", "RedriveSucceeded", "RedriveCancelled", "RedriveRejected"} <= set(
        _events(kube, queues.namespace, "orders")), timeout=CONVERGE, what="the Events of the story")

    redriven = messages.consume(ends, TOTAL)
    assert sorted(message.msg_id for message in redriven) == sorted(message.msg_id for message in dead)
    by_id = {message.msg_id: message for message in dead}
    assert all(message.body == by_id[message.msg_id].body and message.properties.get("KEYS")
               == by_id[message.msg_id].properties.get("KEYS") for message in redriven)
    wait_until(lambda: metric(metrics_port, "rocketmq_retry_dead_letters", cluster=cluster_key) == 0,
               timeout=CONVERGE, what="the depth gauge back to 0")
    assert metric(metrics_port, "rocketmq_retry_redrive_messages_total", cluster=cluster_key,
                  result="moved") == TOTAL
    queues.delete("orders")
    wait_until(lambda: queues.get("orders") is None, timeout=CONVERGE, what="deleted")


def test_a_write_only_dead_letter_topic_is_made_readable_on_every_master(
        queues: CustomObjects, rocketmq_cluster: RocketMQCluster) -> None:
    """As brokers up to 4.9.1 left it: perm 2 on one master, absent on the other."""
    messages = Messages(rocketmq_cluster)
    topic = f"%DLQ%{messages.group}"
    first = rocketmq_cluster.brokers[0]

    async def write_only(pool: ConnectionPool, servers: list[str]) -> None:
        await Admin(pool, servers).create_or_update_topic(first.addr, TopicConfig(topic, 1, 1, perm=2))

    messages.run(write_only)
    spec = {"cluster": {"nameServers": rocketmq_cluster.namesrv_addr}, "consumerGroup": messages.group}
    queues.create("legacy", spec)
    found = queues.wait("legacy", "NotReadable on the first master", lambda found: {
        b["name"]: b["state"] for b in found.get("status", {}).get("brokers", [])}.get(first.name) == "NotReadable")
    assert {b["state"] for b in found["status"]["brokers"]} == {"NotReadable", "Absent"}

    queues.patch_spec("legacy", {"readable": True})
    found = queues.wait("legacy", "Readable everywhere", lambda found: {
        b["state"] for b in found.get("status", {}).get("brokers", [])} == {"Readable"})
    assert all(b["perm"] == 6 and b["queues"] == 1 for b in found["status"]["brokers"])

    async def perms(pool: ConnectionPool, servers: list[str]) -> set[int]:
        admin = Admin(pool, servers)
        return {(await admin.get_all_topic_configs(b.addr))[topic].perm for b in rocketmq_cluster.brokers}

    assert messages.run(perms) == {6}
    queues.delete("legacy")


def test_an_operator_killed_mid_redrive_resumes_it_and_every_message_arrives(
        queues: CustomObjects, rocketmq_cluster: RocketMQCluster) -> None:
    count = 400
    messages = Messages(rocketmq_cluster)
    messages.create_topic()
    dead = messages.dead_letter(count)
    queues.create("resumed", {"cluster": {"nameServers": rocketmq_cluster.namesrv_addr},
                              "consumerGroup": messages.group, "readable": True})
    queues.wait("resumed", f"depth {count}", lambda found: found.get("status", {}).get("depth") == count)
    ends = messages.ends()

    queues.patch_spec("resumed", {"redrive": {"requestId": "crash", "rate": 100}})
    queues.wait("resumed", "the run under way", lambda found: _redrive(found).get("state") == "Running"
                and _redrive(found).get("moved", 0) >= 50)
    queues.operator.kill()  # SIGKILL: no graceful stop, nothing committed after this point
    queues.operator.start()
    done = _redrive(queues.wait("resumed", "the resumed run succeeded",
                                lambda found: _redrive(found).get("state") == "Succeeded"))
    assert (done["requestId"], done["moved"], done["failed"], done["remaining"]) == ("crash", count, 0, 0)

    wanted, arrived = {message.msg_id for message in dead}, Counter[str]()
    deadline = time.monotonic() + CONVERGE  # duplicates are allowed: read until every id came, not `count` messages
    while not wanted <= set(arrived) and time.monotonic() < deadline:
        arrived.update(message.msg_id for message in messages.consume(ends, 1))
    assert wanted <= set(arrived), f"{len(wanted - set(arrived))} dead letters never reached their topic"
    # `duplicates` counts the re-sends the operator knew of. Acknowledgements after its last status write die with it,
    # so their re-sends go uncounted: at most one uncommitted batch per DLQ queue (one queue per master), plus the
    # message that was stored but not yet acknowledged.
    uncounted = sum(arrived.values()) - count - done["duplicates"]
    assert 0 <= uncounted <= BATCH * len(rocketmq_cluster.brokers) + 1, (uncounted, done)
    queues.delete("resumed")
