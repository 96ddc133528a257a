"""DeadLetterQueue end to end: the operator as a process with the chart's ServiceAccount token, real brokers of every
bed version, real dead letters (each message fails its one retry), and a redrive consumed from the original topic.

Waits are generous bounds, never timing assertions; the operator reads the brokers every DLQ_INTERVAL seconds.
"""

import asyncio
import math
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import kubernetes
import pytest

from rocketmq_chaos.journal import Receive
from rocketmq_lab.bed.ports import free_port
from rocketmq_lab.bed.processes import ManagedProcess, wait_until
from rocketmq_lab.bed.rocketmq import RocketMQCluster
from rocketmq_lab.chaos import java_probes
from rocketmq_retry.reconcile.redrive import BATCH
from rocketmq_retry.remoting import (
    Admin,
    ConnectionPool,
    Message,
    MessageExt,
    MessageQueue,
    Producer,
    PullConsumer,
    RemotingCommand,
    RequestCode,
    ResponseCode,
    TopicConfig,
    dlq_topic,
    retry_topic,
)
from tests.conftest import Kube
from tests.e2e.running import CustomObjects, java_consumer, journal_of, metric, operator_running
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
    with operator_running(kube, namespace, tmp_path_factory.mktemp("operator"), "--dlq-interval", str(DLQ_INTERVAL),
                          "--broker-timeout", "10", "--metrics-port", str(metrics_port)) as process:
        yield process


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

    def ends(self, topic: str | None = None) -> dict[MessageQueue, int]:
        async def read(pool: ConnectionPool, servers: list[str]) -> dict[MessageQueue, int]:
            return await end_offsets(PullConsumer(pool, servers, _unique("e2e_dlq_reader")), topic or self.topic)

        result: dict[MessageQueue, int] = self.run(read)
        return result

    def consume(self, offsets: dict[MessageQueue, int], count: int, topic: str | None = None) -> list[MessageExt]:
        async def read(pool: ConnectionPool, servers: list[str]) -> list[MessageExt]:
            reader = PullConsumer(pool, servers, _unique("e2e_dlq_reader"))
            return [message for _, message in await collect(reader, topic or self.topic, count, offsets,
                                                              within=CONVERGE)]

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
    queues.patch_spec("orders", {"redrive": {"requestId": "slow", "rate": 5, "scope": "Topic"}})
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


def test_an_operator_killed_mid_redrive_resumes_it_and_every_selected_message_reaches_the_group(
        queues: CustomObjects, rocketmq_cluster: RocketMQCluster) -> None:
    count = 400
    messages = Messages(rocketmq_cluster)
    messages.create_topic()
    dead = messages.dead_letter(count)
    queues.create("resumed", {"cluster": {"nameServers": rocketmq_cluster.namesrv_addr},
                              "consumerGroup": messages.group, "readable": True})
    queues.wait("resumed", f"depth {count}", lambda found: found.get("status", {}).get("depth") == count)
    ends = messages.ends(retry_topic(messages.group))  # the run sends to the failing group alone

    queues.patch_spec("resumed", {"redrive": {"requestId": "crash", "rate": 100, "scope": "Group",
                                              "selector": {"keys": ["dlq-test"]}}})
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
        arrived.update(message.msg_id for message in messages.consume(ends, 1, retry_topic(messages.group)))
    assert wanted <= set(arrived), f"{len(wanted - set(arrived))} dead letters never reached their topic"
    # `duplicates` counts the re-sends the operator knew of. Acknowledgements after its last status write die with it,
    # so their re-sends go uncounted: at most one uncommitted batch per DLQ queue (one queue per master), plus the
    # message that was stored but not yet acknowledged.
    uncounted = sum(arrived.values()) - count - done["duplicates"]
    assert 0 <= uncounted <= BATCH * len(rocketmq_cluster.brokers) + 1, (uncounted, done)
    queues.delete("resumed")


def _file_reserved_time(messages: Messages, set_to: dict[str, str] | None = None) -> dict[str, str]:
    """Each master's fileReservedTime (broker name -> hours), after setting the masters `set_to` names as
    `mqadmin updateBrokerConfig` does: UPDATE_BROKER_CONFIG with a properties body, which the broker applies to its
    MessageStoreConfig at once (and persists to its config file)."""
    async def work(pool: ConnectionPool, servers: list[str]) -> dict[str, str]:
        admin = Admin(pool, servers)
        for broker in messages.cluster.brokers:
            if set_to is not None and broker.name in set_to:
                body = f"fileReservedTime={set_to[broker.name]}\n".encode()
                answer = await pool.invoke(broker.addr, RemotingCommand(RequestCode.UPDATE_BROKER_CONFIG, body=body))
                assert answer.code == ResponseCode.SUCCESS, answer.remark
        return {b.name: (await admin.get_broker_config(b.addr))["fileReservedTime"] for b in messages.cluster.brokers}

    result: dict[str, str] = messages.run(work)
    return result


def test_dead_letters_expiring_flips_on_masters_that_keep_their_files_for_an_hour(
        queues: CustomObjects, rocketmq_cluster: RocketMQCluster, kube: Kube, metrics_port: int) -> None:
    """The shared bed's masters keep files 72 h; set to 1 h at runtime (restored after), the oldest pending dead letter
    may go an hour after it was stored, within the default 12 h margin. No broker deletes it meanwhile: a commit-log
    file goes only once its last write is an hour old, and never the file being written."""
    cluster_key = f"*@{rocketmq_cluster.namesrv_addr}"
    messages = Messages(rocketmq_cluster)
    messages.create_topic()
    before = datetime.now(UTC)
    messages.dead_letter(5)
    after = datetime.now(UTC)
    original = _file_reserved_time(messages)
    assert set(original.values()) == {"72"}  # the brokers' default
    queues.create("expiring", {"cluster": {"nameServers": rocketmq_cluster.namesrv_addr},
                               "consumerGroup": messages.group, "readable": True})
    found = queues.wait("expiring", "DeadLettersExpiring=False", lambda found: _conditions(found).get(
        "DeadLettersExpiring") == ("False", "OutsideMargin") and found["status"].get("depth") == 5)
    status = found["status"]
    assert {b["fileReservedHours"] for b in status["brokers"]} == {72}
    oldest = datetime.fromisoformat(status["oldestDeadLetterTime"])
    assert datetime.fromisoformat(status["earliestRemovalTime"]) == oldest + timedelta(hours=72)

    try:
        _file_reserved_time(messages, dict.fromkeys(original, "1"))
        found = queues.wait("expiring", "DeadLettersExpiring=True", lambda found: _conditions(found).get(
            "DeadLettersExpiring") == ("True", "WithinMargin"))
        status = found["status"]
        removal = datetime.fromisoformat(status["earliestRemovalTime"])
        assert removal == datetime.fromisoformat(status["oldestDeadLetterTime"]) + timedelta(hours=1)
        # The operator's store time is the broker's: between the test's clock before and after (whole seconds).
        assert before - timedelta(seconds=1) <= removal - timedelta(hours=1) <= after + timedelta(seconds=1)
        assert {b["fileReservedHours"] for b in status["brokers"]} == {1}
        assert status["depth"] == 5  # nothing removed yet
        wait_until(lambda: "DeadLettersExpiring" in _events(kube, queues.namespace, "expiring"), timeout=CONVERGE,
                   what="a DeadLettersExpiring Event")
        wait_until(lambda: metric(metrics_port, "rocketmq_retry_dead_letter_queues_expiring", cluster=cluster_key)
                   == 1, timeout=CONVERGE, what="the expiring gauge")
        gauge = metric(metrics_port, "rocketmq_retry_dead_letters_earliest_removal_timestamp_seconds",
                       cluster=cluster_key)
        assert abs(gauge - removal.timestamp()) < 1  # the status has whole seconds, the gauge milliseconds
    finally:
        assert _file_reserved_time(messages, original) == original

    queues.wait("expiring", "DeadLettersExpiring=False again", lambda found: _conditions(found).get(
        "DeadLettersExpiring") == ("False", "OutsideMargin"))
    wait_until(lambda: "DeadLettersExpiryCleared" in _events(kube, queues.namespace, "expiring"), timeout=CONVERGE,
               what="a DeadLettersExpiryCleared Event")
    queues.delete("expiring")
    wait_until(lambda: metric(metrics_port, "rocketmq_retry_dead_letter_queues_expiring", cluster=cluster_key) == 0,
               timeout=CONVERGE, what="the expiring gauge gone with the object")


def test_a_redrive_to_the_group_reaches_it_alone_and_one_to_the_topic_every_group(
        queues: CustomObjects, rocketmq_cluster: RocketMQCluster, tmp_path: Path) -> None:
    """Official Java push consumers of groups A and B on one topic, each dead-lettering every message on its first
    failure (setMaxReconsumeTimes(0)), so that a group's deliveries of an id count the times it was sent to it.

    Ten messages, then ten more after a second boundary. A dry run of A's dead letters stored before the boundary
    counts ten; the run then moves those ten to A alone (scope Group), which fails them back to its DLQ; a Topic run
    of what is pending (the ten later ones and the ten that failed again) reaches both groups.
    """
    messages = Messages(rocketmq_cluster)
    messages.create_topic()
    group_a, group_b = messages.group, _unique("e2e_dlq_other")
    consumers = {group: java_consumer(rocketmq_cluster, tmp_path / group, messages.topic, group,
                                      "--max-reconsume-times", "0") for group in (group_a, group_b)}
    queues.create("scoped", {"cluster": {"nameServers": rocketmq_cluster.namesrv_addr}, "consumerGroup": group_a,
                             "readable": True})

    def stored(group: str) -> int:
        async def count(pool: ConnectionPool, servers: list[str]) -> int:
            ends = await end_offsets(PullConsumer(pool, servers, _unique("e2e_dlq_reader")), dlq_topic(group))
            return sum(ends.values())

        result: int = messages.run(count)
        return result

    def dead_lettered(counts: dict[str, int], what: str) -> None:
        wait_until(lambda: all(stored(group) >= count for group, count in counts.items()),
                   timeout=java_probes.START_ALLOWANCE, interval=1.0, process=consumers[group_a], what=what)
        assert {group: stored(group) for group in counts} == counts

    def send(first: int) -> list[str]:
        async def produce(pool: ConnectionPool, servers: list[str]) -> list[str]:
            producer = Producer(pool, servers)
            return [(await producer.send(Message(messages.topic, b"later", keys=[f"scoped-{index}"]))).msg_id
                    for index in range(first, first + 10)]

        sent: list[str] = messages.run(produce)
        return sent

    try:
        for consumer in consumers.values():
            consumer.start()
        early = send(0)
        dead_lettered({group_a: 10, group_b: 10}, "the first ten dead-lettered by both groups")
        boundary = datetime.fromtimestamp(math.ceil(time.time()) + 1, UTC)  # CRD times have whole seconds
        wait_until(lambda: datetime.now(UTC) >= boundary, timeout=5, what="the boundary")
        late = send(10)
        dead_lettered({group_a: 20, group_b: 20}, "the later ten dead-lettered by both groups")
        window = {"storedBefore": boundary.strftime("%Y-%m-%dT%H:%M:%SZ")}

        queues.patch_spec("scoped", {"redrive": {"requestId": "dry", "dryRun": True, "selector": window}})
        dry = _redrive(queues.wait("scoped", "the dry run", lambda found: _redrive(found).get("requestId") == "dry"
                                   and _redrive(found).get("state") == "Succeeded"))
        assert (dry["matched"], dry["moved"], dry["skipped"]) == (10, 0, 10)
        assert sorted(entry["msgId"] for entry in dry["selected"]) == sorted(early)
        assert stored(group_a) == 20

        queues.patch_spec("scoped", {"redrive": {"requestId": "window", "dryRun": None}})
        run = _redrive(queues.wait("scoped", "the windowed run", lambda found: _redrive(found).get("requestId")
                                   == "window" and _redrive(found).get("state") == "Succeeded"))
        assert (run["scope"], run["moved"], run["matched"], run["duplicates"]) == ("Group", dry["matched"], 10, 0)
        dead_lettered({group_a: 30, group_b: 20}, "A failing the ten it got back")

        queues.patch_spec("scoped", {"redrive": {"requestId": "topic", "scope": "Topic", "selector": None}})
        queues.wait("scoped", "the topic run", lambda found: _redrive(found).get("requestId") == "topic"
                    and _redrive(found).get("state") == "Succeeded")
        # A's DLQ gets each message back once more; B's reaching 40, not 50, says the Group run never reached B.
        dead_lettered({group_a: 50, group_b: 40}, "both groups failing what the topic run sent")
    finally:
        for consumer in consumers.values():
            consumer.stop()

    deliveries = {group: Counter(event.msg_id for event in journal_of(consumer) if isinstance(event, Receive))
                  for group, consumer in consumers.items()}
    assert deliveries[group_a] == Counter({**dict.fromkeys(early, 3), **dict.fromkeys(late, 2)})
    assert deliveries[group_b] == Counter(dict.fromkeys(early + late, 2))
    queues.delete("scoped")
