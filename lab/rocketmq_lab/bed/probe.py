"""The bed's synchronous calls through our own remoting client (fast, no JVM start per question)."""

import asyncio

from rocketmq_retry.remoting.admin import Admin
from rocketmq_retry.remoting.connection import ConnectionPool
from rocketmq_retry.remoting.errors import ConnectionFailed, RemotingError, RemotingTimeout
from rocketmq_retry.remoting.models import TopicConfig


async def _brokers(namesrv_addr: str, cluster_name: str) -> dict[str, dict[int, str]]:
    async with ConnectionPool(connect_timeout=2.0, request_timeout=5.0) as pool:
        info = await Admin(pool, [namesrv_addr]).cluster_info()
    return {name: dict(info.brokers[name].addrs) for name in info.clusters.get(cluster_name, ())
            if name in info.brokers}


def registered_brokers(namesrv_addr: str, cluster_name: str) -> dict[str, dict[int, str]]:
    """Broker name -> broker id -> address registered for `cluster_name` (id 0 is the master); empty while the name
    server is unreachable."""
    try:
        return asyncio.run(_brokers(namesrv_addr, cluster_name))
    except (ConnectionFailed, RemotingTimeout):
        return {}


async def _create_topic(namesrv_addr: str, master_addrs: list[str], topic: str, queues: int) -> None:
    async with ConnectionPool(connect_timeout=2.0, request_timeout=10.0) as pool:
        admin = Admin(pool, [namesrv_addr])
        config = TopicConfig(topic_name=topic, read_queue_nums=queues, write_queue_nums=queues)
        await asyncio.gather(*(admin.create_or_update_topic(addr, config) for addr in master_addrs))


async def _routed_brokers(namesrv_addr: str, topic: str) -> set[str]:
    async with ConnectionPool(connect_timeout=2.0, request_timeout=5.0) as pool:
        route = await Admin(pool, [namesrv_addr]).topic_route(topic)
    return {addr for broker in route.brokers for addr in broker.addrs.values()}


def create_topic(namesrv_addr: str, master_addrs: list[str], topic: str, queues: int) -> None:
    """Create `topic` on every master (read/write, `queues` queues); the brokers register it themselves."""
    asyncio.run(_create_topic(namesrv_addr, master_addrs, topic, queues))


def routed_brokers(namesrv_addr: str, topic: str) -> set[str]:
    """Broker addresses the name server routes `topic` to; empty if it has no route (yet)."""
    try:
        return asyncio.run(_routed_brokers(namesrv_addr, topic))
    except (ConnectionFailed, RemotingError):
        return set()
