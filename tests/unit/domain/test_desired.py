import pytest

from rocketmq_retry.domain.broker import BrokerLine, broker_line, default_group_config
from rocketmq_retry.domain.desired import desired_fields, owned_fields, reset_fields
from rocketmq_retry.domain.spec import CustomizedBackoff, ExponentialBackoff, RetryPolicySpec

FULL = RetryPolicySpec("g", max_retries=3, retry_queues=2, backoff=ExponentialBackoff(1_000, 60_000, 2))


def test_only_set_fields_are_owned() -> None:
    assert desired_fields(RetryPolicySpec("g"), BrokerLine.V5) == {}
    assert desired_fields(RetryPolicySpec("g", max_retries=0), BrokerLine.V5) == {"retryMaxTimes": 0}
    assert owned_fields(RetryPolicySpec("g", retry_queues=4), BrokerLine.V4) == ("retryQueueNums",)


def test_desired_on_5x_includes_the_group_retry_policy() -> None:
    assert desired_fields(FULL, BrokerLine.V5) == {
        "retryMaxTimes": 3,
        "retryQueueNums": 2,
        "groupRetryPolicy": {"type": "EXPONENTIAL",
                             "exponentialRetryPolicy": {"initial": 1_000, "max": 60_000, "multiplier": 2}},
    }


def test_4x_brokers_never_get_a_group_retry_policy() -> None:
    assert desired_fields(FULL, BrokerLine.V4) == {"retryMaxTimes": 3, "retryQueueNums": 2}
    assert reset_fields(FULL, BrokerLine.V4) == {"retryMaxTimes": 16, "retryQueueNums": 1}


def test_reset_restores_rocketmq_defaults_of_owned_fields_only() -> None:
    assert reset_fields(FULL, BrokerLine.V5) == {"retryMaxTimes": 16, "retryQueueNums": 1,
                                                 "groupRetryPolicy": {"type": "CUSTOMIZED"}}
    spec = RetryPolicySpec("g", backoff=CustomizedBackoff((1,)))
    assert reset_fields(spec, BrokerLine.V5) == {"groupRetryPolicy": {"type": "CUSTOMIZED"}}


def test_reset_fields_are_independent_copies() -> None:
    first = reset_fields(FULL, BrokerLine.V5)
    policy = first["groupRetryPolicy"]
    assert isinstance(policy, dict)
    policy["type"] = "EXPONENTIAL"
    assert reset_fields(FULL, BrokerLine.V5)["groupRetryPolicy"] == {"type": "CUSTOMIZED"}


@pytest.mark.parametrize(("version", "line"),
                         [("V5_5_0", BrokerLine.V5), ("5.5.0", BrokerLine.V5), ("V4_9_7", BrokerLine.V4),
                          ("4.9.7", BrokerLine.V4), (" V6_0_0_SNAPSHOT", BrokerLine.V5)])
def test_broker_line(version: str, line: BrokerLine) -> None:
    assert broker_line(version) is line


@pytest.mark.parametrize("version", ["", "five", "V3_5_8", "5"])
def test_broker_line_rejects_unknown_versions(version: str) -> None:
    with pytest.raises(ValueError, match=r"RocketMQ|version"):
        broker_line(version)


def test_default_group_config_per_line() -> None:
    v4 = default_group_config("g", BrokerLine.V4)
    v5 = default_group_config("g", BrokerLine.V5)
    assert v4["retryMaxTimes"] == v5["retryMaxTimes"] == 16
    assert "groupRetryPolicy" not in v4
    assert set(v5) - set(v4) == {"consumeMessageOrderly", "groupRetryPolicy", "groupSysFlag", "consumeTimeoutMinute",
                                 "attributes"}
