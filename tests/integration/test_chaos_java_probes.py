"""The official Java client as chaos probes, on both bed versions: what its users get differs from our Python probes.

One JVM run per test (a cold JVM takes 10-60 s to start on the 2-core machine); each run's journal is written to the
test's tmp_path for a look at the numbers.
"""

import asyncio
from collections import Counter
from pathlib import Path

from rocketmq_chaos.experiments import (
    FailingJavaConsumer,
    FaultUnderLoad,
    JavaOverrun,
    JavaRetryLadder,
    java_consumer_retries,
    java_overrun,
    java_retry_ladder,
    topic_with_one_message,
    unique,
)
from rocketmq_chaos.java_probes import ConsumeMode, ConsumerSettings
from rocketmq_chaos.journal import HandBack, Journal, Receive, Send
from rocketmq_chaos.probes import drain
from rocketmq_chaos.verdicts import judge_delivery, judge_ladder, judge_orderly, judge_overrun
from rocketmq_lab.bed.probe import create_topic
from rocketmq_lab.bed.rocketmq import RocketMQCluster
from rocketmq_lab.chaos.java_probes import CompiledJavaProbes
from rocketmq_lab.chaos.runner import local_fault_under_load
from rocketmq_retry.domain.durations import parse_delay_levels
from rocketmq_retry.domain.ladder import remoting_ladder
from rocketmq_retry.remoting import (
    Admin,
    ConnectionPool,
    PullConsumer,
    SubscriptionGroupConfig,
    retry_topic,
)

RATE, SEND_SECONDS = 50, 5
GROUP_RETRY_MAX_TIMES = 1
OVERRIDE_SECONDS = 15.0  # the 2nd retry arrives ~3 s (1 s + 2 s of ladder) after the first delivery; 16 take minutes
ORDERLY_SECONDS = 8.0
BROADCAST_SECONDS = 12.0
QUIET_SECONDS = 5.0  # a clustering consumer would have had the message back after 1 s


def _pool() -> ConnectionPool:
    return ConnectionPool(connect_timeout=1.0, request_timeout=5.0)


async def _routed_topic(cluster: RocketMQCluster, topic: str, *, queues: int) -> str:
    """`topic` on every master, once the name server routes it to all of them."""
    await asyncio.to_thread(create_topic, cluster.namesrv_addr, [b.addr for b in cluster.brokers], topic, queues)
    await asyncio.to_thread(cluster.wait_routed, topic)
    return topic


async def _consume(cluster: RocketMQCluster, topic: str, group: str, tmp_path: Path, *, duration: float,
                   mode: ConsumeMode) -> list[Receive]:
    journal = Journal()
    await CompiledJavaProbes.of(cluster).consume(journal, topic, group, ConsumerSettings(mode), duration=duration)
    journal.write(tmp_path / "journal.jsonl")
    deliveries: list[Receive] = journal.of(Receive)
    return sorted(deliveries, key=lambda r: r.t)


async def test_java_producer_sends_are_acknowledged_and_all_arrive(rocketmq_cluster: RocketMQCluster,
                                                                   tmp_path: Path) -> None:
    topic = await _routed_topic(rocketmq_cluster, unique("java_send"), queues=2)
    journal = Journal()
    await CompiledJavaProbes.of(rocketmq_cluster).produce(journal, topic, rate=RATE, duration=SEND_SECONDS)
    async with _pool() as pool:
        drained = await drain(PullConsumer(pool, [rocketmq_cluster.namesrv_addr], unique("java_drain")), topic,
                              journal)
    journal.write(tmp_path / "journal.jsonl")

    verdict = judge_delivery(journal)
    sends: list[Send] = journal.of(Send)
    errors = Counter(error[:120] for s in sends for error in [s.error, *(a.error for a in s.attempts)] if error)
    assert verdict.passed, (verdict.reasons, errors)
    assert verdict.acknowledged == verdict.sent == drained == RATE * SEND_SECONDS
    assert verdict.duplicates == 0
    assert {s.broker for s in sends} == {b.name for b in rocketmq_cluster.brokers}
    # The send hook saw every attempt that reached a broker: an acknowledged send's last one succeeded.
    assert all(s.attempts and s.attempts[-1].error is None for s in sends), errors


async def test_the_java_consumers_own_max_reconsume_times_overrides_the_groups_retry_max_times(
        rocketmq_cluster: RocketMQCluster, tmp_path: Path) -> None:
    group = unique("java_override")
    async with _pool() as pool:
        admin = Admin(pool, [rocketmq_cluster.namesrv_addr])
        for broker in rocketmq_cluster.brokers:
            await admin.update_subscription_group(
                broker.addr, SubscriptionGroupConfig(group, retry_max_times=GROUP_RETRY_MAX_TIMES))
    # An established group's retry topic: a group's first consumer would see it only at its next route poll (30 s),
    # as the broker creates it on the consumer's first heartbeat, after the client's first route look-up.
    await _routed_topic(rocketmq_cluster, retry_topic(group), queues=1)
    topic = await topic_with_one_message(rocketmq_cluster)

    deliveries = await _consume(rocketmq_cluster, topic, group, tmp_path, duration=OVERRIDE_SECONDS,
                                mode=ConsumeMode.CONCURRENT)

    assert len({r.msg_id for r in deliveries}) == 1, deliveries
    assert [r.reconsume_times for r in deliveries][:3] == [0, 1, 2], deliveries
    assert max(r.reconsume_times for r in deliveries) > GROUP_RETRY_MAX_TIMES
    assert deliveries[0].topic == topic
    assert {r.topic for r in deliveries[1:]} == {retry_topic(group)}  # the broker's retries, not the client's


async def test_an_orderly_java_consumer_redelivers_in_place_every_second(rocketmq_cluster: RocketMQCluster,
                                                                        tmp_path: Path) -> None:
    journal = Journal()
    verdict = await java_consumer_retries(rocketmq_cluster, journal,
                                          FailingJavaConsumer(ConsumeMode.ORDERLY, duration=ORDERLY_SECONDS),
                                          CompiledJavaProbes.of(rocketmq_cluster))
    journal.write(tmp_path / "journal.jsonl")
    assert verdict.passed, verdict.reasons
    assert verdict.deliveries >= 4, verdict


async def test_a_broadcasting_java_consumer_drops_a_failed_message(rocketmq_cluster: RocketMQCluster,
                                                                  tmp_path: Path) -> None:
    journal = Journal()
    verdict = await java_consumer_retries(
        rocketmq_cluster, journal, FailingJavaConsumer(ConsumeMode.BROADCAST, duration=BROADCAST_SECONDS,
                                                       quiet=QUIET_SECONDS), CompiledJavaProbes.of(rocketmq_cluster))
    journal.write(tmp_path / "journal.jsonl")
    assert verdict.passed, verdict.reasons
    assert verdict.deliveries == 1


async def test_java_listeners_that_throw_return_null_or_reconsume_later_all_climb_the_ladder(
        rocketmq_cluster: RocketMQCluster, tmp_path: Path) -> None:
    """The client turns a thrown exception and a null into RECONSUME_LATER: each of the three messages is sent back,
    retried on the broker's ladder under the client's own limit (3), and dead-lettered once."""
    expected = remoting_ladder(parse_delay_levels(rocketmq_cluster.delay_levels), retries=3).delays_ms
    journal = Journal()
    verdict = await java_retry_ladder(rocketmq_cluster, journal, JavaRetryLadder(expected),
                                      CompiledJavaProbes.of(rocketmq_cluster))
    journal.write(tmp_path / "journal.jsonl")
    assert verdict.passed, verdict.reasons
    assert [(m.retries_seen, m.dead_letters) for m in verdict.messages] == [(3, 1)] * 3
    assert len(journal.of(HandBack)) == 3 * 4  # the first delivery and 3 retries of each, all failed
    assert not judge_ladder(journal, expected[:-1]).passed


async def test_a_listener_that_overruns_consume_timeout_is_redelivered_while_it_still_runs(
        rocketmq_cluster: RocketMQCluster, tmp_path: Path) -> None:
    """consumeTimeout is not a ladder step: the client's cleaner sends the held message back at delay level 3 while
    the listener still runs; the 4.9.7 client sends it back once more when the listener fails, 5.x does not."""
    journal = Journal()
    verdict = await java_overrun(rocketmq_cluster, journal, JavaOverrun(), CompiledJavaProbes.of(rocketmq_cluster))
    journal.write(tmp_path / "journal.jsonl")
    assert verdict.passed, verdict.reasons
    resent = rocketmq_cluster.version.startswith("4.")
    assert (verdict.copies, verdict.dead_letters) == ((2, 2) if resent else (1, 1))
    assert not judge_overrun(journal, consume_timeout_s=60, overrun_s=135, late_failure_resent=not resent).passed


async def test_an_orderly_java_consumer_with_a_limit_retries_in_place_then_dead_letters_once(
        rocketmq_cluster: RocketMQCluster, tmp_path: Path) -> None:
    journal = Journal()
    verdict = await java_consumer_retries(
        rocketmq_cluster, journal, FailingJavaConsumer(ConsumeMode.ORDERLY, duration=60, max_reconsume_times=3),
        CompiledJavaProbes.of(rocketmq_cluster))
    journal.write(tmp_path / "journal.jsonl")
    assert verdict.passed, verdict.reasons
    assert verdict.deliveries == 4
    topic = journal.of(Receive)[0].topic
    assert not judge_orderly(journal, topic, max_reconsume_times=2).passed
    assert not judge_orderly(journal, topic).passed


async def test_async_and_oneway_java_sends_under_a_broker_kill_lose_what_the_client_never_retries(
        rocketmq_cluster: RocketMQCluster) -> None:
    """Counted, not judged beyond the one rule every send call keeps: an acknowledged (async) message arrives."""
    plans = {mode: FaultUnderLoad(rate=200, duration=10, fault_at=3, client="java", send_mode=mode)
             for mode in ("async", "oneway")}
    verdicts = {mode: await local_fault_under_load(rocketmq_cluster, Journal(), plan) for mode, plan in plans.items()}
    for mode, verdict in verdicts.items():
        assert verdict.passed, (mode, verdict.reasons)
        assert verdict.lost == ()
    async_, oneway = verdicts["async"], verdicts["oneway"]
    assert async_.acknowledged + async_.failed_sends == async_.sent
    assert async_.unacknowledged == 0
    assert (oneway.acknowledged, oneway.unacknowledged + oneway.failed_sends) == (0, oneway.sent)
    print({mode: (v.sent, v.acknowledged, v.failed_sends, v.unacknowledged, len(v.lost_unacknowledged))
           for mode, v in verdicts.items()})
