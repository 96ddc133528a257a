"""The effective behaviour of a policy on a cluster: its retry ladders and warnings, from what the masters hold.

Ladders are computed from the first master (by name) that could be read, because a cluster's masters normally share
one broker.conf; groups keep a field the policy does not own as the broker has it, so retries and backoff fall back
to the broker's actual group config, then to RocketMQ's defaults.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rocketmq_retry.domain.broker import DEFAULT_RETRY_MAX_TIMES, BrokerLine
from rocketmq_retry.domain.consumers import ConsumersView, LiveConsumer, consumers_view
from rocketmq_retry.domain.desired import GROUP_RETRY_POLICY, RETRY_MAX_TIMES
from rocketmq_retry.domain.jsontypes import JsonValue
from rocketmq_retry.domain.ladder import Ladder, effective_ladders
from rocketmq_retry.domain.retry_policy import DEFAULT_GROUP_RETRY_POLICY, grpc_backoff, read_group_retry_policy
from rocketmq_retry.domain.spec import Backoff, RetryPolicySpec
from rocketmq_retry.domain.warnings import BrokerFacts, PolicyWarning, policy_warnings


@dataclass(frozen=True)
class BrokerSample:
    """One master as read in a reconciliation pass; `group` is the group's config after the pass (None: absent)."""

    name: str
    line: BrokerLine
    delay_levels_ms: tuple[int, ...]
    auto_create_subscription_group: bool | None
    retry_topic_queues: int | None
    group: Mapping[str, JsonValue] | None


@dataclass(frozen=True)
class EffectiveView:
    ladders: tuple[Ladder, ...]
    warnings: tuple[PolicyWarning, ...]
    consumers: ConsumersView | None = None  # None: no consumer of the group was online at the last census


def effective_retries(spec: RetryPolicySpec, samples: Sequence[BrokerSample]) -> int:
    """retryMaxTimes as consumers get it: the spec's, else the broker's, else RocketMQ's default."""
    if spec.max_retries is not None:
        return spec.max_retries
    for sample in sorted(samples, key=lambda s: s.name):
        value = None if sample.group is None else sample.group.get(RETRY_MAX_TIMES)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
    return DEFAULT_RETRY_MAX_TIMES


def effective_backoff(spec: RetryPolicySpec, samples: Sequence[BrokerSample]) -> Backoff:
    """The backoff gRPC clients get: the spec's, else the first 5.x master's stored policy, else the default."""
    if spec.backoff is not None:
        return spec.backoff
    for sample in sorted(samples, key=lambda s: s.name):
        if sample.line is BrokerLine.V5 and sample.group is not None:
            # None: a stored policy clients cannot use either; show the default rather than guess
            return read_group_retry_policy(sample.group.get(GROUP_RETRY_POLICY)).backoff or \
                grpc_backoff(DEFAULT_GROUP_RETRY_POLICY)
    return grpc_backoff(DEFAULT_GROUP_RETRY_POLICY)


def _retry_policy_problem(sample: BrokerSample) -> str | None:
    """What is odd about the group's stored groupRetryPolicy on a 5.x master (4.x has none to read)."""
    if sample.line is not BrokerLine.V5 or sample.group is None:
        return None
    return read_group_retry_policy(sample.group.get(GROUP_RETRY_POLICY)).problem


def effective_view(spec: RetryPolicySpec, samples: Sequence[BrokerSample],
                   consumers: Sequence[LiveConsumer] = ()) -> EffectiveView:
    """Ladders (none when no master could be read), warnings and the live `consumers` for `spec` on masters
    `samples`."""
    retries = effective_retries(spec, samples)
    facts = [BrokerFacts(s.name, s.line, s.auto_create_subscription_group, s.retry_topic_queues,
                         _retry_policy_problem(s)) for s in samples]
    warnings = policy_warnings(spec, facts, retries, consumers_online=bool(consumers))
    first = min(samples, key=lambda s: s.name) if samples else None
    levels = first.delay_levels_ms if first is not None else ()
    live = consumers_view(consumers, retries, levels) if consumers else None
    if first is None:
        return EffectiveView((), warnings, live)
    line = BrokerLine.V5 if any(s.line is BrokerLine.V5 for s in samples) else BrokerLine.V4
    ladders = effective_ladders(line, levels, retries, effective_backoff(spec, samples))
    return EffectiveView(ladders, warnings, live)
