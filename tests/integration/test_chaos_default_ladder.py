"""The real default ladder for its first three retries (10 s, 30 s, 1 min), on a broker with RocketMQ's own table.

The other ladder tests use a compressed table so they finish in seconds; this one proves the checker and the
ladder math against the delays users actually get.
"""

from collections.abc import Iterator
from pathlib import Path

import pytest

from rocketmq_chaos.experiments import RetryLadder, retry_ladder
from rocketmq_chaos.journal import Journal
from rocketmq_lab.bed import versions
from rocketmq_lab.bed.rocketmq import DEFAULT_DELAY_LEVELS, RocketMQCluster
from rocketmq_retry.domain.durations import parse_delay_levels
from rocketmq_retry.domain.ladder import remoting_ladder


@pytest.fixture(scope="module")
def default_ladder_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RocketMQCluster]:
    with RocketMQCluster(versions.ROCKETMQ_5, Path(tmp_path_factory.mktemp("default-ladder")), broker_count=1,
                         delay_levels=DEFAULT_DELAY_LEVELS).running() as cluster:
        yield cluster


async def test_the_first_three_default_retries_wait_10s_30s_1min(default_ladder_cluster: RocketMQCluster) -> None:
    expected = remoting_ladder(parse_delay_levels(default_ladder_cluster.delay_levels), retries=3).delays_ms
    assert expected == (10_000, 30_000, 60_000)
    verdict = await retry_ladder(default_ladder_cluster, Journal(), RetryLadder(expected, messages=1, within=240))
    assert verdict.passed, verdict.reasons
    [message] = verdict.messages
    assert [s.on_time for s in message.steps] == [True, True, True]
    assert (message.retries_seen, message.dead_letters) == (3, 1)
