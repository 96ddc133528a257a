from rocketmq_retry.domain.broker import BrokerLine
from rocketmq_retry.domain.spec import CustomizedBackoff, ExponentialBackoff, RetryPolicySpec
from rocketmq_retry.domain.warnings import BrokerFacts, PolicyWarning, WarningCode, policy_warnings

V5 = BrokerFacts("broker-a", BrokerLine.V5)
V4 = BrokerFacts("broker-b", BrokerLine.V4)
H = 3_600_000


def codes(spec: RetryPolicySpec, brokers: list[BrokerFacts], retries: int = 16) -> list[WarningCode]:
    return [warning.code for warning in policy_warnings(spec, brokers, retries)]


def test_plain_policy_has_no_warnings() -> None:
    assert policy_warnings(RetryPolicySpec("g", max_retries=16, retry_queues=1), [V5, V4], 16) == ()


def test_remoting_clients_override_max_retries() -> None:
    (warning,) = policy_warnings(RetryPolicySpec("g", max_retries=3), [], 3)
    assert warning.code is WarningCode.CLIENT_OVERRIDES_MAX_RETRIES
    assert "setMaxReconsumeTimes(3)" in warning.message
    assert str(warning).startswith("ClientOverridesMaxRetries: assumed, as no live consumer of the group was seen: ")
    assert policy_warnings(RetryPolicySpec("g", max_retries=3), [], 3, consumers_online=True) == ()


def test_auto_create_lists_the_brokers() -> None:
    brokers = [BrokerFacts("b2", BrokerLine.V5, auto_create_subscription_group=True),
               BrokerFacts("b1", BrokerLine.V5, auto_create_subscription_group=True),
               BrokerFacts("b3", BrokerLine.V5, auto_create_subscription_group=False)]
    (warning,) = policy_warnings(RetryPolicySpec("g"), brokers, 16)
    assert warning.code is WarningCode.AUTO_CREATE_SUBSCRIPTION_GROUP
    assert "on b1, b2:" in warning.message


def test_backoff_is_ignored_on_4x_brokers() -> None:
    spec = RetryPolicySpec("g", backoff=CustomizedBackoff((1_000,)))
    assert codes(spec, [V4]) == [WarningCode.BACKOFF_IGNORED_ON_4X]
    assert codes(spec, [V5]) == []


def test_retry_topic_smaller_than_retry_queues() -> None:
    brokers = [BrokerFacts("a", BrokerLine.V5, retry_topic_queues=1), BrokerFacts("b", BrokerLine.V5,
                                                                                   retry_topic_queues=4),
               BrokerFacts("c", BrokerLine.V4)]
    (warning,) = policy_warnings(RetryPolicySpec("g", retry_queues=4), brokers, 16)
    assert warning.code is WarningCode.RETRY_TOPIC_TOO_SMALL
    assert "%RETRY%g has fewer queues than retryQueues=4 on a (1):" in warning.message
    assert codes(RetryPolicySpec("g", retry_queues=1), brokers) == []


def test_customized_ladder_shorter_than_the_retries() -> None:
    spec = RetryPolicySpec("g", backoff=CustomizedBackoff((1_000, 5_000)))
    (warning,) = policy_warnings(spec, [V5], 4)
    assert warning.code is WarningCode.CUSTOMIZED_LADDER_SHORT
    assert "repeat the last delay (5s) for retries 3 to 4" in warning.message
    assert codes(spec, [V5], retries=2) == []
    assert codes(RetryPolicySpec("g", backoff=CustomizedBackoff((60_000,))), [V5], 10) == []


def test_exponential_long_overflow_is_reported_with_the_jvm_result() -> None:
    spec = RetryPolicySpec("g", backoff=ExponentialBackoff(5_000, 2 * H, 3))
    (warning,) = (w for w in policy_warnings(spec, [V5], 32) if w.code is WarningCode.EXPONENTIAL_LONG_OVERFLOW)
    assert f"gets {5_000 * 3**32 - 2**64} ms" in warning.message
    assert WarningCode.EXPONENTIAL_LONG_OVERFLOW not in codes(spec, [V5], retries=31)


def test_delay_above_the_proxy_invisible_limit() -> None:
    spec = RetryPolicySpec("g", backoff=ExponentialBackoff(H, 24 * H, 2))
    (warning,) = (w for w in policy_warnings(spec, [V5], 5) if w.code is WarningCode.DELAY_ABOVE_INVISIBLE_LIMIT)
    assert warning == PolicyWarning(
        WarningCode.DELAY_ABOVE_INVISIBLE_LIMIT,
        "gRPC clients would wait up to 24h between retries, but the proxy rejects delays above 12h unless its "
        "maxInvisibleTimeMills is raised",
    )
    assert WarningCode.DELAY_ABOVE_INVISIBLE_LIMIT not in codes(spec, [V5], retries=3)  # 1h, 2h, 4h, 8h: below 12h


def test_backoff_warnings_need_a_5x_broker() -> None:
    spec = RetryPolicySpec("g", backoff=ExponentialBackoff(5_000, 48 * H, 3))
    assert codes(spec, [V4], retries=40) == [WarningCode.BACKOFF_IGNORED_ON_4X]
    assert codes(spec, [], retries=40) == []


def test_exponential_backoff_is_flagged_for_the_python_grpc_client_on_5x_only() -> None:
    spec = RetryPolicySpec("g", backoff=ExponentialBackoff(1_000, 60_000, 3))
    assert WarningCode.EXPONENTIAL_NOT_IN_PYTHON_CLIENT in codes(spec, [V5], retries=3)
    assert WarningCode.EXPONENTIAL_NOT_IN_PYTHON_CLIENT not in codes(spec, [V4], retries=3)
    customized = RetryPolicySpec("g", backoff=CustomizedBackoff((1_000, 3_000)))
    assert WarningCode.EXPONENTIAL_NOT_IN_PYTHON_CLIENT not in codes(customized, [V5], retries=2)
