"""Admin's batched writes on the older 5.x lines the bed pins (issue 16), judged by what it sent and the broker said.

5.1.4 has neither list request (groups: code 225, 5.3.1+; topics: code 18, 5.3.0+) and answers each with
REQUEST_CODE_NOT_SUPPORTED, so there Admin writes one config per request and does not ask that broker again; 5.3.3
takes both list requests. Every request passes through a pool that keeps its code and the broker's answer.
"""

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from rocketmq_lab.bed import versions
from rocketmq_lab.bed.rocketmq import RocketMQCluster
from rocketmq_retry.remoting import (
    Admin,
    ConnectionPool,
    RemotingCommand,
    RequestCode,
    ResponseCode,
    SubscriptionGroupConfig,
    TopicConfig,
)
from tests.official import consumer_configs

pytestmark = pytest.mark.rocketmq_versions(*versions.ROCKETMQ_OLDER_LINES)

CONFIGS, BATCH_SIZE = 5, 2  # three list requests' worth
LISTS = {versions.ROCKETMQ_5_1: False, versions.ROCKETMQ_5_3: True}  # whether the broker has both list requests


class RecordingPool(ConnectionPool):
    """A ConnectionPool that keeps (address, request code, response code, remark) of every request it sent."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.sent: list[tuple[str, int, int, str | None]] = []

    async def invoke(self, addr: str, request: RemotingCommand, *,
                     timeout: float | None = None) -> RemotingCommand:  # noqa: ASYNC109 - ConnectionPool's signature
        response = await super().invoke(addr, request, timeout=timeout)
        self.sent.append((addr, request.code, response.code, response.remark))
        return response

    def answers(self, addr: str, *codes: RequestCode) -> list[tuple[int, int]]:
        """(request code, response code) of each request of `codes` sent to `addr`, in order."""
        return [(code, answer) for to, code, answer, _ in self.sent if to == addr and code in codes]


@pytest.fixture
async def pool() -> AsyncIterator[RecordingPool]:
    async with RecordingPool(request_timeout=15) as recording:
        yield recording


def _unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def _expected(version: str, one: RequestCode, listed: RequestCode) -> Sequence[tuple[int, int]]:
    """The requests that write CONFIGS configs in lists of BATCH_SIZE: lists where the broker has them, else one
    refused list request and then one request per config."""
    if LISTS[version]:
        return [(listed, ResponseCode.SUCCESS)] * -(-CONFIGS // BATCH_SIZE)
    return [(listed, ResponseCode.REQUEST_CODE_NOT_SUPPORTED)] + [(one, ResponseCode.SUCCESS)] * CONFIGS


async def test_groups_go_in_list_requests_where_the_broker_has_them_and_one_by_one_elsewhere(
        pool: RecordingPool, rocketmq_cluster: RocketMQCluster) -> None:
    broker = rocketmq_cluster.brokers[0]
    admin = Admin(pool, [rocketmq_cluster.namesrv_addr])
    names = [_unique("it_line") for _ in range(CONFIGS)]
    await admin.update_subscription_groups(
        broker.addr, [SubscriptionGroupConfig(name, retry_max_times=index, retry_queue_nums=2)
                      for index, name in enumerate(names)], batch_size=BATCH_SIZE)

    one, listed = RequestCode.UPDATE_AND_CREATE_SUBSCRIPTIONGROUP, RequestCode.UPDATE_AND_CREATE_SUBSCRIPTIONGROUP_LIST
    assert pool.answers(broker.addr, one, listed) == _expected(rocketmq_cluster.version, one, listed)
    if not LISTS[rocketmq_cluster.version]:
        refused = [remark for _, code, _, remark in pool.sent if code == listed]
        assert refused == [" request type 225 not supported"]
    stored = await admin.get_all_subscription_groups(broker.addr)
    assert {name: (stored[name].retry_max_times, stored[name].retry_queue_nums) for name in names} == {
        name: (index, 2) for index, name in enumerate(names)}
    official = await asyncio.to_thread(consumer_configs, rocketmq_cluster, names[-1])
    assert {name: (c["retryMaxTimes"], c["retryQueueNums"]) for name, c in official.items()} == {
        broker.name: (str(CONFIGS - 1), "2")}
    for name in names:
        await admin.delete_subscription_group(broker.addr, name, clean_offsets=False)


async def test_topics_go_in_list_requests_where_the_broker_has_them_and_one_by_one_elsewhere(
        pool: RecordingPool, rocketmq_cluster: RocketMQCluster) -> None:
    broker = rocketmq_cluster.brokers[0]
    admin = Admin(pool, [rocketmq_cluster.namesrv_addr])
    names = [_unique("it_line_topic") for _ in range(CONFIGS)]
    await admin.create_or_update_topics(
        broker.addr, [TopicConfig(name, read_queue_nums=index + 1, write_queue_nums=index + 1)
                      for index, name in enumerate(names)], batch_size=BATCH_SIZE)

    one, listed = RequestCode.UPDATE_AND_CREATE_TOPIC, RequestCode.UPDATE_AND_CREATE_TOPIC_LIST
    assert pool.answers(broker.addr, one, listed) == _expected(rocketmq_cluster.version, one, listed)
    stored = await admin.get_all_topic_configs(broker.addr)
    assert {name: (stored[name].read_queue_nums, stored[name].write_queue_nums) for name in names} == {
        name: (index + 1, index + 1) for index, name in enumerate(names)}
