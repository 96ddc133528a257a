import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rocketmq_retry.domain.broker import DEFAULT_CUSTOMIZED_NEXT_MS, DEFAULT_MESSAGE_DELAY_LEVEL, BrokerLine
from rocketmq_retry.domain.durations import JAVA_LONG_MAX, parse_delay_levels
from rocketmq_retry.domain.ladder import (
    ClientProtocol,
    Ladder,
    LadderSource,
    delay_level_delay,
    effective_ladders,
    first_long_overflow,
    grpc_delay,
    grpc_ladder,
    java_exponential_delay,
    remoting_ladder,
)
from rocketmq_retry.domain.spec import CustomizedBackoff, ExponentialBackoff

DEFAULT_LEVELS = parse_delay_levels(DEFAULT_MESSAGE_DELAY_LEVEL)
S, M, H = 1_000, 60_000, 3_600_000

backoffs = st.one_of(
    st.builds(CustomizedBackoff, st.lists(st.integers(0, 10 * H), min_size=1, max_size=20).map(tuple)),
    st.builds(lambda initial, extra, multiplier: ExponentialBackoff(initial, initial + extra, multiplier),
              st.integers(0, H), st.integers(0, 10 * H), st.integers(1, 100)),
)


def test_default_broker_ladder_starts_at_level_three_and_saturates() -> None:
    ladder = remoting_ladder(DEFAULT_LEVELS, 16)
    assert ladder.delays_ms == (10 * S, 30 * S, M, 2 * M, 3 * M, 4 * M, 5 * M, 6 * M, 7 * M, 8 * M, 9 * M, 10 * M,
                                20 * M, 30 * M, H, 2 * H)
    assert ladder.total_ms == 4 * H + 45 * M + 40 * S
    assert remoting_ladder(DEFAULT_LEVELS, 18).delays_ms[-3:] == (2 * H, 2 * H, 2 * H)
    assert ladder.final_wait_ms == 0


@pytest.mark.parametrize(
    ("levels", "reconsume_times", "delay"),
    [((1, 2, 3, 4), 0, 3), ((1, 2, 3, 4), 1, 4), ((1, 2, 3, 4), 7, 4), ((7,), 0, 7), ((7, 8), 3, 8)],
)
def test_delay_levels_clamp_to_the_last_level(levels: tuple[int, ...], reconsume_times: int, delay: int) -> None:
    assert delay_level_delay(levels, reconsume_times) == delay


def test_delay_level_rejects_impossible_inputs() -> None:
    with pytest.raises(ValueError, match="negative"):
        delay_level_delay(DEFAULT_LEVELS, -1)
    with pytest.raises(ValueError, match="no delay levels"):
        delay_level_delay((), 0)
    with pytest.raises(ValueError, match="negative"):
        grpc_delay(CustomizedBackoff((1,)), -1)


def test_grpc_customized_indexes_from_the_first_delay() -> None:
    # rocketmq-clients CustomizedBackoffRetryPolicy: durations[deliveryAttempt - 1], deliveryAttempt = reconsumeTimes+1.
    backoff = CustomizedBackoff(DEFAULT_CUSTOMIZED_NEXT_MS)
    assert [grpc_delay(backoff, n) for n in range(4)] == [S, 5 * S, 10 * S, 30 * S]
    assert grpc_delay(backoff, 100) == 2 * H


def test_grpc_exponential() -> None:
    backoff = ExponentialBackoff(5 * S, 2 * H, 2)
    assert [grpc_delay(backoff, n) for n in range(4)] == [5 * S, 10 * S, 20 * S, 40 * S]
    assert grpc_delay(backoff, 1000) == 2 * H
    assert grpc_delay(ExponentialBackoff(0, H, 2), 1000) == 0
    assert grpc_delay(ExponentialBackoff(S, H, 1), 1000) == S


def test_grpc_ladder_waits_once_more_before_dead_lettering() -> None:
    ladder = grpc_ladder(CustomizedBackoff((S, 5 * S, 10 * S, 30 * S)), 3)
    assert ladder == Ladder(ClientProtocol.GRPC, LadderSource.GROUP_RETRY_POLICY, (S, 5 * S, 10 * S), 30 * S)
    assert ladder.total_ms == 46 * S


@given(backoffs, st.integers(0, 200))
def test_grpc_ladder_matches_per_retry_delays(backoff: CustomizedBackoff | ExponentialBackoff, retries: int) -> None:
    ladder = grpc_ladder(backoff, retries)
    assert ladder.retries == retries
    assert list(ladder.delays_ms) == [grpc_delay(backoff, n) for n in range(retries)]
    assert ladder.total_ms == sum(grpc_delay(backoff, n) for n in range(retries + 1))


@given(st.builds(ExponentialBackoff, st.integers(0, H), st.integers(H, 10 * H), st.integers(1, 100)),
       st.integers(0, 300))
def test_exponential_is_monotone_and_capped(backoff: ExponentialBackoff, retries: int) -> None:
    delays = grpc_ladder(backoff, retries).delays_ms
    assert all(earlier <= later <= backoff.max_ms for earlier, later in itertools.pairwise(delays))
    exact = [min(backoff.max_ms, backoff.initial_ms * backoff.multiplier**n) for n in range(retries)]
    assert list(delays) == exact


@given(st.lists(st.integers(0, 10 * H), min_size=1, max_size=40).map(sorted), st.integers(0, 100))
def test_remoting_ladder_is_monotone_for_sorted_levels(levels: list[int], retries: int) -> None:
    delays = remoting_ladder(levels, retries).delays_ms
    assert len(delays) == retries
    assert all(earlier <= later for earlier, later in itertools.pairwise(delays))


def test_java_exponential_matches_exact_math_without_overflow() -> None:
    backoff = ExponentialBackoff(5 * S, 2 * H, 2)
    assert [java_exponential_delay(backoff, n) for n in (-1, 0, 3, 40)] == [5 * S, 5 * S, 40 * S, 2 * H]
    assert first_long_overflow(backoff, 1000) is None


def test_java_exponential_overflow_wraps_like_the_jvm() -> None:
    # 5000 * 3^32 = 9.26e18 > Long.MAX_VALUE: the JVM wraps the product to a negative number.
    backoff = ExponentialBackoff(5 * S, 2 * H, 3)
    assert first_long_overflow(backoff, 1000) == 32
    assert first_long_overflow(backoff, 31) is None
    wrapped = 5_000 * 3**32 - 2**64
    assert java_exponential_delay(backoff, 32) == wrapped < 0
    assert java_exponential_delay(backoff, 33) == wrapped  # the exponent is capped at 32


def test_java_exponential_saturating_pow() -> None:
    # (long) Math.pow(100, 32) saturates at Long.MAX_VALUE, and 2 * Long.MAX_VALUE wraps to -2.
    backoff = ExponentialBackoff(2, H, 100)
    assert java_exponential_delay(backoff, 32) == -2
    assert first_long_overflow(backoff, 32) == 10  # 2 * 100^10 > 2^63 - 1 while 2 * 100^9 is not
    assert 2 * 100**9 <= JAVA_LONG_MAX < 2 * 100**10


@pytest.mark.parametrize(
    ("ladder", "summary"),
    [
        (Ladder(ClientProtocol.REMOTING, LadderSource.BROKER_DELAY_LEVELS, (10 * S, 30 * S, M)),
         "3 retries: 10s, 30s, 1m; dead-lettered after 1m40s"),
        (Ladder(ClientProtocol.REMOTING, LadderSource.BROKER_DELAY_LEVELS, (500,)),
         "1 retry: 500ms; dead-lettered after 500ms"),
        (Ladder(ClientProtocol.REMOTING, LadderSource.BROKER_DELAY_LEVELS, ()), "no retries; dead-lettered at once"),
        (Ladder(ClientProtocol.GRPC, LadderSource.GROUP_RETRY_POLICY, (), S),
         "no retries; dead-lettered 1s after the first failure"),
        (Ladder(ClientProtocol.GRPC, LadderSource.GROUP_RETRY_POLICY, (S, 5 * S), 10 * S),
         "2 retries: 1s, 5s; dead-lettered 10s after the last retry fails, 16s after the first failure"),
        (remoting_ladder(DEFAULT_LEVELS, 20),
         "20 retries: 10s, 30s, 1m, 2m, 3m, 4m, 5m, 6m, 7m, 8m, 9m, 10m, 20m, 30m, 1h, 2h x5; "
         "dead-lettered after 12h45m40s"),
    ],
)
def test_summary(ladder: Ladder, summary: str) -> None:
    assert ladder.summary == summary


def test_effective_ladders_per_broker_line() -> None:
    backoff = ExponentialBackoff(S, M, 2)
    (remoting,) = effective_ladders(BrokerLine.V4, DEFAULT_LEVELS, 2, backoff)
    assert remoting == remoting_ladder(DEFAULT_LEVELS, 2)
    assert effective_ladders(BrokerLine.V5, DEFAULT_LEVELS, 2, backoff) == (remoting, grpc_ladder(backoff, 2))
