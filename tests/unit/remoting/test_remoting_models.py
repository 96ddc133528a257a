"""Config models keep unknown and oddly typed fields through read-modify-write and interpret none of them."""

import pytest
from remoting_support import captured_command

from rocketmq_retry.remoting.errors import MalformedBody
from rocketmq_retry.remoting.fastjson import loads_object
from rocketmq_retry.remoting.models import (
    BrokerData,
    ClusterInfo,
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


@pytest.mark.parametrize("policy", [
    {"type": "EXPONENTIAL", "exponentialRetryPolicy": {"initial": 1000, "max": 60000, "multiplier": 2}},
    {"type": "CUSTOMIZED", "customizedRetryPolicy": {"next": [1000, 5000]}},
    # Odd bodies are the domain's to judge (rocketmq_retry.domain.retry_policy): here they only travel.
    {"type": "FIBONACCI", "fibonacciRetryPolicy": {"seed": 1}},
    {"type": "EXPONENTIAL", "exponentialRetryPolicy": {"initial": "1s"}},
    {"customizedRetryPolicy": {"next": ["1s", None, 1.5]}},
    {"type": None, "customizedRetryPolicy": []},
    [], "CUSTOMIZED", 7,
])
def test_group_retry_policy_is_raw_json_and_written_back_unchanged(policy: object) -> None:
    config = SubscriptionGroupConfig.from_json({**GROUP_5X, "groupRetryPolicy": policy})
    assert config.group_retry_policy == policy
    assert "groupRetryPolicy" not in config.extra
    assert config.to_json() == {**GROUP_5X, "groupRetryPolicy": policy}


def test_null_group_retry_policy_is_absent() -> None:
    config = SubscriptionGroupConfig.from_json({**GROUP_5X, "groupRetryPolicy": None})
    assert config.group_retry_policy is None
    assert "groupRetryPolicy" not in config.to_json()


@pytest.mark.parametrize("odd", [{"retryMaxTimes": "3"}, {"retryMaxTimes": True}, {"consumeEnable": 1},
                                 {"brokerId": 0.5}, {"retryQueueNums": [1]}])
def test_wrongly_typed_group_fields_stay_as_sent(odd: dict[str, object]) -> None:
    config = SubscriptionGroupConfig.from_json({**GROUP_4X, **odd})
    ((key, value),) = odd.items()
    assert config.extra[key] == value
    assert config.to_json() == {**GROUP_4X, **odd, "attributes": {}}


def test_a_field_set_after_reading_replaces_the_odd_value() -> None:
    config = SubscriptionGroupConfig.from_json({**GROUP_4X, "retryMaxTimes": "3"})
    assert config.retry_max_times is None
    config.retry_max_times = 5
    assert config.to_json()["retryMaxTimes"] == 5


def test_a_new_group_sends_only_what_is_set_so_the_broker_applies_its_defaults() -> None:
    assert SubscriptionGroupConfig("g", retry_max_times=3).to_json() == {
        "groupName": "g", "retryMaxTimes": 3, "attributes": {}}


def test_null_fields_are_not_set() -> None:
    config = SubscriptionGroupConfig.from_json({**GROUP_4X, "retryMaxTimes": None})
    assert config.retry_max_times is None
    assert "retryMaxTimes" not in config.to_json()


@pytest.mark.parametrize("raw", [{**GROUP_4X, "groupName": None}, {**GROUP_4X, "groupName": 5},
                                 {k: v for k, v in GROUP_4X.items() if k != "groupName"}])
def test_a_group_without_a_name_raises_malformed_body(raw: dict[str, object]) -> None:
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
