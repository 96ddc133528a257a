"""The SYNC_MASTER experiments of `chaos run`: which part they hurt, with which plan, and on which beds they refuse to
run. Nothing starts: the plan is caught where it would run (tests/integration/test_chaos_sync_master.py runs them)."""

from pathlib import Path
from typing import Any

import pytest

from rocketmq_chaos.experiments import FaultUnderLoad
from rocketmq_chaos.journal import Journal
from rocketmq_lab.bed.processes import ManagedProcess
from rocketmq_lab.bed.rocketmq import Broker, RocketMQCluster
from rocketmq_lab.bed.topology import Topology, plan_nodes
from rocketmq_lab.chaos import runner


def _bed(topology: Topology, tmp_path: Path) -> RocketMQCluster:
    """A bed laid out as `topology` lays it out, never started."""
    nodes = [Broker(plan.part, 10911 + 4 * index, tmp_path / plan.part,
                    ManagedProcess(plan.part, ["true"], log_path=tmp_path / f"{plan.part}.log"), plan.broker_name,
                    plan.broker_id)
             for index, plan in enumerate(plan_nodes(topology, 2, rocketmq5=False))]
    return RocketMQCluster("4.9.7", tmp_path / "rocketmq", topology=topology, nodes=nodes)


@pytest.fixture
def plans(monkeypatch: pytest.MonkeyPatch) -> list[FaultUnderLoad]:
    """The plans the named experiments hand to the local runner."""
    caught: list[FaultUnderLoad] = []

    async def catch(_cluster: RocketMQCluster, _journal: Journal, plan: FaultUnderLoad) -> Any:
        caught.append(plan)

    monkeypatch.setattr(runner, "local_fault_under_load", catch)
    return caught


async def _run(name: str, cluster: RocketMQCluster, **options: Any) -> None:
    experiment, defaults = runner.EXPERIMENTS[name]
    await experiment(cluster, Journal(), {**defaults, **options})


async def test_the_slave_kills_hurt_the_last_masters_slave_and_only_the_re_sends_may_duplicate(
        plans: list[FaultUnderLoad], tmp_path: Path) -> None:
    bed = _bed(Topology.SYNC_MASTER, tmp_path)
    await _run("sync-master-slave-kill", bed)
    await _run("sync-master-slave-kill-retry-another-broker", bed, client="java")
    plain, resending = plans
    assert [plain.target(bed), resending.target(bed)] == ["broker-b-slave", "broker-b-slave"]
    assert (plain.retry_another_broker_when_not_store_ok, plain.max_duplicates) == (False, 0)
    assert (resending.retry_another_broker_when_not_store_ok, resending.max_duplicates) == (True, None)
    assert resending.client == "java"
    assert plain.allow_failed_but_arrived
    assert resending.allow_failed_but_arrived


async def test_the_master_kill_hurts_the_last_master_and_a_victim_can_be_chosen(plans: list[FaultUnderLoad],
                                                                                tmp_path: Path) -> None:
    bed = _bed(Topology.SYNC_MASTER, tmp_path)
    await _run("sync-master-master-kill", bed)
    await _run("sync-master-slave-kill", bed, victim="broker-a-slave")
    assert [plan.target(bed) for plan in plans] == ["broker-b", "broker-a-slave"]
    assert not plans[0].allow_failed_but_arrived


@pytest.mark.parametrize("topology", [Topology.MASTERS, Topology.ASYNC_MASTER])
@pytest.mark.parametrize("name", ["sync-master-slave-kill", "sync-master-master-kill"])
async def test_they_refuse_a_bed_whose_masters_do_not_wait_for_a_slave(plans: list[FaultUnderLoad], tmp_path: Path,
                                                                      topology: Topology, name: str) -> None:
    with pytest.raises(ValueError, match=r"needs a SYNC_MASTER bed.*--topology sync-master"):
        await _run(name, _bed(topology, tmp_path))
    assert plans == []
