"""Chaos on a 4.9.7 SYNC_MASTER bed (each master waits for its slave's copy), run as the named experiments run.

What RocketMQ does here (apache/rocketmq 4.9.7): a master whose slave is gone (its HA connection closed) stores every
message and answers SLAVE_NOT_AVAILABLE at once (CommitLog.submitReplicaRequest); a send already waiting on the slave
when it dies waits out slaveTimeout (3 s, HAService.GroupTransferService), as long as the client's default send
timeout. Without retryAnotherBrokerWhenNotStoreOK the client returns the status as it is; with it, it sends the
message again to another broker (DefaultMQProducerImpl.sendDefaultImpl, selectOneMessageQueue avoiding the last
broker), which stores a second copy. Each journal is written to the test's tmp_path.
"""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rocketmq_chaos.experiments import Client
from rocketmq_chaos.journal import Fault, Journal, Send
from rocketmq_chaos.verdicts import DeliveryVerdict
from rocketmq_lab.bed import versions
from rocketmq_lab.bed.rocketmq import RocketMQCluster
from rocketmq_lab.bed.topology import Topology
from rocketmq_lab.chaos.runner import EXPERIMENTS

SHORT = {"rate": 100, "duration": 8, "fault_at": 2}
NOT_AVAILABLE = "SLAVE_NOT_AVAILABLE"
SETTLED_S = 1.0  # after the kill's stamp, the master has seen its slave's connection close
CLIENTS: list[Client] = ["python", "java"]


@pytest.fixture(scope="module")
def sync_master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RocketMQCluster]:
    """Two broker names, each a SYNC_MASTER and its slave, on 4.9.7 (where a SYNC_MASTER needs no further setting)."""
    with RocketMQCluster(versions.ROCKETMQ_4, tmp_path_factory.mktemp("sync-master"),
                         topology=Topology.SYNC_MASTER).running() as cluster:
        yield cluster


async def run_named(cluster: RocketMQCluster, name: str, tmp_path: Path, **options: Any
                    ) -> tuple[DeliveryVerdict, Journal]:
    """The named experiment (what `chaos run NAME` and its Chaos Toolkit file run), shortened."""
    experiment, defaults = EXPERIMENTS[name]
    journal = Journal()
    verdict = await experiment(cluster, journal, {**defaults, **SHORT, **options})
    journal.write(tmp_path / "journal.jsonl")
    assert isinstance(verdict, DeliveryVerdict)
    print(name, options, _numbers(verdict))
    return verdict, journal


def _numbers(verdict: DeliveryVerdict) -> dict[str, object]:
    return {"sent": verdict.sent, "acknowledged": verdict.acknowledged, "failed": verdict.failed_sends,
            "failed_arrived": verdict.failed_arrived, "not_ok_sends": verdict.not_ok_sends,
            "not_ok_attempts": verdict.not_ok_attempts, "resent": verdict.resent,
            "duplicates": verdict.duplicates, "failover_window_s": verdict.failover_window_s}


def _killed_at(journal: Journal, victim: str) -> float:
    faults: list[Fault] = journal.of(Fault)
    (kill,) = [f.t for f in faults if f.action == "kill" and f.target == victim]
    return kill


@pytest.mark.parametrize("client", CLIENTS)
async def test_a_killed_slave_leaves_its_master_answering_slave_not_available_and_losing_nothing(
        sync_master: RocketMQCluster, client: Client, tmp_path: Path) -> None:
    verdict, journal = await run_named(sync_master, "sync-master-slave-kill", tmp_path, client=client)
    assert verdict.passed, verdict.reasons  # nothing lost, no duplicate, no failed send but stored ones
    assert verdict.not_ok_sends.get(NOT_AVAILABLE, 0) > 0
    assert verdict.not_ok_arrived == sum(verdict.not_ok_sends.values())
    assert (verdict.lost, verdict.resent, verdict.duplicates) == ((), 0, 0)
    # Only the victim's master answers so, and from the kill on it answers nothing else; the other one stays OK.
    killed = _killed_at(journal, "broker-b-slave")
    sends: list[Send] = journal.of(Send)
    assert {s.broker for s in sends if s.not_ok} == {"broker-b"}
    assert all(s.t >= killed for s in sends if s.not_ok)
    assert all(s.not_ok for s in sends if s.t > killed + SETTLED_S and s.broker == "broker-b")
    assert any(s.status == "SEND_OK" for s in sends if s.t > killed + SETTLED_S and s.broker == "broker-a")


@pytest.mark.parametrize("client", CLIENTS)
async def test_retry_another_broker_re_sends_what_the_slave_less_master_stored_and_duplicates_it(
        sync_master: RocketMQCluster, client: Client, tmp_path: Path) -> None:
    verdict, journal = await run_named(sync_master, "sync-master-slave-kill-retry-another-broker", tmp_path,
                                       client=client)
    assert verdict.passed, verdict.reasons
    assert verdict.resent > 0
    # Each re-sent message went SLAVE_NOT_AVAILABLE on broker-b's master, then SEND_OK on broker-a's, and both
    # copies were delivered: every duplicate is a re-send's.
    resent = [s for s in journal.of(Send) if s.stored_copies > 1]
    assert {tuple((a.broker, a.status) for a in s.attempts) for s in resent} == {
        (("broker-b", NOT_AVAILABLE), ("broker-a", "SEND_OK"))}
    assert verdict.resend_duplicates == verdict.resent == verdict.duplicates
    assert verdict.not_ok_attempts.get(NOT_AVAILABLE) == verdict.resent
    assert NOT_AVAILABLE not in verdict.not_ok_sends  # the application never sees it: the re-send answered OK
    assert verdict.lost == ()


async def test_a_killed_sync_master_is_failed_over_by_the_producers_retries(sync_master: RocketMQCluster,
                                                                           tmp_path: Path) -> None:
    """The killed master's sends fail rather than answer; the other master's slave is up, so it answers SEND_OK."""
    verdict, _ = await run_named(sync_master, "sync-master-master-kill", tmp_path)
    assert verdict.passed, verdict.reasons
    assert (verdict.lost, verdict.failed_sends) == ((), 0)
    assert verdict.failed_attempts > 0, "no send met the killed master: the fault was not exercised"
    assert verdict.failover_window_s is not None
    assert verdict.not_ok_sends == {}
