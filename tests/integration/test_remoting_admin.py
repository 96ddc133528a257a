"""The remoting admin client against real name servers and brokers (every bed version)."""

import asyncio
import uuid

import pytest

from rocketmq_lab.bed.rocketmq import RocketMQCluster
from rocketmq_retry.domain.expiry import file_reserved_hours
from rocketmq_retry.remoting import (
    Admin,
    BrokerError,
    Perm,
    RemotingCommand,
    RequestCode,
    ResponseCode,
    SubscriptionGroupConfig,
    TopicConfig,
)
from tests.official import consumer_configs


def _unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"



def _is5(cluster: RocketMQCluster) -> bool:
    return cluster.version.startswith("5.")


async def test_cluster_info_lists_every_master(admin: Admin, rocketmq_cluster: RocketMQCluster) -> None:
    info = await admin.cluster_info()
    masters = {b.name: b.master_addr for b in info.masters(rocketmq_cluster.cluster_name)}
    assert masters == {b.name: b.addr for b in rocketmq_cluster.brokers}
    config = await admin.get_broker_config(rocketmq_cluster.brokers[0].addr)
    assert config["brokerName"] == rocketmq_cluster.brokers[0].name
    assert len(config["messageDelayLevel"].split(" ")) == 18
    assert file_reserved_hours(config) == 72  # MessageStoreConfig's default, which DeadLettersExpiring reads


async def test_group_lifecycle_on_every_master(admin: Admin, rocketmq_cluster: RocketMQCluster) -> None:
    name = _unique("it_group")
    policy = {"type": "EXPONENTIAL", "exponentialRetryPolicy": {"initial": 1000, "max": 60000, "multiplier": 2}}
    for broker in rocketmq_cluster.brokers:
        wanted = SubscriptionGroupConfig(name, retry_max_times=3, retry_queue_nums=2, group_retry_policy=policy)
        await admin.update_subscription_group(broker.addr, wanted)
        stored = await admin.get_subscription_group(broker.addr, name)
        assert stored is not None
        assert (stored.retry_max_times, stored.retry_queue_nums) == (3, 2)
        if _is5(rocketmq_cluster):
            assert stored.group_retry_policy == policy
            assert stored.extra["consumeTimeoutMinute"] == 15  # a 5.x-only field, carried in `extra`
        else:
            assert stored.group_retry_policy is None  # 4.x drops what it does not know

        stored.retry_max_times = 5
        await admin.update_subscription_group(broker.addr, stored)
        again = await admin.get_subscription_group(broker.addr, name)
        assert again == stored

    official = await asyncio.to_thread(consumer_configs, rocketmq_cluster, name)
    assert {broker: (c["retryMaxTimes"], c["retryQueueNums"]) for broker, c in official.items()} == {
        b.name: ("5", "2") for b in rocketmq_cluster.brokers}
    for broker in rocketmq_cluster.brokers:
        await admin.delete_subscription_group(broker.addr, name, clean_offsets=True)
        assert await admin.get_subscription_group(broker.addr, name) is None


async def test_batch_update_works_on_every_version(admin: Admin, rocketmq_cluster: RocketMQCluster) -> None:
    broker = rocketmq_cluster.brokers[0]
    names = [_unique("it_batch") for _ in range(3)]
    await admin.update_subscription_groups(
        broker.addr, [SubscriptionGroupConfig(n, retry_max_times=i) for i, n in enumerate(names)])
    groups = await admin.get_all_subscription_groups(broker.addr)
    assert [groups[n].retry_max_times for n in names] == [0, 1, 2]

    probe = await admin.pool.invoke(broker.addr, RemotingCommand(
        code=RequestCode.UPDATE_AND_CREATE_SUBSCRIPTIONGROUP_LIST, body=b'{"groupConfigList":[]}'))
    expected = ResponseCode.SUCCESS if _is5(rocketmq_cluster) else ResponseCode.REQUEST_CODE_NOT_SUPPORTED
    assert probe.code == expected
    for name in names:
        await admin.delete_subscription_group(broker.addr, name, clean_offsets=False)


async def test_topic_permission_change_reaches_the_route(admin: Admin, rocketmq_cluster: RocketMQCluster) -> None:
    topic = _unique("it_topic")
    broker = rocketmq_cluster.brokers[0]
    await admin.create_or_update_topic(broker.addr, TopicConfig(topic, read_queue_nums=2, write_queue_nums=2))
    config = (await admin.get_all_topic_configs(broker.addr))[topic]
    assert (config.perm, config.read_queue_nums) == (Perm.READ | Perm.WRITE, 2)

    config.perm = Perm.READ
    await admin.create_or_update_topic(broker.addr, config)
    assert (await admin.get_all_topic_configs(broker.addr))[topic].perm == Perm.READ
    route = await admin.topic_route(topic)
    assert [(q.broker_name, q.perm) for q in route.queues] == [(broker.name, Perm.READ)]


async def test_offsets(admin: Admin, rocketmq_cluster: RocketMQCluster) -> None:
    topic, group = _unique("it_offsets"), _unique("it_offsets_group")
    broker = rocketmq_cluster.brokers[0]
    await admin.create_or_update_topic(broker.addr, TopicConfig(topic, read_queue_nums=1, write_queue_nums=1))
    await admin.update_subscription_group(broker.addr, SubscriptionGroupConfig(group))
    assert await admin.max_offset(broker.addr, topic, 0) == 0
    assert await admin.min_offset(broker.addr, topic, 0) == 0
    if _is5(rocketmq_cluster):
        assert await admin.query_consumer_offset(broker.addr, group, topic, 0) is None
    await admin.update_consumer_offset(broker.addr, group, topic, 0, 0)
    assert await admin.query_consumer_offset(broker.addr, group, topic, 0) == 0


async def test_missing_topic_route_is_a_named_broker_error(admin: Admin) -> None:
    with pytest.raises(BrokerError, match=r"GET_ROUTEINFO_BY_TOPIC\(105\) failed with TOPIC_NOT_EXIST\(17\)") as error:
        await admin.topic_route(_unique("it_missing"))
    assert error.value.code == ResponseCode.TOPIC_NOT_EXIST
