"""Fixtures the integration tests share on top of tests/conftest.py's real brokers."""

from collections.abc import AsyncIterator

import pytest

from rocketmq_lab.bed.rocketmq import RocketMQCluster
from rocketmq_retry.remoting import Admin, ConnectionPool


@pytest.fixture
async def admin(rocketmq_cluster: RocketMQCluster) -> AsyncIterator[Admin]:
    """Our admin client on the bed's name server (a read of every group can take a while on a busy machine)."""
    async with ConnectionPool(request_timeout=15) as pool:
        yield Admin(pool, [rocketmq_cluster.namesrv_addr])
