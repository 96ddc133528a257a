"""The official 5.x gRPC push consumer through the proxy: where `groupRetryPolicy` decides the backoff (5.5.0 only).

Measured facts this pins down (rocketmq-python-client 5.1.2): a CUSTOMIZED backoff is followed, an EXPONENTIAL one is
not (the client only builds customized policies and otherwise waits its 1 s default, plus ~2 s until the proxy makes
the message visible again), and the proxy dead-letters after retryMaxTimes + 1 attempts whatever the client does.
"""

import asyncio
from itertools import pairwise

from rocketmq_chaos.experiments import create_topic, send_once_routed, unique
from rocketmq_chaos.grpc_probes import fail_every_delivery
from rocketmq_chaos.journal import Journal, Receive
from rocketmq_lab.bed.rocketmq import RocketMQCluster
from rocketmq_retry.domain.jsontypes import JsonObject
from rocketmq_retry.remoting import (
    Admin,
    ConnectionPool,
    Message,
    Producer,
    PullConsumer,
    SubscriptionGroupConfig,
    dlq_topic,
)
from tests.messaging import next_message

RUN_SECONDS = 25.0
# groupRetryPolicy bodies as the broker stores them (SubscriptionGroupConfig.group_retry_policy is raw JSON).
CUSTOMIZED: JsonObject = {"type": "CUSTOMIZED", "customizedRetryPolicy": {"next": [1000, 9000]}}
EXPONENTIAL: JsonObject = {"type": "EXPONENTIAL",
                           "exponentialRetryPolicy": {"initial": 6000, "max": 60000, "multiplier": 2}}


async def _failing_run(cluster: RocketMQCluster, policy: JsonObject) -> tuple[list[Receive], str]:
    """One message failed by a gRPC push consumer of a group with `policy` and retryMaxTimes 2; its DLQ copy's id."""
    assert cluster.proxy_endpoint is not None
    group = unique("grpc")
    journal = Journal()
    async with ConnectionPool(request_timeout=15) as pool:
        admin = Admin(pool, [cluster.namesrv_addr])
        for broker in cluster.brokers:
            await admin.update_subscription_group(
                broker.addr, SubscriptionGroupConfig(group, retry_max_times=2, group_retry_policy=policy))
        topic = await create_topic(admin, cluster, queues=1)
        sent = await send_once_routed(Producer(pool, [cluster.namesrv_addr]), Message(topic, b"fail me"), within=60)
        await asyncio.to_thread(fail_every_delivery, cluster.proxy_endpoint, topic, group, journal,
                                duration=RUN_SECONDS)
        _, dead = await next_message(PullConsumer(pool, [cluster.namesrv_addr], unique("grpc_dlq")),
                                     dlq_topic(group), {}, within=60)
    deliveries = sorted((r for r in journal.of(Receive) if r.msg_id == sent.msg_id), key=lambda r: r.t)
    return deliveries, dead.msg_id


async def test_customized_backoff_is_followed_and_exponential_is_not(proxied_cluster: RocketMQCluster) -> None:
    customized, exponential = await asyncio.gather(_failing_run(proxied_cluster, CUSTOMIZED),
                                                   _failing_run(proxied_cluster, EXPONENTIAL))
    for deliveries, dead_id in (customized, exponential):
        assert [r.reconsume_times for r in deliveries] == [0, 1, 2], deliveries  # retryMaxTimes 2 -> 3 attempts
        assert dead_id == deliveries[0].msg_id  # then the proxy dead-letters it, same id

    first, second = (later.t - earlier.t for earlier, later in pairwise(customized[0]))
    assert 1.0 <= first < 5.0, (first, second)  # 1 s, plus the proxy's lag
    assert second >= 9.0, (first, second)  # 9 s, plus the proxy's lag
    gaps = [later.t - earlier.t for earlier, later in pairwise(exponential[0])]
    assert all(gap < 6.0 for gap in gaps), gaps  # a 6 s initial backoff would make each gap at least 6 s
