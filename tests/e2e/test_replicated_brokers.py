"""RetryPolicy on brokers as production runs them: a 4.9.7 master with a slave per broker name, and 5.5.0 in
controller mode (a controller elects one of two replicas per broker name).

The operator runs with the chart's ServiceAccount against a real API server, as in test_operator_retrypolicy.py. What
is judged: every slave reports the policy's config once it has copied its master (slaves copy every 10 s, and the
operator never writes to one); a master SIGKILLed in the middle of a retry ladder loses no failing message (the
verdict counts what RocketMQ repeated, skipped or dead-lettered twice); and, in controller mode, the replica elected
after its master's SIGKILL is reported as the master, holding the config, shortly after the election. The times
measured are printed, not asserted: the bounds here are generous, the numbers go to the README.
"""

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rocketmq_chaos.experiments import JavaRetryLadder, RetryLadder, java_retry_ladder, retry_ladder
from rocketmq_chaos.journal import Journal
from rocketmq_chaos.verdicts import LadderVerdict
from rocketmq_lab.bed import versions
from rocketmq_lab.bed.processes import ManagedProcess, wait_until
from rocketmq_lab.bed.rocketmq import RocketMQCluster
from rocketmq_lab.bed.topology import Topology
from rocketmq_lab.chaos.injector import LocalInjector
from rocketmq_lab.chaos.java_probes import CompiledJavaProbes
from rocketmq_lab.chaos.runner import masters_now
from rocketmq_retry.domain.durations import parse_delay_levels
from rocketmq_retry.domain.ladder import remoting_ladder
from rocketmq_retry.remoting import Admin, ConnectionPool
from tests.conftest import Kube
from tests.e2e.running import Policies, operator_running

CONVERGE = 90.0
COPY_PERIOD_S = 10.0  # SlaveSynchronize.syncAll's period in 4.x and 5.x (ReplicasManager in controller mode)
BEDS = [pytest.param((versions.ROCKETMQ_4, Topology.ASYNC_MASTER), id="4.9.7-async-master"),
        pytest.param((versions.ROCKETMQ_5, Topology.CONTROLLER), id="5.5.0-controller")]


def _unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module", params=BEDS)
def bed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RocketMQCluster]:
    version, topology = request.param
    home = tmp_path_factory.mktemp(f"rocketmq-{version}-{topology}")
    with RocketMQCluster(version, home, topology=topology).running() as cluster:
        yield cluster


@pytest.fixture(scope="module")
def namespace(kube: Kube, bed: RocketMQCluster) -> str:
    return kube.new_namespace("e2e-replicas")


@pytest.fixture(scope="module")
def operator(kube: Kube, namespace: str, bed: RocketMQCluster,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[ManagedProcess]:
    with operator_running(kube, namespace, tmp_path_factory.mktemp("operator"), "--broker-timeout", "10") as process:
        yield process


@pytest.fixture
def policies(kube: Kube, namespace: str, bed: RocketMQCluster, operator: ManagedProcess) -> Policies:
    return Policies(kube, namespace, bed, operator, converge=CONVERGE)


def _slaves(found: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every slave the status lists, by address."""
    return {slave["address"]: slave for broker in found.get("status", {}).get("brokers", [])
            for slave in broker.get("slaves", [])}


def _every_slave_holds(bed: RocketMQCluster, found: dict[str, Any]) -> bool:
    masters = bed.registered_masters()
    slaves = {broker.addr for broker in bed.nodes if broker.addr not in masters.values() and broker.process.running}
    listed = _slaves(found)
    return set(listed) == slaves and all(slave.get("holdsConfig") is True for slave in listed.values())


def _stored_group(broker_home: Path, group: str) -> dict[str, Any] | None:
    """The group as a broker persisted it in its store (config/subscriptionGroup.json), read from disk: what a slave
    holds whoever asks, independent of the operator's own reads."""
    stored = broker_home / "store" / "config" / "subscriptionGroup.json"
    if not stored.exists():
        return None
    table: dict[str, Any] = json.loads(stored.read_text())["subscriptionGroupTable"]
    return table.get(group)


def test_every_slave_reports_the_policy_once_it_copied_its_master(policies: Policies, bed: RocketMQCluster) -> None:
    group = _unique("e2e_replicas")
    policies.create("copied", {"consumerGroup": group, "maxRetries": 2, "retryQueues": 2})
    policies.wait_ready("copied")
    synced_at = time.monotonic()

    found = policies.wait("copied", "every slave holding the config", lambda f: _every_slave_holds(bed, f))
    print(f"\n[{bed.version} {bed.topology}] every slave reported holding the config "
          f"{time.monotonic() - synced_at:.1f} s after Synced")

    masters = set(bed.registered_masters().values())
    for node in bed.nodes:
        stored = _stored_group(node.home, group)
        assert stored is not None, f"{node.name} has not persisted {group}"
        assert (stored["retryMaxTimes"], stored["retryQueueNums"]) == (2, 2), node.name
    assert {b["address"] for b in found["status"]["brokers"]} == masters
    assert len(_slaves(found)) == len(bed.nodes) - len(masters)


# The first master dies once every failing message was retried and comes back after DOWN_FOR_S: long enough for
# clients to turn to its slave (reads) and to the other master (retries sent back), and, in controller mode, for its
# replica to be elected.
DOWN_FOR_S = 15.0


def _judged_after_a_kill(bed: RocketMQCluster, client: str, journal: Journal, verdict: LadderVerdict,
                         messages: int) -> None:
    print(f"\n[{bed.version} {bed.topology}] {client}: master killed mid-ladder: {len(verdict.messages)} messages, "
          f"lost {len(verdict.lost)}, dead-lettered twice {verdict.extra_dead_letters}, "
          f"retries stored twice {verdict.repeated_retries}, read twice {verdict.reread_retries}, "
          f"skipped {verdict.skipped_retries}, past the limit {verdict.beyond_limit}", *verdict.explanations,
          sep="\n  ")
    assert [fault.action for fault in journal.events if fault.kind == "fault"] == ["kill", "restart"]
    assert len(verdict.messages) == messages
    assert verdict.passed, verdict.reasons
    assert verdict.lost == ()


def test_a_master_killed_mid_ladder_loses_no_failing_message(policies: Policies, bed: RocketMQCluster) -> None:
    """Our consumer, in the operator's group: its hand-back to a dead master fails, and it reads that retry again."""
    group = _unique("e2e_ladder")
    policies.create("ladder", {"consumerGroup": group, "maxRetries": 3})
    policies.wait_ready("ladder")
    expected = remoting_ladder(parse_delay_levels(bed.delay_levels), 3).delays_ms
    journal = Journal()

    async def run() -> LadderVerdict:
        plan = RetryLadder(expected, messages=4, group=group, kill_mid_ladder=True, down_for=DOWN_FOR_S,
                           within=240.0)
        return await retry_ladder(await masters_now(bed), journal, plan, LocalInjector(bed, journal))

    _judged_after_a_kill(bed, "our consumer", journal, asyncio.run(run()), 4)


def test_the_official_consumer_loses_no_failing_message_when_a_master_dies_mid_ladder(bed: RocketMQCluster) -> None:
    """The official push consumer (its own limit of 3 retries): with the master gone it pulls from the slave and sends
    retries back through the other master (DefaultMQPushConsumerImpl.sendMessageBack's fallback)."""
    expected = remoting_ladder(parse_delay_levels(bed.delay_levels), 3).delays_ms
    journal = Journal()

    async def run() -> LadderVerdict:
        plan = JavaRetryLadder(expected, kill_mid_ladder=True, down_for=DOWN_FOR_S, within=180.0)
        return await java_retry_ladder(await masters_now(bed), journal, plan, CompiledJavaProbes.of(bed),
                                       LocalInjector(bed, journal))

    _judged_after_a_kill(bed, "official consumer", journal, asyncio.run(run()), 3)


def _held(bed: RocketMQCluster, addr: str, group: str) -> bool:
    async def read() -> bool:
        async with ConnectionPool(request_timeout=10) as pool:
            return group in await Admin(pool, [bed.namesrv_addr]).get_all_subscription_groups(addr)

    return asyncio.run(read())


@pytest.mark.parametrize("bed", [BEDS[1]], indirect=True)
def test_after_an_election_the_new_master_is_reported_holding_the_config(policies: Policies,
                                                                         bed: RocketMQCluster) -> None:
    """The master dies as soon as the policy is Ready: its replica copies every 10 s, so it most likely has not
    copied the group yet, and the operator must write it to the new master. Either way the new master must be
    reported Applied, and hold the config."""
    bed.wait_in_sync("broker-a")  # the controller elects only among the replicas in sync
    group = _unique("e2e_elected")
    policies.create("elected", {"consumerGroup": group, "maxRetries": 4, "retryQueues": 3})
    policies.wait_ready("elected")
    victim = bed.master("broker-a")
    assert victim is not None
    successor = next(node for node in bed.replicas("broker-a") if node is not victim)

    killed_at = time.monotonic()
    bed.kill(victim.name)
    wait_until(lambda: bed.registered_masters().get("broker-a") == successor.addr, timeout=CONVERGE, interval=0.05,
               what=f"{successor.name} elected master of broker-a")
    elected_at = time.monotonic()
    copied = _held(bed, successor.addr, group)

    def reported(found: dict[str, Any]) -> bool:
        brokers = {b["name"]: b for b in found.get("status", {}).get("brokers", [])}
        entry = brokers.get("broker-a", {})
        return entry.get("address") == successor.addr and entry.get("state") == "Applied"

    found = policies.wait("elected", "the elected master reported Applied", reported)
    verified_at = time.monotonic()
    print(f"\n[{bed.version} {bed.topology}] SIGKILL to election {elected_at - killed_at:.1f} s; the new master "
          f"{'had' if copied else 'had not'} copied the group; election to the config verified on it "
          f"{verified_at - elected_at:.1f} s")
    stored = _stored_group(successor.home, group)
    assert stored is not None
    assert (stored["retryMaxTimes"], stored["retryQueueNums"]) == (4, 3)
    assert found["status"]["synced"] == "2/2"

    bed.restart(victim.name)  # it rejoins as a slave of the new master, and is reported as one
    policies.wait("elected", "the old master reported as a slave holding the config",
                  lambda f: _slaves(f).get(victim.addr, {}).get("holdsConfig") is True)
