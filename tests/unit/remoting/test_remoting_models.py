"""Config models keep unknown fields through read-modify-write and validate what they type."""

import json

import pytest
from remoting_support import captured_command

from rocketmq_retry.remoting.errors import MalformedBody
from rocketmq_retry.remoting.fastjson import loads_object
from rocketmq_retry.remoting.models import (
    BrokerData,
    ClusterInfo,
    CustomizedRetryPolicy,
    ExponentialRetryPolicy,
    GroupRetryPolicy,
    RetryPolicyType,
    SubscriptionGroupConfig,
    TopicConfig,
    TopicRoute,
)

# As GET_ALL_SUBSCRIPTIONGROUP_CONFIG returns it from 5.5.0, plus a field no release has (yet).
GROUP_5X = {"attributes": {}, "brokerId": 0, "consumeBroadcastEnable": True, "consumeEnable": True,
            "consumeFromMinEnable": True, "consumeMessageOrderly": False, "consumeTimeoutMinute": 15,
            "groupName": "CG", "groupRetryPolicy": {"type": "CUSTOMIZED"}, "groupSysFlag": 0,
            "notifyConsumerIdsChangedEnable": True, "retryMaxTimes": 16, "retryQueueNums": 1,
            "whichBrokerWhenConsumeSlowly": 1, "someFutureField": {"x": [1]}}
GROUP_4X = {"brokerId": 0, "consumeBroadcastEnable": True, "consumeEnable": True, "consumeFromMinEnable": True,
            "groupName": "CG", "notifyConsumerIdsChangedEnable": True, "retryMaxTimes": 16, "retryQueueNums": 1,
            "whichBrokerWhenConsumeSlowly": 1}


def test_5x_group_round_trips_unknown_fields_and_sends_empty_attributes() -> None:
    config = SubscriptionGroupConfig.from_json({**GROUP_5X, "attributes": {"k": "v"}})
    config.retry_max_times = 3
    assert config.to_json() == {**GROUP_5X, "retryMaxTimes": 3}


def test_4x_group_has_no_retry_policy_and_writes_none() -> None:
    config = SubscriptionGroupConfig.from_json(GROUP_4X)
    assert config.group_retry_policy is None
    assert config.to_json() == {**GROUP_4X, "attributes": {}}


def test_retry_policies_are_typed_and_serialised_in_the_broker_shape() -> None:
    exponential = GroupRetryPolicy(RetryPolicyType.EXPONENTIAL, exponential=ExponentialRetryPolicy(1000, 60000, 2))
    customized = GroupRetryPolicy(customized=CustomizedRetryPolicy((1000, 5000)))
    assert json.dumps(exponential.to_json()) == (
        '{"type": "EXPONENTIAL", "exponentialRetryPolicy": {"initial": 1000, "max": 60000, "multiplier": 2}}')
    assert customized.to_json() == {"type": "CUSTOMIZED", "customizedRetryPolicy": {"next": [1000, 5000]}}
    for policy in (exponential, customized):
        assert GroupRetryPolicy.from_json(policy.to_json()) == policy


def test_unknown_policy_type_and_fields_are_kept() -> None:
    raw = {"type": "FIBONACCI", "fibonacciRetryPolicy": {"seed": 1}}
    assert GroupRetryPolicy.from_json(raw).to_json() == raw


@pytest.mark.parametrize("raw", [
    {**GROUP_4X, "retryMaxTimes": "3"}, {**GROUP_4X, "retryMaxTimes": True}, {**GROUP_4X, "groupName": None},
    {**GROUP_4X, "groupRetryPolicy": {"type": "EXPONENTIAL", "exponentialRetryPolicy": {"initial": 1}}},
    {**GROUP_4X, "groupRetryPolicy": {"customizedRetryPolicy": {"next": ["1s"]}}},
    {**GROUP_4X, "groupRetryPolicy": []},
])
def test_wrongly_typed_group_fields_raise_malformed_body(raw: dict[str, object]) -> None:
    with pytest.raises(MalformedBody):
        SubscriptionGroupConfig.from_json(raw)


def test_topic_config_round_trips_with_attributes_and_unknown_fields() -> None:
    raw = {"attributes": {"message.type": "NORMAL"}, "order": False, "perm": 6, "readQueueNums": 2,
           "topicFilterType": "SINGLE_TAG", "topicName": "T", "topicSysFlag": 0, "writeQueueNums": 2, "new": 1}
    config = TopicConfig.from_json(raw)
    assert config.attributes == {"message.type": "NORMAL"}
    assert config.extra == {"new": 1}
    assert config.to_json() == raw


def test_cluster_info_from_captured_body() -> None:
    info = ClusterInfo.from_json(loads_object(captured_command("v550_cluster_info_response").body))
    assert info.masters("bed") == [BrokerData("broker-a", "bed", {0: "127.0.0.1:20911"})]
    assert info.masters("other") == []


def test_masters_skips_broker_names_whose_master_is_gone() -> None:
    info = ClusterInfo.from_json({
        "brokerAddrTable": {"b": {"brokerName": "b", "cluster": "c", "brokerAddrs": {"1": "h:2"}},
                            "a": {"brokerName": "a", "cluster": "c", "brokerAddrs": {"0": "h:1", "1": "h:3"}},
                            "x": {"brokerName": "x", "cluster": "d", "brokerAddrs": {"0": "h:4"}}},
        "clusterAddrTable": {"c": ["a", "b", "gone"], "d": ["x"]}})
    assert [b.name for b in info.masters("c")] == ["a"]
    assert [b.master_addr for b in info.masters()] == ["h:1", "h:4"]


def test_topic_route_parses_brokers_and_queues() -> None:
    route = TopicRoute.from_json({
        "brokerDatas": [{"brokerAddrs": {"0": "h:1"}, "brokerName": "a", "cluster": "c"}],
        "queueDatas": [{"brokerName": "a", "perm": 6, "readQueueNums": 4, "topicSysFlag": 0, "writeQueueNums": 4}],
        "filterServerTable": {}})
    assert route.brokers[0].master_addr == "h:1"
    assert (route.queues[0].read_queue_nums, route.queues[0].perm) == (4, 6)


def test_non_numeric_broker_ids_are_malformed() -> None:
    with pytest.raises(MalformedBody, match="broker ids"):
        BrokerData.from_json({"brokerName": "a", "cluster": "c", "brokerAddrs": {"zero": "h:1"}})
