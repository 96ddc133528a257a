import copy

from hypothesis import given
from hypothesis import strategies as st

from rocketmq_retry.domain.broker import BrokerLine, default_group_config
from rocketmq_retry.domain.desired import desired_fields
from rocketmq_retry.domain.diff import FieldChange, plan_group
from rocketmq_retry.domain.jsontypes import JsonObject, JsonValue
from rocketmq_retry.domain.spec import CustomizedBackoff, ExponentialBackoff, RetryPolicySpec

ACTUAL_5X: JsonObject = {
    "groupName": "g", "consumeEnable": False, "consumeFromMinEnable": True, "consumeBroadcastEnable": True,
    "consumeMessageOrderly": True, "retryQueueNums": 1, "retryMaxTimes": 16,
    "groupRetryPolicy": {"type": "CUSTOMIZED"}, "brokerId": 0, "whichBrokerWhenConsumeSlowly": 1,
    "notifyConsumerIdsChangedEnable": True, "groupSysFlag": 0, "consumeTimeoutMinute": 15,
    "subscriptionDataSet": [{"topic": "T", "expressionType": "TAG", "expression": "*", "version": 0}],
    "attributes": {"stored": "value"}, "someFutureField": {"nested": [1, 2]},
}

json_scalars = st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=8)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=8)
actual_configs = st.dictionaries(st.text(max_size=12), json_values, max_size=8)
specs = st.builds(
    RetryPolicySpec,
    consumer_group=st.just("g"),
    max_retries=st.none() | st.integers(0, 1000),
    retry_queues=st.none() | st.integers(1, 64),
    backoff=st.none()
    | st.builds(CustomizedBackoff, st.lists(st.integers(0, 10**8), min_size=1, max_size=5).map(tuple))
    | st.builds(lambda i, e, m: ExponentialBackoff(i, i + e, m), st.integers(0, 10**7), st.integers(0, 10**7),
                st.integers(1, 100)),
)


def test_unchanged_group_needs_no_write() -> None:
    plan = plan_group("g", ACTUAL_5X, {"retryMaxTimes": 16, "groupRetryPolicy": {"type": "CUSTOMIZED"}}, BrokerLine.V5)
    assert plan.changes == ()
    assert not plan.needs_write


def test_changed_fields_are_listed_and_everything_else_is_carried() -> None:
    desired = desired_fields(RetryPolicySpec("g", max_retries=3, backoff=ExponentialBackoff(1, 2, 2)), BrokerLine.V5)
    plan = plan_group("g", ACTUAL_5X, desired, BrokerLine.V5)
    assert plan.needs_write
    assert not plan.creates
    assert plan.changes == (
        FieldChange("retryMaxTimes", 16, 3),
        FieldChange("groupRetryPolicy", {"type": "CUSTOMIZED"}, desired["groupRetryPolicy"]),
    )
    expected = dict(ACTUAL_5X, retryMaxTimes=3, groupRetryPolicy=desired["groupRetryPolicy"], attributes={})
    assert plan.config == expected


def test_attributes_are_sent_empty_because_the_broker_merges_them() -> None:
    plan = plan_group("g", ACTUAL_5X, {"retryMaxTimes": 1}, BrokerLine.V5)
    assert plan.config["attributes"] == {}
    plan_4x = plan_group("g", {"groupName": "g", "retryMaxTimes": 16}, {"retryMaxTimes": 1}, BrokerLine.V4)
    assert "attributes" not in plan_4x.config


def test_missing_group_is_created_from_broker_defaults() -> None:
    plan = plan_group("g", None, {"retryMaxTimes": 3}, BrokerLine.V4)
    assert plan.creates
    assert plan.needs_write
    assert plan.changes == (FieldChange("retryMaxTimes", 16, 3),)
    assert plan.config == default_group_config("g", BrokerLine.V4) | {"retryMaxTimes": 3}


def test_missing_group_is_created_even_when_desired_equals_defaults() -> None:
    plan = plan_group("g", None, {"retryMaxTimes": 16}, BrokerLine.V5)
    assert plan.changes == ()
    assert plan.creates
    assert plan.needs_write


def test_policy_without_fields_never_creates_a_group() -> None:
    plan = plan_group("g", None, {}, BrokerLine.V5)
    assert not plan.creates
    assert not plan.needs_write


def test_json_true_is_not_the_number_one() -> None:
    plan = plan_group("g", {"groupName": "g", "retryQueueNums": True}, {"retryQueueNums": 1}, BrokerLine.V4)
    assert plan.changes == (FieldChange("retryQueueNums", True, 1),)


def test_group_name_is_forced() -> None:
    assert plan_group("g", {"retryMaxTimes": 1}, {"retryMaxTimes": 2}, BrokerLine.V4).config["groupName"] == "g"


def test_plan_does_not_alias_its_inputs() -> None:
    actual = copy.deepcopy(ACTUAL_5X)
    desired: JsonObject = {"groupRetryPolicy": {"type": "CUSTOMIZED", "customizedRetryPolicy": {"next": [1]}}}
    plan = plan_group("g", actual, desired, BrokerLine.V5)
    nested = plan.config["someFutureField"]
    assert isinstance(nested, dict)
    nested["nested"] = []
    assert actual == ACTUAL_5X
    written = plan.config["groupRetryPolicy"]
    assert isinstance(written, dict)
    written["type"] = "EXPONENTIAL"
    assert desired["groupRetryPolicy"] == {"type": "CUSTOMIZED", "customizedRetryPolicy": {"next": [1]}}


@given(actual_configs, specs, st.sampled_from(BrokerLine))
def test_applying_the_plan_converges(actual: dict[str, JsonValue], spec: RetryPolicySpec, line: BrokerLine) -> None:
    desired = desired_fields(spec, line)
    plan = plan_group("g", actual, desired, line)
    again = plan_group("g", plan.config, desired, line)
    assert again.changes == ()
    assert not again.needs_write


@given(actual_configs, specs, st.sampled_from(BrokerLine))
def test_unowned_fields_survive(actual: dict[str, JsonValue], spec: RetryPolicySpec, line: BrokerLine) -> None:
    desired = desired_fields(spec, line)
    config = plan_group("g", actual, desired, line).config
    untouched = set(actual) - set(desired) - {"groupName", "attributes"}
    assert {key: config[key] for key in untouched} == {key: actual[key] for key in untouched}
    assert {key: config[key] for key in desired} == desired
