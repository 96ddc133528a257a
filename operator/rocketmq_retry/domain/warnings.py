"""Warnings for status: facts that make the effective retry behaviour differ from what the spec says.

Each warning names its cause and what to do; none of them stops the operator from applying the policy.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from rocketmq_retry.domain.broker import (
    JAVA_REMOTING_DEFAULT_MAX_RECONSUME_TIMES,
    PROXY_DEFAULT_MAX_INVISIBLE_MS,
    BrokerLine,
)
from rocketmq_retry.domain.durations import format_duration
from rocketmq_retry.domain.ladder import first_long_overflow, grpc_delay, java_exponential_delay
from rocketmq_retry.domain.spec import CustomizedBackoff, ExponentialBackoff, RetryPolicySpec


class WarningCode(StrEnum):
    CLIENT_OVERRIDES_MAX_RETRIES = "ClientOverridesMaxRetries"
    AUTO_CREATE_SUBSCRIPTION_GROUP = "AutoCreateSubscriptionGroup"
    BACKOFF_IGNORED_ON_4X = "BackoffIgnoredOn4x"
    CUSTOMIZED_LADDER_SHORT = "CustomizedLadderShort"
    RETRY_TOPIC_TOO_SMALL = "RetryTopicTooSmall"
    EXPONENTIAL_LONG_OVERFLOW = "ExponentialLongOverflow"
    DELAY_ABOVE_INVISIBLE_LIMIT = "DelayAboveInvisibleLimit"
    EXPONENTIAL_NOT_IN_PYTHON_CLIENT = "ExponentialIgnoredByPythonClient"
    STORED_RETRY_POLICY_ODD = "StoredGroupRetryPolicyOdd"


@dataclass(frozen=True)
class PolicyWarning:
    code: WarningCode
    message: str

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


@dataclass(frozen=True)
class BrokerFacts:
    """What the operator learnt about one master broker; None means it could not tell."""

    name: str
    line: BrokerLine
    auto_create_subscription_group: bool | None = None
    retry_topic_queues: int | None = None  # queues of %RETRY%<group>; None: the topic does not exist yet
    retry_policy_problem: str | None = None  # what is odd about the group's stored groupRetryPolicy (5.x)


def policy_warnings(spec: RetryPolicySpec, brokers: Sequence[BrokerFacts], retries: int, *,
                    consumers_online: bool = False) -> tuple[PolicyWarning, ...]:
    """Warnings for a policy on a cluster whose masters are `brokers`; `retries` is the group's effective retryMaxTimes.

    Broker-dependent warnings are only given for the brokers listed, so an unreachable cluster yields the spec-only
    ones. While consumers of the group are online, what they really get is observed (status.consumers and its
    conditions), so the warning that assumes what remoting clients do is left out.
    """
    v5 = any(broker.line is BrokerLine.V5 for broker in brokers)
    found = [
        None if consumers_online else _client_override(spec),
        _auto_create(brokers),
        _backoff_ignored(spec, brokers),
        _retry_topic_too_small(spec, brokers),
        _stored_retry_policy_odd(spec, brokers),
    ]
    if v5:
        # Only gRPC clients of a 5.x proxy read the backoff.
        found += [check(spec, retries) for check in (_customized_short, _long_overflow, _above_invisible_limit,
                                                     _exponential_in_python_client)]
    return tuple(warning for warning in found if warning is not None)


def _client_override(spec: RetryPolicySpec) -> PolicyWarning | None:
    wanted = spec.max_retries
    if wanted is None or wanted == JAVA_REMOTING_DEFAULT_MAX_RECONSUME_TIMES:
        return None
    return PolicyWarning(
        WarningCode.CLIENT_OVERRIDES_MAX_RETRIES,
        f"assumed, as no live consumer of the group was seen: remoting push consumers send their own maxReconsumeTimes "
        f"with every retry (Java default "
        f"{JAVA_REMOTING_DEFAULT_MAX_RECONSUME_TIMES}) and the broker uses it instead of maxRetries={wanted}; "
        f"set setMaxReconsumeTimes({wanted}) in those applications too (gRPC clients follow maxRetries)",
    )


def _auto_create(brokers: Sequence[BrokerFacts]) -> PolicyWarning | None:
    names = [broker.name for broker in brokers if broker.auto_create_subscription_group]
    if not names:
        return None
    return PolicyWarning(
        WarningCode.AUTO_CREATE_SUBSCRIPTION_GROUP,
        f"autoCreateSubscriptionGroup=true on {_listed(names)}: a consumer can create the group with RocketMQ's "
        "defaults before the operator applies this policy (or after a broker loses its store), and runs with them "
        "until then; set autoCreateSubscriptionGroup=false to make consumers wait for the policy",
    )


def _backoff_ignored(spec: RetryPolicySpec, brokers: Sequence[BrokerFacts]) -> PolicyWarning | None:
    names = [broker.name for broker in brokers if broker.line is BrokerLine.V4]
    if spec.backoff is None or not names:
        return None
    return PolicyWarning(
        WarningCode.BACKOFF_IGNORED_ON_4X,
        f"backoff is not applied on the 4.x brokers {_listed(names)}: they have no group retry policy, and retries "
        "there wait according to the broker-wide messageDelayLevel (see status.ladders)",
    )


def _retry_topic_too_small(spec: RetryPolicySpec, brokers: Sequence[BrokerFacts]) -> PolicyWarning | None:
    wanted = spec.retry_queues
    if wanted is None:
        return None
    small = [f"{broker.name} ({broker.retry_topic_queues})" for broker in brokers
             if broker.retry_topic_queues is not None and broker.retry_topic_queues < wanted]
    if not small:
        return None
    return PolicyWarning(
        WarningCode.RETRY_TOPIC_TOO_SMALL,
        f"%RETRY%{spec.consumer_group} has fewer queues than retryQueues={wanted} on {_listed(small)}: the broker "
        "sizes the retry topic only when it creates it, yet spreads retries over retryQueues queues, and retries "
        f"sent to queues the topic does not have are never consumed; raise the retry topic to {wanted} queues",
    )


def _stored_retry_policy_odd(spec: RetryPolicySpec, brokers: Sequence[BrokerFacts]) -> PolicyWarning | None:
    odd = [f"{broker.name} ({broker.retry_policy_problem})" for broker in brokers if broker.retry_policy_problem]
    if not odd:
        return None
    fix = ("the next write of this policy replaces it" if spec.backoff is not None
           else "set backoff in this policy to replace it")
    return PolicyWarning(
        WarningCode.STORED_RETRY_POLICY_ODD,
        f"the group's stored groupRetryPolicy, written outside this policy, is not one RocketMQ writes on "
        f"{_listed(odd)}: gRPC clients may not get the backoff status.ladders shows; {fix}",
    )


def _customized_short(spec: RetryPolicySpec, retries: int) -> PolicyWarning | None:
    backoff = spec.backoff
    if not isinstance(backoff, CustomizedBackoff):
        return None
    count = len(backoff.delays_ms)
    if count == 1 or count >= retries:  # a single delay is a deliberate constant ladder
        return None
    return PolicyWarning(
        WarningCode.CUSTOMIZED_LADDER_SHORT,
        f"backoff.customized lists {count} delays for {retries} retries: gRPC clients repeat the last delay "
        f"({format_duration(backoff.delays_ms[-1])}) for retries {count + 1} to {retries}; add delays if the ladder "
        "should keep growing",
    )


def _long_overflow(spec: RetryPolicySpec, retries: int) -> PolicyWarning | None:
    backoff = spec.backoff
    if not isinstance(backoff, ExponentialBackoff):
        return None
    at = first_long_overflow(backoff, retries)
    if at is None:
        return None
    return PolicyWarning(
        WarningCode.EXPONENTIAL_LONG_OVERFLOW,
        f"initial x multiplier^{at} overflows a Java long: when a gRPC consumer exceeds its consumption time, the "
        f"proxy computes the delay of retry {at + 1} in long arithmetic and gets {java_exponential_delay(backoff, at)} "
        "ms; lower backoff.exponential.initial or multiplier",
    )


def _above_invisible_limit(spec: RetryPolicySpec, retries: int) -> PolicyWarning | None:
    if spec.backoff is None:
        return None
    longest = max(grpc_delay(spec.backoff, attempt) for attempt in range(retries + 1))
    if longest <= PROXY_DEFAULT_MAX_INVISIBLE_MS:
        return None
    return PolicyWarning(
        WarningCode.DELAY_ABOVE_INVISIBLE_LIMIT,
        f"gRPC clients would wait up to {format_duration(longest)} between retries, but the proxy rejects delays above "
        f"{format_duration(PROXY_DEFAULT_MAX_INVISIBLE_MS)} unless its maxInvisibleTimeMills is raised",
    )


def _exponential_in_python_client(spec: RetryPolicySpec, retries: int) -> PolicyWarning | None:
    """Measured with rocketmq-python-client 5.1.2 (tests/integration/test_chaos_grpc_probe.py)."""
    if not isinstance(spec.backoff, ExponentialBackoff) or retries == 0:
        return None
    return PolicyWarning(
        WarningCode.EXPONENTIAL_NOT_IN_PYTHON_CLIENT,
        "the official Python gRPC client (rocketmq-python-client 5.1) follows only customized backoff and retries "
        "after its 1 s default under an exponential policy; the Java gRPC client computes it (status.ladders); use "
        "backoff.customized for a ladder every gRPC client follows",
    )


def _listed(names: Sequence[str]) -> str:
    return ", ".join(sorted(names))
