"""Chaos experiments on the local bed, judged by the checker: broker kill under load and the retry ladder."""

import pytest

from rocketmq_chaos.experiments import FaultUnderLoad, RetryLadder, retry_ladder
from rocketmq_chaos.injectors import TargetNotAllowed
from rocketmq_chaos.journal import Journal
from rocketmq_chaos.verdicts import judge_ladder
from rocketmq_lab.bed.rocketmq import RocketMQCluster
from rocketmq_lab.chaos.injector import LocalInjector
from rocketmq_lab.chaos.runner import local_fault_under_load
from rocketmq_retry.domain.durations import parse_delay_levels
from rocketmq_retry.domain.ladder import remoting_ladder


async def test_broker_kill_under_load_loses_no_acknowledged_message(rocketmq_cluster: RocketMQCluster) -> None:
    journal = Journal()
    verdict = await local_fault_under_load(rocketmq_cluster, journal,
                                           FaultUnderLoad(rate=200, duration=15, fault_at=4))
    assert verdict.passed, verdict.reasons
    assert (verdict.lost, verdict.failed_sends) == ((), 0)
    assert verdict.acknowledged == verdict.sent >= 2500
    assert verdict.failed_attempts > 0, "no send ever met the killed broker: the fault was not exercised"
    assert verdict.failover_window_s is not None
    assert verdict.latency_in_fault.count > 0


async def test_without_retries_the_same_kill_fails_sends_and_the_checker_says_so(
        rocketmq_cluster: RocketMQCluster) -> None:
    journal = Journal()
    verdict = await local_fault_under_load(rocketmq_cluster, journal,
                                           FaultUnderLoad(rate=200, duration=10, fault_at=3, retries=0))
    assert not verdict.passed
    assert verdict.failed_sends > 0
    assert verdict.lost == ()  # failed sends were never acknowledged, so they are not lost
    assert any("failed after all retries" in reason for reason in verdict.reasons)


async def test_the_retry_ladder_is_kept_and_a_wrong_expectation_fails(rocketmq_cluster: RocketMQCluster) -> None:
    expected = remoting_ladder(parse_delay_levels(rocketmq_cluster.delay_levels), retries=3).delays_ms
    journal = Journal()
    verdict = await retry_ladder(rocketmq_cluster, journal, RetryLadder(expected, messages=3))
    assert verdict.passed, verdict.reasons
    assert [m.retries_seen for m in verdict.messages] == [3, 3, 3]
    assert all(m.dead_letters == 1 for m in verdict.messages)

    one_retry_short = judge_ladder(journal, expected[:-1])
    assert not one_retry_short.passed
    two_levels_late = judge_ladder(journal, [delay + 2000 for delay in expected])
    assert not two_levels_late.passed


async def test_a_broker_killed_mid_ladder_loses_no_failing_message(rocketmq_cluster: RocketMQCluster) -> None:
    expected = remoting_ladder(parse_delay_levels(rocketmq_cluster.delay_levels), retries=3).delays_ms
    journal = Journal()
    verdict = await retry_ladder(rocketmq_cluster, journal, RetryLadder(expected, messages=4, kill_mid_ladder=True),
                                 LocalInjector(rocketmq_cluster, journal))
    assert len(verdict.messages) == 4
    assert all(m.dead_letters >= 1 for m in verdict.messages), verdict.reasons
    assert any(f.action == "kill" for f in journal.events if f.kind == "fault")


async def test_the_injector_refuses_targets_it_was_not_given(rocketmq_cluster: RocketMQCluster) -> None:
    injector = LocalInjector(rocketmq_cluster, Journal(), allowed={rocketmq_cluster.brokers[0].name})
    with pytest.raises(TargetNotAllowed, match="not an allowed target"):
        await injector.kill(rocketmq_cluster.brokers[1].name)
    assert all(b.process.running for b in rocketmq_cluster.brokers)


async def test_a_frozen_broker_delays_and_fails_sends_but_loses_no_acknowledged_message(
        rocketmq_cluster: RocketMQCluster) -> None:
    verdict = await local_fault_under_load(rocketmq_cluster, Journal(),
                                           FaultUnderLoad(rate=100, duration=8, fault="pause", fault_at=2))
    assert verdict.passed, verdict.reasons
    assert verdict.lost == ()
    assert verdict.failed_sends > 0  # each send to the frozen broker waits out the whole 3 s send timeout
    assert verdict.latency_in_fault.max_ms >= 2900


async def test_producers_ride_out_a_name_server_kill_on_the_routes_they_hold(
        rocketmq_cluster: RocketMQCluster) -> None:
    verdict = await local_fault_under_load(rocketmq_cluster, Journal(),
                                           FaultUnderLoad(rate=100, duration=8, fault="kill-name-server", fault_at=2))
    assert verdict.passed, verdict.reasons
    assert (verdict.failed_sends, verdict.failed_attempts, verdict.lost) == (0, 0, ())
