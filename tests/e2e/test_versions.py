"""The older 5.x lines the bed pins besides the main matrix (issue 16), end to end: one test per version.

Through the real API server and operator a RetryPolicy reaches both masters, a consumer failing every delivery sees
its messages dead-lettered after exactly the policy's maxRetries, and the official `mqadmin` reads the group back.
5.1.4 has no batch group update (UPDATE_AND_CREATE_SUBSCRIPTIONGROUP_LIST, 5.3.1+), so there the operator's writes
take Admin's one-by-one fallback on a 5.x broker; 5.3.3 takes the list request, which its brokers log.
"""

import asyncio
import re
import uuid
from collections.abc import Iterator

import pytest

from rocketmq_chaos.experiments import send_once_routed
from rocketmq_chaos.journal import DeadLetter, Journal
from rocketmq_chaos.probes import FailingConsumer
from rocketmq_chaos.verdicts import judge_ladder
from rocketmq_lab.bed import versions
from rocketmq_lab.bed.ports import free_port
from rocketmq_lab.bed.processes import ManagedProcess, wait_until
from rocketmq_lab.bed.rocketmq import Broker, RocketMQCluster
from rocketmq_retry.remoting import ConnectionPool, Message, Producer, PullConsumer
from tests.conftest import Kube
from tests.e2e.running import Policies, operator_running
from tests.official import consumer_configs

pytestmark = pytest.mark.rocketmq_versions(*versions.ROCKETMQ_OLDER_LINES)

CONVERGE = 90.0  # bound for anything the operator or a broker does; JVMs on a loaded 2-core machine can be slow
MAX_RETRIES = 2  # on the bed's compressed ladder: retries after 1 s and 2 s
MESSAGES = 4  # two per master: the producer takes the topic's queues (one per master) in turn
BACKOFF = {"exponential": {"initial": "1s", "max": "1m", "multiplier": 3}}
# What `mqadmin getConsumerConfig` prints for it: every field's toString(), Guava's toStringHelper for this one.
PRINTED_BACKOFF = ("GroupRetryPolicy{type=EXPONENTIAL, exponentialRetryPolicy=ExponentialRetryPolicy{initial=1000, "
                   "max=60000, multiplier=3}, customizedRetryPolicy=null}")
# The broker's handler of the operator's group write: the list request from 5.3.1 on; 5.1.4 answers it
# REQUEST_CODE_NOT_SUPPORTED, and Admin falls back to one UPDATE_AND_CREATE_SUBSCRIPTIONGROUP per group.
WRITTEN_BY = {versions.ROCKETMQ_5_1: "updateAndCreateSubscriptionGroup",
              versions.ROCKETMQ_5_3: "updateAndCreateSubscriptionGroupList"}
# broker.log lines (`<time> INFO <thread> - <text>`): each admin handler says it was called, then the subscription-group
# manager logs each group it creates, on the same thread.
_HANDLER = re.compile(r" (?P<thread>\S+) - AdminBrokerProcessor#(?P<handler>\w+)")
_CREATED = re.compile(r" (?P<thread>\S+) - create new subscription group, "
                      r"SubscriptionGroupConfig\{groupName=(?P<group>[^,]+),")


@pytest.fixture(scope="module")
def namespace(kube: Kube) -> str:
    return kube.new_namespace("e2e-versions")


@pytest.fixture(scope="module")
def operator(kube: Kube, namespace: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ManagedProcess]:
    """One operator for the module: each policy names its own version's name server."""
    with operator_running(kube, namespace, tmp_path_factory.mktemp("operator"), "--sweep-interval", "3",
                          "--broker-timeout", "10", "--metrics-port", str(free_port())) as process:
        yield process


@pytest.fixture
def policies(kube: Kube, namespace: str, rocketmq_cluster: RocketMQCluster, operator: ManagedProcess) -> Policies:
    return Policies(kube, namespace, rocketmq_cluster, operator, converge=CONVERGE)


def test_a_policy_dead_letters_after_its_retries_and_mqadmin_reads_it_back(policies: Policies,
                                                                           rocketmq_cluster: RocketMQCluster) -> None:
    suffix = uuid.uuid4().hex[:8]
    name, group, topic = f"line-{suffix}", f"e2e_line_{suffix}", f"E2eLine_{suffix}"
    masters = {broker.name for broker in rocketmq_cluster.brokers}
    rocketmq_cluster.create_topic(topic, queues=1)
    policies.create(name, {"consumerGroup": group, "maxRetries": MAX_RETRIES, "retryQueues": 2, "backoff": BACKOFF})
    found = policies.wait_ready(name)
    ladders = {ladder["client"]: ladder for ladder in found["status"]["ladders"]}
    assert ladders["Remoting"]["retries"] == MAX_RETRIES
    assert ladders["gRPC"]["delaysMillis"] == [1000, 3000]

    shown = consumer_configs(rocketmq_cluster, group)
    assert set(shown) == masters, shown
    assert {(c["retryMaxTimes"], c["retryQueueNums"], c["groupRetryPolicy"]) for c in shown.values()} == {
        (str(MAX_RETRIES), "2", PRINTED_BACKOFF)}
    written_by: dict[str, str | None] = {}

    def logged() -> bool:  # the brokers' logs are written asynchronously
        written_by.update({broker.name: _written_by(broker, group) for broker in rocketmq_cluster.brokers})
        return None not in written_by.values()

    wait_until(logged, timeout=30.0, interval=0.5, what="the group's creation in every master's broker.log")
    assert written_by == dict.fromkeys(masters, WRITTEN_BY[rocketmq_cluster.version])

    journal = Journal()
    stored_on = asyncio.run(_fail_every_delivery(rocketmq_cluster, topic, group, journal))
    verdict = judge_ladder(journal, ladders["Remoting"]["delaysMillis"])
    assert verdict.passed, verdict.reasons
    assert {ladder.msg_id for ladder in verdict.messages} == set(stored_on)
    dead = journal.of(DeadLetter)
    assert {letter.reconsume_times for letter in dead} == {MAX_RETRIES + 1}
    assert {letter.msg_id: letter.broker for letter in dead} == stored_on
    assert set(stored_on.values()) == masters  # each master dead-letters by the policy's limit
    policies.delete(name)
    wait_until(lambda: policies.get(name) is None, timeout=CONVERGE, interval=0.5, process=policies.operator,
               what="finalized")


def _written_by(broker: Broker, group: str) -> str | None:
    """The admin handler that created `group` on the broker, per its broker.log; None before the log shows it."""
    log = broker.log_dir / "broker.log"
    handlers: dict[str, str] = {}  # thread -> the handler it ran last
    for line in log.read_text(errors="replace").splitlines() if log.exists() else []:
        if called := _HANDLER.search(line):
            handlers[called["thread"]] = called["handler"]
        elif (created := _CREATED.search(line)) and created["group"] == group:
            return handlers.get(created["thread"])
    return None


async def _fail_every_delivery(cluster: RocketMQCluster, topic: str, group: str, journal: Journal) -> dict[str, str]:
    """Send MESSAGES to `topic` and fail every delivery as `group` until each is dead-lettered; message id -> the
    master it was stored on. The consumer sends no limit of its own, so the group's retryMaxTimes decides."""
    async with ConnectionPool(request_timeout=15) as pool:
        producer = Producer(pool, [cluster.namesrv_addr])
        sent = [await send_once_routed(producer, Message(topic, f"always fails {index}".encode()), within=CONVERGE)
                for index in range(MESSAGES)]
        consumer = PullConsumer(pool, [cluster.namesrv_addr], group)
        await FailingConsumer(consumer, topic, journal).run(MESSAGES, within=CONVERGE)
    return {result.msg_id: result.attempts[-1].broker_name for result in sent}

