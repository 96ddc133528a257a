"""The operator as a process against a real kube-apiserver and real brokers of every bed version.

The operator runs with a token of the chart's ServiceAccount, bound to the chart's ClusterRole, so a permission
the chart lacks fails these tests. Each test applies RetryPolicy objects with the admin kubeconfig and judges by
what the brokers hold (read with our Admin) and what the status says. Waits are generous bounds, never timing
assertions.
"""

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest

from rocketmq_chaos.experiments import send_once_routed, topic_with_one_message
from rocketmq_chaos.grpc_probes import fail_every_delivery
from rocketmq_chaos.java_probes import ConsumerSettings
from rocketmq_chaos.journal import Journal, Receive
from rocketmq_chaos.probes import stored
from rocketmq_lab.bed import versions
from rocketmq_lab.bed.ports import free_port
from rocketmq_lab.bed.processes import ManagedProcess, wait_until
from rocketmq_lab.bed.rocketmq import RocketMQCluster
from rocketmq_lab.chaos import java_probes
from rocketmq_retry.remoting import (
    Admin,
    ConnectionPool,
    Message,
    MessageQueue,
    Producer,
    PullConsumer,
    SubscriptionGroupConfig,
    TopicConfig,
    dlq_topic,
    retry_topic,
)
from tests.conftest import Kube
from tests.e2e.running import Policies, chart_installed, java_consumer, metric, ready_condition, wait_sweeps
from tests.e2e.running import operator_process as operator_process_for
from tests.gitops import observed
from tests.messaging import next_message, until
from tests.official import consumer_configs

GROUP, VERSION, PLURAL = "rocketmq-retry.io", "v1alpha1", "retrypolicies"
SWEEP_INTERVAL = 3
CONVERGE = 90.0  # bound for anything the operator does; JVM brokers on a loaded 2-core machine can be slow
# The official Java consumer's run in the client's own time: its 2nd retry comes ~3 s (1 s + 2 s of the bed's ladder)
# after the first delivery; a retry topic the client did not route at its start would hold them ~30 s.
FIRST_RETRIES_SECONDS = 15.0


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def namespace(kube: Kube) -> str:
    return kube.new_namespace("e2e-rp")


@pytest.fixture(scope="module")
def metrics_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def operator_kubeconfig(kube: Kube, namespace: str) -> Iterator[Path]:
    with chart_installed(kube, namespace) as kubeconfig:
        yield kubeconfig


@pytest.fixture(scope="module")
def operator_process(operator_kubeconfig: Path, rocketmq_cluster: RocketMQCluster, namespace: str,
                     metrics_port: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ManagedProcess]:
    """`rocketmq-retry operator run` for the test namespace, with a short sweep interval."""
    process = operator_process_for(operator_kubeconfig, namespace, tmp_path_factory.mktemp("operator"),
                                   "--sweep-interval", str(SWEEP_INTERVAL), "--broker-timeout", "10",
                                   "--metrics-port", str(metrics_port))
    process.start()
    try:
        yield process
    finally:
        process.stop()


def _groups(cluster: RocketMQCluster, group: str) -> dict[str, SubscriptionGroupConfig | None]:
    """The group on every master, by broker name, read with our admin client."""

    async def read() -> dict[str, SubscriptionGroupConfig | None]:
        async with ConnectionPool(request_timeout=15) as pool:
            admin = Admin(pool, [cluster.namesrv_addr])
            return {b.name: await admin.get_subscription_group(b.addr, group) for b in cluster.brokers}

    return asyncio.run(read())


def _write_group(cluster: RocketMQCluster, broker_addr: str, config: SubscriptionGroupConfig) -> None:
    async def write() -> None:
        async with ConnectionPool(request_timeout=15) as pool:
            await Admin(pool, [cluster.namesrv_addr]).update_subscription_group(broker_addr, config)

    asyncio.run(write())


def _retry_fields(cluster: RocketMQCluster, group: str) -> set[tuple[int, int] | None]:
    """The distinct (retryMaxTimes, retryQueueNums) over all masters; None stands for a missing group."""
    return {None if g is None else (g.retry_max_times, g.retry_queue_nums) for g in _groups(cluster, group).values()}


@pytest.fixture
def policies(kube: Kube, namespace: str, rocketmq_cluster: RocketMQCluster,
             operator_process: ManagedProcess) -> Policies:
    return Policies(kube, namespace, rocketmq_cluster, operator_process, converge=CONVERGE)


def test_policy_reaches_every_master_and_survives_drift_update_and_reset(
        policies: Policies, rocketmq_cluster: RocketMQCluster) -> None:
    group = _unique("e2e_group").replace("-", "_")
    backoff = {"exponential": {"initial": "1s", "max": "1m", "multiplier": 3}}
    observed("created", policies.create("orders", {"consumerGroup": group, "maxRetries": 3, "retryQueues": 2,
                                                   "backoff": backoff}))

    found = policies.wait_ready("orders")
    observed("ready", found)
    assert _retry_fields(rocketmq_cluster, group) == {(3, 2)}
    if rocketmq_cluster.is5:
        for config in _groups(rocketmq_cluster, group).values():
            assert config is not None
            assert config.group_retry_policy == {
                "type": "EXPONENTIAL", "exponentialRetryPolicy": {"initial": 1000, "max": 60000, "multiplier": 3}}
    status = found["status"]
    assert {b["name"] for b in status["brokers"]} == {b.name for b in rocketmq_cluster.brokers}
    assert all(b["state"] == "Applied" and b["lastAppliedTime"] for b in status["brokers"])
    clients = {ladder["client"]: ladder for ladder in status["ladders"]}
    assert set(clients) == ({"Remoting", "gRPC"} if rocketmq_cluster.is5 else {"Remoting"})
    assert clients["Remoting"]["retries"] == 3
    if rocketmq_cluster.is5:
        assert clients["gRPC"]["delaysMillis"] == [1000, 3000, 9000]
    else:
        assert any(w.startswith("BackoffIgnoredOn4x") for w in status["warnings"])
    assert any(w.startswith("ClientOverridesMaxRetries") for w in status["warnings"])

    # Out-of-band edit on one master with the official tool: the sweep puts the policy's values back.
    first = rocketmq_cluster.brokers[0]
    edited = rocketmq_cluster.mqadmin("updateSubGroup", "-b", first.addr, "-g", group, "-r", "9", "-q", "1")
    assert f"create subscription group to {first.addr} success" in edited.stdout, edited.stdout + edited.stderr
    wait_until(lambda: _retry_fields(rocketmq_cluster, group) == {(3, 2)}, timeout=CONVERGE, interval=0.5,
               process=policies.operator, what="drift reverted")

    # A spec change is applied and observed.
    policies.patch_spec("orders", {"maxRetries": 5})
    found = policies.wait_ready("orders")
    assert found["metadata"]["generation"] == 2
    assert _retry_fields(rocketmq_cluster, group) == {(5, 2)}

    # Deletion with Reset restores RocketMQ's defaults of the owned fields and keeps the group.
    policies.patch_spec("orders", {"deletionPolicy": "Reset"})
    policies.wait_ready("orders")
    policies.delete("orders")
    wait_until(lambda: policies.get("orders") is None, timeout=CONVERGE, interval=0.5, process=policies.operator,
               what="finalized")
    assert _retry_fields(rocketmq_cluster, group) == {(16, 1)}
    if rocketmq_cluster.is5:
        for config in _groups(rocketmq_cluster, group).values():
            assert config is not None
            assert config.group_retry_policy == {"type": "CUSTOMIZED"}


def test_the_older_policy_wins_and_the_newer_takes_over_when_it_goes(
        policies: Policies, rocketmq_cluster: RocketMQCluster) -> None:
    group = _unique("e2e_conflict").replace("-", "_")
    policies.create("first", {"consumerGroup": group, "maxRetries": 4})
    policies.wait_ready("first")
    policies.create("second", {"consumerGroup": group, "maxRetries": 7})

    second = policies.wait(
        "second", "Ready=False reason Conflict",
        lambda found: ready_condition(found) == ("False", "Conflict") and found["status"].get("conflictWith"))
    assert second["status"]["conflictWith"] == f"{policies.namespace}/first"
    observed("conflict", second)
    assert f"{policies.namespace}/first" in next(
        c["message"] for c in second["status"]["conditions"] if c["type"] == "Ready")
    assert {b["state"] for b in second["status"]["brokers"]} == {"Unmanaged"}
    assert {f[0] for f in _retry_fields(rocketmq_cluster, group) if f} == {4}

    policies.delete("first")  # Retain: the group keeps 4 until the sweep gives it to "second"
    policies.wait_ready("second")
    assert "conflictWith" not in policies.get("second")["status"]  # type: ignore[index]
    wait_until(lambda: {f[0] for f in _retry_fields(rocketmq_cluster, group) if f} == {7}, timeout=CONVERGE,
               interval=0.5, process=policies.operator, what="the newer policy applied")
    policies.delete("second")


def test_paused_policy_writes_nothing(policies: Policies, rocketmq_cluster: RocketMQCluster) -> None:
    group = _unique("e2e_paused").replace("-", "_")
    name = "paused"
    body = {"consumerGroup": group, "maxRetries": 2}
    policies.api.create_namespaced_custom_object(GROUP, VERSION, policies.namespace, PLURAL, {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "RetryPolicy",
        "metadata": {"name": name, "annotations": {"rocketmq-retry.io/pause-reconciliation": "true"}},
        "spec": {"cluster": {"nameServers": rocketmq_cluster.namesrv_addr}, **body}})
    found = policies.wait(name, "Ready=Unknown reason ReconciliationPaused",
                          lambda found: ready_condition(found) == ("Unknown", "ReconciliationPaused"))
    assert found["status"]["synced"] == "0/2"
    observed("paused", found)
    assert _retry_fields(rocketmq_cluster, group) == {None}
    policies.api.patch_namespaced_custom_object(GROUP, VERSION, policies.namespace, PLURAL, name, {
        "metadata": {"annotations": {"rocketmq-retry.io/pause-reconciliation": None}}})
    policies.wait_ready(name)
    assert _retry_fields(rocketmq_cluster, group) == {(2, 1)}
    policies.delete(name)


@pytest.mark.rocketmq_versions(versions.ROCKETMQ_5)  # 4.x has no groupRetryPolicy
def test_an_odd_retry_policy_on_one_master_blocks_no_policy(policies: Policies, rocketmq_cluster: RocketMQCluster,
                                                           metrics_port: int) -> None:
    """Issue 13: a groupRetryPolicy another tool wrote is reported on the policy claiming its group, if any."""
    first = rocketmq_cluster.brokers[0]
    stranger, odd, plain = (_unique(p).replace("-", "_") for p in ("e2e_stranger", "e2e_odd", "e2e_plain"))
    empty_next = {"type": "CUSTOMIZED", "customizedRetryPolicy": {"next": []}}  # stored as sent; gRPC refuses it
    policies.create("plain", {"consumerGroup": plain, "maxRetries": 3,
                              "backoff": {"customized": {"delays": ["1s", "2s"]}}})
    policies.wait_ready("plain")
    for group in (stranger, odd):
        _write_group(rocketmq_cluster, first.addr, SubscriptionGroupConfig(group, group_retry_policy=empty_next))
    # An event pass may start from a master's read of the last 2 s (reconcile/snapshots.py), which would not have
    # the groups just written: two more fresh passes (over "plain"), so that one read after the writes.
    wait_sweeps(metrics_port, policies.operator, 2, timeout=CONVERGE)
    policies.create("odd", {"consumerGroup": odd, "maxRetries": 4})
    claimed, untouched = policies.wait_ready("odd"), policies.wait_ready("plain")
    assert [w for w in claimed["status"]["warnings"]
            if w.startswith("StoredGroupRetryPolicyOdd") and f"{first.name} (" in w], claimed["status"]["warnings"]
    assert not [w for w in untouched["status"]["warnings"] if w.startswith("StoredGroupRetryPolicyOdd")]
    assert _retry_fields(rocketmq_cluster, odd) == {(4, 1)}
    assert _retry_fields(rocketmq_cluster, plain) == {(3, 1)}
    kept = _groups(rocketmq_cluster, odd)[first.name]
    assert kept is not None
    assert kept.group_retry_policy == empty_next  # not the policy's field: left as the other tool wrote it
    stranger_now = _groups(rocketmq_cluster, stranger)[first.name]
    assert stranger_now is not None
    assert stranger_now.group_retry_policy == empty_next
    policies.delete("odd")
    policies.delete("plain")


def test_a_broker_restarted_with_an_empty_store_gets_the_config_back(
        policies: Policies, rocketmq_cluster: RocketMQCluster, kube: Kube) -> None:
    group = _unique("e2e_restart").replace("-", "_")
    policies.create("restart", {"consumerGroup": group, "maxRetries": 6})
    policies.wait_ready("restart")
    events = kubernetes.client.CoreV1Api(kube.api)
    wait_until(lambda: any(e.reason == "Synced" and e.involved_object.name == "restart"
                           for e in events.list_namespaced_event(policies.namespace).items),
               timeout=CONVERGE, interval=0.5, what="a Synced Event")

    restarted = rocketmq_cluster.brokers[-1]
    rocketmq_cluster.kill(restarted.name)
    rocketmq_cluster.restart(restarted.name, wipe_store=True)

    wait_until(lambda: _retry_fields(rocketmq_cluster, group) == {(6, 1)}, timeout=CONVERGE, interval=0.5,
               process=policies.operator, what="the config back on the restarted broker")
    found = policies.wait_ready("restart")
    applied = {b["name"]: b["lastAppliedTime"] for b in found["status"]["brokers"]}
    assert applied[restarted.name] >= applied[rocketmq_cluster.brokers[0].name]
    policies.delete("restart")


def test_metrics_count_the_synced_reconcile_and_the_ready_policy(policies: Policies, metrics_port: int) -> None:
    group = _unique("e2e_metrics").replace("-", "_")
    policies.create("metrics", {"consumerGroup": group, "maxRetries": 2})
    policies.wait_ready("metrics")

    # Ready=True is written by a Synced pass, from the event handler or the sweep, whichever came first.
    assert sum(metric(metrics_port, "rocketmq_retry_reconciles_total", trigger=trigger, result="Synced")
               for trigger in ("event", "sweep")) >= 1
    wait_until(lambda: metric(metrics_port, "rocketmq_retry_policies", condition="Ready", status="True") >= 1,
               timeout=CONVERGE, interval=0.5, process=policies.operator, what="counted Ready by the next sweep")
    policies.delete("metrics")


def test_managed_false_leaves_the_group_as_the_broker_has_it(policies: Policies, rocketmq_cluster: RocketMQCluster,
                                                              metrics_port: int) -> None:
    group = _unique("e2e_unmanaged").replace("-", "_")
    policies.create("unmanaged", {"consumerGroup": group, "maxRetries": 4})
    policies.wait_ready("unmanaged")
    policies.api.patch_namespaced_custom_object(GROUP, VERSION, policies.namespace, PLURAL, "unmanaged", {
        "metadata": {"annotations": {"rocketmq-retry.io/managed": "false"}}, "spec": {"maxRetries": 8}})
    observed("unmanaged", policies.wait("unmanaged", "Ready=Unknown reason Unmanaged",
                                        lambda found: ready_condition(found) == ("Unknown", "Unmanaged")))
    edited = _groups(rocketmq_cluster, group)[rocketmq_cluster.brokers[0].name]
    assert edited is not None
    edited.retry_max_times = 11
    _write_group(rocketmq_cluster, rocketmq_cluster.brokers[0].addr, edited)
    wait_sweeps(metrics_port, policies.operator, 3, timeout=CONVERGE)
    assert policies.operator.running
    assert _retry_fields(rocketmq_cluster, group) == {(11, 1), (4, 1)}  # neither the spec change nor a revert
    policies.delete("unmanaged")
    wait_until(lambda: policies.get("unmanaged") is None, timeout=CONVERGE, interval=0.5, process=policies.operator,
               what="finalized")
    assert _retry_fields(rocketmq_cluster, group) == {(11, 1), (4, 1)}


def test_status_is_not_rewritten_while_nothing_changes(policies: Policies, metrics_port: int) -> None:
    group = _unique("e2e_quiet").replace("-", "_")
    policies.create("quiet", {"consumerGroup": group, "maxRetries": 3})
    settled = policies.wait_ready("quiet")
    wait_sweeps(metrics_port, policies.operator, 4, timeout=CONVERGE)
    found = policies.get("quiet")
    assert found is not None
    # Any write, status or not, gives the object a new resourceVersion.
    assert found["metadata"]["resourceVersion"] == settled["metadata"]["resourceVersion"], \
        "a policy whose brokers did not change was written again"
    policies.delete("quiet")


def test_an_unreachable_name_server_is_a_condition_not_a_crash(policies: Policies,
                                                                rocketmq_cluster: RocketMQCluster) -> None:
    group = _unique("e2e_nowhere").replace("-", "_")
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "RetryPolicy", "metadata": {"name": "nowhere"},
            "spec": {"cluster": {"nameServers": f"127.0.0.1:{free_port()}"}, "consumerGroup": group,
                     "maxRetries": 2}}
    policies.api.create_namespaced_custom_object(GROUP, VERSION, policies.namespace, PLURAL, body)
    found = policies.wait("nowhere", "Ready=False reason BrokerUnreachable",
                          lambda found: ready_condition(found) == ("False", "BrokerUnreachable"))
    message = next(c["message"] for c in found["status"]["conditions"] if c["type"] == "Ready")
    assert "name server" in message
    assert {c["type"] for c in found["status"]["conditions"]} >= {"Ready", "Reconciling"}
    observed("broker-unreachable", found)
    policies.patch_spec("nowhere", {"cluster": {"nameServers": rocketmq_cluster.namesrv_addr}})
    policies.wait_ready("nowhere")
    assert _retry_fields(rocketmq_cluster, group) == {(2, 1)}
    policies.delete("nowhere")


def test_a_frozen_broker_is_named_and_the_policy_converges_when_it_thaws(
        policies: Policies, rocketmq_cluster: RocketMQCluster) -> None:
    group = _unique("e2e_frozen").replace("-", "_")
    frozen = rocketmq_cluster.brokers[0]
    rocketmq_cluster.pause(frozen.name)
    try:
        policies.create("frozen", {"consumerGroup": group, "maxRetries": 5})
        found = policies.wait("frozen", "Ready=False reason PartiallyApplied",
                              lambda found: ready_condition(found) == ("False", "PartiallyApplied"))
    finally:
        rocketmq_cluster.resume(frozen.name)
    brokers = {b["name"]: b for b in found["status"]["brokers"]}
    assert brokers[frozen.name]["state"] == "Failed"
    assert frozen.name in next(c["message"] for c in found["status"]["conditions"] if c["type"] == "Ready")
    assert found["status"]["synced"] == "1/2"
    observed("partially-applied", found)
    policies.wait_ready("frozen")
    assert _retry_fields(rocketmq_cluster, group) == {(5, 1)}
    policies.delete("frozen")


def test_a_policy_without_a_cluster_is_stalled_until_it_names_one(policies: Policies,
                                                                  rocketmq_cluster: RocketMQCluster) -> None:
    group = _unique("e2e_nocluster").replace("-", "_")
    policies.api.create_namespaced_custom_object(GROUP, VERSION, policies.namespace, PLURAL, {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "RetryPolicy", "metadata": {"name": "nocluster"},
        "spec": {"consumerGroup": group, "maxRetries": 2}})  # and the operator has no default cluster
    found = policies.wait("nocluster", "Ready=False reason InvalidSpec",
                          lambda found: ready_condition(found) == ("False", "InvalidSpec"))
    assert "spec.cluster" in next(c["message"] for c in found["status"]["conditions"] if c["type"] == "Ready")
    assert {(c["type"], c["status"]) for c in found["status"]["conditions"]} >= {("Stalled", "True")}
    observed("invalid-spec", found)
    policies.patch_spec("nocluster", {"cluster": {"nameServers": rocketmq_cluster.namesrv_addr}})
    found = policies.wait_ready("nocluster")
    assert "Stalled" not in {c["type"] for c in found["status"]["conditions"]}
    policies.delete("nocluster")


def test_the_official_tools_read_the_applied_config_on_every_master(policies: Policies,
                                                                     rocketmq_cluster: RocketMQCluster) -> None:
    group = _unique("e2e_official").replace("-", "_")
    policies.create("official", {"consumerGroup": group, "maxRetries": 7, "retryQueues": 3})
    policies.wait_ready("official")
    per_broker = consumer_configs(rocketmq_cluster, group)
    assert set(per_broker) == {b.name for b in rocketmq_cluster.brokers}, per_broker
    assert {(c["retryMaxTimes"], c["retryQueueNums"]) for c in per_broker.values()} == {("7", "3")}
    policies.delete("official")


def test_the_status_ladder_is_what_the_broker_really_does(policies: Policies,
                                                           rocketmq_cluster: RocketMQCluster) -> None:
    """A live send-back run on the compressed ladder: each redelivery on time, then the DLQ after maxRetries."""
    group = _unique("e2e_ladder").replace("-", "_")
    policies.create("ladder", {"consumerGroup": group, "maxRetries": 3})
    found = policies.wait_ready("ladder")
    ladder = next(entry for entry in found["status"]["ladders"] if entry["client"] == "Remoting")
    observed = asyncio.run(_live_ladder(rocketmq_cluster, group, retries=ladder["retries"]))
    assert len(observed) == ladder["retries"] == 3
    for step, (expected, seen) in enumerate(zip(ladder["delaysMillis"], observed, strict=True), start=1):
        assert abs(seen - expected) <= max(1000, 0.05 * expected), f"retry {step}: {seen} ms, ladder {expected} ms"
    policies.delete("ladder")


async def _live_ladder(cluster: RocketMQCluster, group: str, *, retries: int) -> list[int]:
    """Fail one message every time; the delay of each redelivery in ms. Asserts it dead-letters after `retries`."""
    async with ConnectionPool(request_timeout=15) as pool:
        admin = Admin(pool, [cluster.namesrv_addr])
        topic = _unique("e2e_ladder_topic").replace("-", "_")
        for broker in cluster.brokers:
            await admin.create_or_update_topic(broker.addr, TopicConfig(topic, read_queue_nums=1, write_queue_nums=1))
        producer = Producer(pool, [cluster.namesrv_addr])
        sent = await send_once_routed(producer, Message(topic, b"always fails"), within=CONVERGE)
        consumer = PullConsumer(pool, [cluster.namesrv_addr], group)  # no client limit: the group's retryMaxTimes
        queue, message = await next_message(consumer, topic, {}, within=CONVERGE)
        delays: list[int] = []
        offsets: dict[MessageQueue, int] = {}
        for _ in range(retries):
            await consumer.send_back(queue, message)
            handed_back = time.time() * 1000
            queue, message = await next_message(consumer, retry_topic(group), offsets, within=CONVERGE)
            assert message.msg_id == sent.msg_id
            delays.append(int(message.store_timestamp - handed_back))
        await consumer.send_back(queue, message)
        _, dead = await next_message(consumer, dlq_topic(group), {}, within=CONVERGE)
        assert (dead.msg_id, dead.reconsume_times) == (sent.msg_id, retries + 1)
        return delays


def test_an_operator_killed_mid_reconcile_loses_no_policy(policies: Policies,
                                                          rocketmq_cluster: RocketMQCluster) -> None:
    """SIGKILL the operator while it works through a burst of policies; its successor finishes every one.

    150 policies: the successor starts by listing them all, more than kopf may work on at once if it were given a
    worker limit (which, with an index, deadlocked kopf's start; see controller/handlers.py)."""
    groups = {f"burst-{index}": _unique(f"e2e_burst{index}").replace("-", "_") for index in range(150)}
    for name, group in groups.items():
        policies.create(name, {"consumerGroup": group, "maxRetries": 2})
    # Killed once the first is Ready: some passes are done, some under way, most have not started.
    wait_until(lambda: any(ready_condition(found) == ("True", "Synced") for found in policies.list()), timeout=CONVERGE,
               interval=0.05, process=policies.operator, what="the first of the burst Ready")
    policies.operator.kill()
    policies.operator.start()
    for name in groups:
        found = policies.wait_ready(name)
        assert found["status"]["observedGeneration"] == 1
    assert {group: _retry_fields(rocketmq_cluster, group) for group in groups.values()} == {
        group: {(2, 1)} for group in groups.values()}
    for name in groups:
        policies.delete(name)


def _consumer_lines(found: dict[str, Any]) -> list[tuple[str, int | None, int]]:
    return sorted((line["kind"], line.get("deadLetterAfterRetries"), line["instances"])
                  for line in found.get("status", {}).get("consumers") or [])


def test_status_shows_the_limits_live_official_consumers_really_get(
        policies: Policies, rocketmq_cluster: RocketMQCluster, tmp_path: Path) -> None:
    """Four official Java push consumers of one group (default, setMaxReconsumeTimes(5), orderly, broadcasting)
    under maxRetries 3: status lists each with the limit it gets, and the assumed view returns when they stop."""
    name, group, topic = _unique("live"), _unique("live_group").replace("-", "_"), _unique("LiveTopic")
    rocketmq_cluster.create_topic(topic, queues=2)
    policies.create(name, {"consumerGroup": group, "maxRetries": 3})
    policies.wait_ready(name)

    flags = {"default": [], "five": ["--max-reconsume-times", "5"], "orderly": ["--orderly"],
             "broadcast": ["--broadcast"]}
    consumers = [java_consumer(rocketmq_cluster, tmp_path / mode, topic, group, *extra)
                 for mode, extra in flags.items()]
    expected = [("Broadcast", 0, 1), ("RemotingConcurrent", 5, 1), ("RemotingConcurrent", 16, 1),
                ("RemotingOrderly", None, 1)]
    seen: dict[str, Any] = {}

    def listed() -> bool:
        seen["last"] = policies.get(name) or {}
        return _consumer_lines(seen["last"]) == expected

    try:
        for consumer in consumers:
            consumer.start()
        # Cold JVMs start slowly on the 2-core machine; a client is seen at the first sweep after its heartbeat.
        wait_until(listed, timeout=java_probes.START_ALLOWANCE, interval=1.0, process=policies.operator,
                   what=f"the four consumers in status (last: {seen.get('last', {}).get('status')})")
        status = seen["last"]["status"]
        conditions = {c["type"]: c for c in status["conditions"]}
        differ = conditions["EffectiveRetriesDiffer"]
        assert (differ["status"], differ["reason"]) == ("True", "ClientLimits")
        assert "1 instance(s) after 5, 1 instance(s) after 16, 1 instance(s) never" in differ["message"]
        assert conditions["RetriesNotApplicable"]["status"] == "True"
        assert not any(w.startswith("ClientOverridesMaxRetries") for w in status["warnings"])
        lines = {line["kind"] + str(line.get("deadLetterAfterRetries")): line for line in status["consumers"]}
        assert lines["RemotingOrderlyNone"]["inPlaceEveryMillis"] == 1000
        assert all(line["limitFrom"] == "Client" for line in status["consumers"])
        assert all(len(line["clients"]) == 1 for line in status["consumers"])
    finally:
        for consumer in consumers:
            consumer.stop()

    def assumed(found: dict[str, Any]) -> bool:
        status = found.get("status", {})
        return (not status.get("consumers") and "EffectiveRetriesDiffer" not in
                {c["type"] for c in status.get("conditions", [])}
                and any(w.startswith("ClientOverridesMaxRetries: assumed") for w in status.get("warnings", [])))

    policies.wait(name, "the assumed view once the consumers stopped", assumed)
    policies.delete(name)


@pytest.mark.rocketmq_versions(versions.ROCKETMQ_5)
def test_a_grpc_consumer_through_the_proxy_is_listed_as_following_the_group(
        policies: Policies, proxied_cluster: RocketMQCluster) -> None:
    """A proxy in cluster mode keeps its gRPC clients to itself: with the proxy named in spec.cluster.proxies, the
    official gRPC push consumer is listed as following the group, and the assumed view returns when it stops."""
    assert proxied_cluster.proxy_endpoint is not None
    name, group, topic = _unique("grpc"), _unique("grpc_group").replace("-", "_"), _unique("GrpcTopic")
    proxied_cluster.create_topic(topic, queues=1)
    policies.create(name, {"cluster": {"nameServers": proxied_cluster.namesrv_addr,
                                       "proxies": proxied_cluster.proxy_remoting_addr},
                           "consumerGroup": group, "maxRetries": 3})
    policies.wait_ready(name)

    stop = threading.Event()
    consumer = threading.Thread(target=fail_every_delivery, args=(proxied_cluster.proxy_endpoint, topic, group,
                                                                  Journal()),
                                kwargs={"duration": CONVERGE, "stop": stop}, name="grpc-consumer")
    consumer.start()
    try:
        found = policies.wait(name, "the gRPC consumer in status",
                              lambda found: _consumer_lines(found) == [("gRPC", 3, 1)])
    finally:
        stop.set()
        consumer.join()
    status = found["status"]
    [line] = status["consumers"]
    assert line["limitFrom"] == "Group"
    assert next(c for c in status["conditions"] if c["type"] == "EffectiveRetriesDiffer")["status"] == "False"
    assert not any(w.startswith("ClientOverridesMaxRetries") for w in status["warnings"])

    policies.wait(name, "no live consumer once the gRPC consumer stopped",
                  lambda found: not found.get("status", {}).get("consumers"))
    policies.delete(name)


def test_raising_retry_queues_grows_the_retry_topic_first_so_no_retry_is_lost(
        policies: Policies, rocketmq_cluster: RocketMQCluster, tmp_path: Path) -> None:
    """rocketmq#3953: a group whose retryQueueNums exceeds its retry topic's queues sends retries to queues nobody
    reads. A group with a one-queue retry topic raised to retryQueues 3: the operator grows the topic on every master
    first, and a failing ladder of 30 messages with the official Java consumer dead-letters each exactly once."""
    name, group, topic = _unique("grow"), _unique("grow_group").replace("-", "_"), _unique("GrowTopic")
    rocketmq_cluster.create_topic(topic, queues=2)

    async def one_queue_retry_topic() -> None:
        async with ConnectionPool(request_timeout=15) as pool:
            admin = Admin(pool, [rocketmq_cluster.namesrv_addr])
            for broker in rocketmq_cluster.brokers:
                await admin.update_subscription_group(
                    broker.addr, SubscriptionGroupConfig(group, retry_queue_nums=1, retry_max_times=2))
                await admin.create_or_update_topic(broker.addr, TopicConfig(retry_topic(group), read_queue_nums=1,
                                                                            write_queue_nums=1))

    asyncio.run(one_queue_retry_topic())
    policies.create(name, {"consumerGroup": group, "maxRetries": 2, "retryQueues": 3})
    policies.wait_ready(name)
    assert _retry_topic_queues(rocketmq_cluster, group) == {(3, 3)}
    assert _retry_fields(rocketmq_cluster, group) == {(2, 3)}

    consumer = java_consumer(rocketmq_cluster, tmp_path / "ladder", topic, group, "--max-reconsume-times", "2")
    consumer.start()
    try:
        sent = asyncio.run(_send(rocketmq_cluster, topic, 30))
        wait_until(lambda: len(_dead_letters(rocketmq_cluster, group)) >= len(sent),
                   timeout=java_probes.START_ALLOWANCE, interval=1.0, process=consumer, what="30 dead letters")
    finally:
        consumer.stop()
    dead = _dead_letters(rocketmq_cluster, group)
    assert sorted(dead) == sorted(sent)  # each once: none lost in an unread queue, none twice
    policies.delete(name)


def _retry_topic_queues(cluster: RocketMQCluster, group: str) -> set[tuple[int, int] | None]:
    """The distinct (read, write) queue counts of the group's retry topic over all masters; None: missing."""

    async def read() -> set[tuple[int, int] | None]:
        async with ConnectionPool(request_timeout=15) as pool:
            admin = Admin(pool, [cluster.namesrv_addr])
            found = set()
            for broker in cluster.brokers:
                topic = (await admin.get_all_topic_configs(broker.addr)).get(retry_topic(group))
                found.add(None if topic is None else (topic.read_queue_nums, topic.write_queue_nums))
            return found

    return asyncio.run(read())


async def _send(cluster: RocketMQCluster, topic: str, count: int) -> list[str]:
    async with ConnectionPool(request_timeout=15) as pool:
        producer = Producer(pool, [cluster.namesrv_addr])
        return [(await send_once_routed(producer, Message(topic, f"fails {index}".encode()), within=CONVERGE)).msg_id
                for index in range(count)]


def _dead_letters(cluster: RocketMQCluster, group: str) -> list[str]:
    """The message ids in the group's DLQ on every master (read from the start, committing nothing)."""

    async def read() -> list[str]:
        async with ConnectionPool(request_timeout=15) as pool:
            consumer = PullConsumer(pool, [cluster.namesrv_addr], f"{group}_reader")
            # None before the first dead letter: the broker creates the DLQ topic with it.
            return [message.msg_id async for _, message in stored(consumer, dlq_topic(group))]

    return asyncio.run(read())


def test_a_new_groups_first_retries_follow_the_ladder_for_the_officialjava_consumer(
        policies: Policies, rocketmq_cluster: RocketMQCluster) -> None:
    """Without the operator, a new group's retry topic is made by the broker at its first consumer's heartbeat, after
    the client looked up its routes, so its first retries wait for the client's next route poll (30 s). The policy
    makes the retry topic, so the client routes it from its start and the first retries come on the ladder."""
    name, group = _unique("first"), _unique("first_group").replace("-", "_")
    policies.create(name, {"consumerGroup": group, "maxRetries": 2})
    policies.wait_ready(name)
    assert _retry_topic_queues(rocketmq_cluster, group) == {(1, 1)}
    topic = asyncio.run(topic_with_one_message(rocketmq_cluster))

    journal = Journal()
    asyncio.run(java_probes.CompiledJavaProbes.of(rocketmq_cluster).consume(journal, topic, group, ConsumerSettings(),
                                                                          duration=FIRST_RETRIES_SECONDS))
    deliveries: list[Receive] = sorted(journal.of(Receive), key=lambda receive: receive.t)
    assert [receive.reconsume_times for receive in deliveries][:3] == [0, 1, 2], deliveries
    assert {receive.topic for receive in deliveries[1:3]} == {retry_topic(group)}
    policies.delete(name)


def test_the_retry_backlog_in_status_is_what_mqadmin_shows(policies: Policies,
                                                           rocketmq_cluster: RocketMQCluster) -> None:
    """Five failed messages handed back, one retry then consumed and committed: four retries wait, on the masters
    `mqadmin consumerProgress` names, and status.retryBacklog comes to say the same."""
    name, group = _unique("backlog"), _unique("backlog_group").replace("-", "_")
    policies.create(name, {"consumerGroup": group, "maxRetries": 3})
    policies.wait_ready(name)
    asyncio.run(_hand_back_and_consume_one(rocketmq_cluster, group, 5))

    shown = _mqadmin_retry_diffs(rocketmq_cluster, group)
    assert sum(shown.values()) == 4, shown

    def as_mqadmin(found: dict[str, Any]) -> bool:
        entries = found.get("status", {}).get("retryBacklog", {}).get("brokers", [])
        return {entry["name"]: entry["messages"] for entry in entries if entry["messages"]} == shown

    found = policies.wait(name, f"the retry backlog mqadmin shows, {shown}", as_mqadmin)
    assert found["status"]["retryBacklog"]["messages"] == 4
    policies.delete(name)


async def _hand_back_and_consume_one(cluster: RocketMQCluster, group: str, count: int) -> None:
    """Send `count` messages, fail each once (send-back), wait until every retry is stored, then consume one of them
    and commit it."""
    topic = _unique("e2e_backlog_topic").replace("-", "_")
    await asyncio.to_thread(cluster.create_topic, topic, queues=1)
    async with ConnectionPool(request_timeout=15) as pool:
        producer = Producer(pool, [cluster.namesrv_addr])
        for index in range(count):
            await send_once_routed(producer, Message(topic, f"backlog {index}".encode()), within=CONVERGE)
        consumer = PullConsumer(pool, [cluster.namesrv_addr], group)
        offsets: dict[MessageQueue, int] = {}
        for _ in range(count):
            queue, message = await next_message(consumer, topic, offsets, within=CONVERGE)
            await consumer.send_back(queue, message)
        retry_queues = await consumer.queues(retry_topic(group))

        async def all_stored() -> bool:
            return sum([await consumer.max_offset(queue) for queue in retry_queues]) == count

        await until(all_stored, f"{count} retries stored", within=CONVERGE)
        retried, _ = await next_message(consumer, retry_topic(group), {}, within=CONVERGE)
        # An offset on every retry queue: mqadmin lists only the topics a group has committed offsets in.
        for queue in retry_queues:
            await consumer.commit(queue, 1 if queue == retried else 0)


def _mqadmin_retry_diffs(cluster: RocketMQCluster, group: str) -> dict[str, int]:
    """Broker name -> the #Diff `mqadmin consumerProgress -g` prints for the group's retry topic, summed over its
    queues (columns: topic, broker, queue, broker offset, consumer offset, diff, …)."""
    shown = cluster.mqadmin("consumerProgress", "-g", group)
    diffs: dict[str, int] = {}
    for line in shown.stdout.splitlines():
        fields = line.split()
        if fields and fields[0] == retry_topic(group):
            diffs[fields[1]] = diffs.get(fields[1], 0) + int(fields[5])
    assert diffs, shown.stdout + shown.stderr
    return {broker: diff for broker, diff in diffs.items() if diff}

