"""Effective retry ladders: how long each retry waits and when a message is dead-lettered, per kind of client.

Which knob a client follows depends on its protocol, not on the broker version alone (RocketMQ 4.9.7 and 5.x sources):

* Remoting push consumers send failed messages back (CONSUMER_SEND_MSG_BACK). The broker delays retry n (n = the
  message's reconsumeTimes, from 0) by delay level 3 + n of its `messageDelayLevel`, clamped to the last level, and
  dead-letters at once when reconsumeTimes reaches the limit. This holds on 5.x brokers too: `groupRetryPolicy` is
  never read on that path.
* gRPC clients of the 5.x proxy receive `groupRetryPolicy` in their settings and compute the delay themselves
  (rocketmq-clients CustomizedBackoffRetryPolicy / ExponentialBackoffRetryPolicy) from deliveryAttempt = n + 1:
  CUSTOMIZED waits next[min(n, len - 1)], EXPONENTIAL waits min(max, initial * multiplier^n). A failed message is
  made invisible for that delay on every failure, and the proxy dead-letters it on the next receive once
  reconsumeTimes reaches retryMaxTimes + 1, so gRPC clients wait one delay more than they retry.

The server-side RetryPolicy.nextDelayDuration (CUSTOMIZED indexes next[n + 2]; EXPONENTIAL in Java long arithmetic)
is only used by the proxy when a gRPC consumer exceeds its consumption time; `java_exponential_delay` models that path
so that its long overflow can be reported.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from rocketmq_retry.domain.broker import BrokerLine
from rocketmq_retry.domain.durations import JAVA_LONG_MAX, format_duration
from rocketmq_retry.domain.spec import Backoff, CustomizedBackoff, ExponentialBackoff

FIRST_RETRY_DELAY_LEVEL: Final = 3
JAVA_EXPONENT_CAP: Final = 32  # ExponentialRetryPolicy clamps reconsumeTimes to 32


class ClientProtocol(StrEnum):
    REMOTING = "Remoting"
    GRPC = "gRPC"


class LadderSource(StrEnum):
    BROKER_DELAY_LEVELS = "BrokerDelayLevels"
    GROUP_RETRY_POLICY = "GroupRetryPolicy"


@dataclass(frozen=True)
class Ladder:
    """Delays before each retry, and the wait between the last failure and dead-lettering."""

    client: ClientProtocol
    source: LadderSource
    delays_ms: tuple[int, ...]
    final_wait_ms: int = 0

    @property
    def retries(self) -> int:
        return len(self.delays_ms)

    @property
    def total_ms(self) -> int:
        """Time from the first failure to dead-lettering, consumption time not counted."""
        return sum(self.delays_ms) + self.final_wait_ms

    @property
    def summary(self) -> str:
        """The ladder in words, e.g. "3 retries: 10s, 30s, 1m; dead-lettered after 1m40s"."""
        retries = f"{self.retries} {'retry' if self.retries == 1 else 'retries'}: {_folded(self.delays_ms)}"
        head = retries if self.delays_ms else "no retries"
        total = format_duration(self.total_ms)
        if not self.final_wait_ms:
            tail = f"dead-lettered after {total}" if self.delays_ms else "dead-lettered at once"
        elif not self.delays_ms:
            tail = f"dead-lettered {total} after the first failure"
        else:
            last = format_duration(self.final_wait_ms)
            tail = f"dead-lettered {last} after the last retry fails, {total} after the first failure"
        return f"{head}; {tail}"


def _folded(delays_ms: Sequence[int]) -> str:
    """Delays with runs of equal ones folded ("2h x12"), so ladders of hundreds of retries stay readable."""
    runs: list[tuple[int, int]] = []
    for delay in delays_ms:
        if runs and runs[-1][0] == delay:
            runs[-1] = (delay, runs[-1][1] + 1)
        else:
            runs.append((delay, 1))
    return ", ".join(format_duration(delay) + (f" x{count}" if count > 1 else "") for delay, count in runs)


def delay_level_delay(levels_ms: Sequence[int], reconsume_times: int) -> int:
    """Delay the broker gives a remoting send-back of a message consumed `reconsume_times` times before."""
    if reconsume_times < 0:
        raise ValueError(f"reconsumeTimes cannot be negative: {reconsume_times}")
    if not levels_ms:
        raise ValueError("the broker has no delay levels")
    return levels_ms[min(FIRST_RETRY_DELAY_LEVEL + reconsume_times, len(levels_ms)) - 1]


def grpc_delay(backoff: Backoff, reconsume_times: int) -> int:
    """Delay a gRPC client waits after a failed delivery of a message consumed `reconsume_times` times before.

    The client computes EXPONENTIAL in doubles; exact integers agree with it for every delay below 2^53 ns (104 days).
    """
    if reconsume_times < 0:
        raise ValueError(f"reconsumeTimes cannot be negative: {reconsume_times}")
    if isinstance(backoff, CustomizedBackoff):
        return backoff.delays_ms[min(reconsume_times, len(backoff.delays_ms) - 1)]
    delay = backoff.initial_ms
    for _ in range(reconsume_times):
        if delay == 0 or delay >= backoff.max_ms or backoff.multiplier == 1:
            break
        delay *= backoff.multiplier
    return min(delay, backoff.max_ms)


def java_exponential_delay(backoff: ExponentialBackoff, reconsume_times: int) -> int:
    """ExponentialRetryPolicy.nextDelayDuration as the JVM computes it, wrong results of long overflow included.

    Java evaluates `min(max, initial * (long) Math.pow(multiplier, n))`: the cast saturates at Long.MAX_VALUE and
    the product wraps around, so a large enough initial or multiplier yields a negative or tiny delay.
    """
    exponent = min(max(reconsume_times, 0), JAVA_EXPONENT_CAP)
    power = math.pow(backoff.multiplier, exponent)
    power_long = JAVA_LONG_MAX if power >= 2.0**63 else int(power)
    product = (backoff.initial_ms * power_long + 2**63) % 2**64 - 2**63
    return min(backoff.max_ms, product)


def first_long_overflow(backoff: ExponentialBackoff, retries: int) -> int | None:
    """The smallest reconsumeTimes (up to `retries`) at which Java's initial * multiplier^n overflows a long."""
    for reconsume_times in range(min(retries, JAVA_EXPONENT_CAP) + 1):
        if backoff.initial_ms * backoff.multiplier**reconsume_times > JAVA_LONG_MAX:
            return reconsume_times
    return None


def remoting_ladder(levels_ms: Sequence[int], retries: int) -> Ladder:
    """The ladder remoting push consumers get from the broker's delay levels for `retries` retries."""
    return Ladder(
        ClientProtocol.REMOTING,
        LadderSource.BROKER_DELAY_LEVELS,
        tuple(delay_level_delay(levels_ms, n) for n in range(retries)),
    )


def grpc_ladder(backoff: Backoff, retries: int) -> Ladder:
    """The ladder gRPC clients get from the group retry policy for `retries` retries (retryMaxTimes)."""
    return Ladder(
        ClientProtocol.GRPC,
        LadderSource.GROUP_RETRY_POLICY,
        tuple(grpc_delay(backoff, n) for n in range(retries)),
        final_wait_ms=grpc_delay(backoff, retries),
    )


def effective_ladders(line: BrokerLine, levels_ms: Sequence[int], retries: int, backoff: Backoff) -> tuple[Ladder, ...]:
    """Every ladder a client of a `line` cluster can get; 4.x has no proxy, so only remoting clients exist there."""
    remoting = remoting_ladder(levels_ms, retries)
    return (remoting,) if line is BrokerLine.V4 else (remoting, grpc_ladder(backoff, retries))
