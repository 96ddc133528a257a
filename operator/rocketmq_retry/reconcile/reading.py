"""Reading a cluster: its masters (and their slaves) from the name servers, then each master's version, delay levels
and groups, once, and each slave's groups.

Groups are read with GET_ALL_SUBSCRIPTIONGROUP_CONFIG only: the single-group read (352) goes through the broker's
find-or-create path and would create the group while looking at it.
"""

import asyncio
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from rocketmq_retry.domain.broker import BrokerLine, broker_line
from rocketmq_retry.domain.durations import DurationError, parse_delay_levels
from rocketmq_retry.domain.jsontypes import JsonObject
from rocketmq_retry.domain.spec import ClusterRef
from rocketmq_retry.remoting.errors import RemotingError
from rocketmq_retry.remoting.models import (
    MASTER_ID,
    ClusterInfo,
    ConsumerConnection,
    QueueOffsets,
    SubscriptionGroupConfig,
    TopicConfig,
)

RETRY_TOPIC_PREFIX = "%RETRY%"
_T = TypeVar("_T")


class ClusterAdmin(Protocol):
    """The admin calls the reconciler makes; rocketmq_retry.remoting.Admin implements them."""

    async def cluster_info(self) -> ClusterInfo: ...
    async def broker_runtime_info(self, addr: str) -> dict[str, str]: ...
    async def get_broker_config(self, addr: str) -> dict[str, str]: ...
    async def get_all_subscription_groups(self, addr: str) -> dict[str, SubscriptionGroupConfig]: ...
    async def get_all_topic_configs(self, addr: str) -> dict[str, TopicConfig]: ...
    async def create_or_update_topics(self, addr: str, configs: Sequence[TopicConfig]) -> None: ...
    async def update_subscription_groups(self, addr: str, configs: Sequence[SubscriptionGroupConfig]) -> None: ...
    async def consumer_connection(self, addr: str, group: str) -> ConsumerConnection | None: ...
    async def consumer_running_info(self, addr: str, group: str, client_id: str) -> dict[str, str]: ...
    async def consume_stats(self, addr: str, group: str, topic: str) -> tuple[QueueOffsets, ...]: ...


class ReadFailed(Exception):
    """A name server or broker could not be read; the message is meant for status."""


@dataclass(frozen=True)
class Slave:
    broker_id: int
    addr: str


@dataclass(frozen=True)
class Master:
    """A broker name's master, the only node the operator writes to, with the slaves that copy it.

    A master is known by its name and address: a slave that comes or goes is not a new master (the slaves take no
    part in equality, so reads kept per master survive it).
    """

    name: str
    addr: str
    slaves: tuple[Slave, ...] = field(default=(), compare=False)


@dataclass(frozen=True)
class BrokerSnapshot:
    """What one master holds, read once per pass."""

    master: Master
    version: str
    line: BrokerLine
    delay_levels_ms: tuple[int, ...]
    auto_create_subscription_group: bool | None
    groups: Mapping[str, JsonObject]
    retry_topics: Mapping[str, TopicConfig]  # group -> its %RETRY% topic, for existing retry topics
    topics_read: bool = True  # False: the topic table was skipped, so retry_topics is empty, not read


async def bounded(call: Awaitable[_T], call_timeout: float, what: str) -> _T:
    """Await one remoting call within `call_timeout`; every failure becomes ReadFailed naming `what`."""
    try:
        async with asyncio.timeout(call_timeout):
            return await call
    except TimeoutError:
        raise ReadFailed(f"{what}: no answer within {call_timeout:g} s") from None
    except (RemotingError, OSError, ValueError) as error:
        raise ReadFailed(f"{what}: {error}") from error


async def discover_masters(admin: ClusterAdmin, cluster: ClusterRef, call_timeout: float) -> list[Master]:
    """The masters the name servers report, of `cluster.broker_cluster_name` or of every broker cluster, each with
    the slaves registered under its broker name (ids other than 0)."""
    info = await bounded(admin.cluster_info(), call_timeout, "name servers")
    return [Master(data.name, data.master_addr, tuple(Slave(broker_id, addr) for broker_id, addr
                                                      in sorted(data.addrs.items()) if broker_id != MASTER_ID))
            for data in info.masters(cluster.broker_cluster_name) if data.master_addr is not None]


async def read_slave_groups(admin: ClusterAdmin, master: Master, slave: Slave,
                            call_timeout: float) -> Mapping[str, JsonObject]:
    """The groups a slave holds: what its master held at its last copy (4.x and 5.x copy every 10 s)."""
    where = f"{master.name} slave {slave.broker_id} ({slave.addr})"
    groups = await bounded(admin.get_all_subscription_groups(slave.addr), call_timeout, f"{where} subscription groups")
    return {name: group.to_json() for name, group in groups.items()}


async def read_broker(admin: ClusterAdmin, master: Master, call_timeout: float, *,
                      with_topics: bool = True) -> BrokerSnapshot:
    """Version, delay levels, autoCreateSubscriptionGroup, all groups and (`with_topics`) the retry topics.

    The topic table can be large and serves only the retry topics, so passes that write no group and whose policies
    set no retryQueues skip it.
    """
    where = f"{master.name} ({master.addr})"
    runtime = await bounded(admin.broker_runtime_info(master.addr), call_timeout, f"{where} runtime info")
    config = await bounded(admin.get_broker_config(master.addr), call_timeout, f"{where} broker config")
    groups = await bounded(admin.get_all_subscription_groups(master.addr), call_timeout, f"{where} subscription groups")
    topics = await bounded(admin.get_all_topic_configs(master.addr), call_timeout, f"{where} topics") \
        if with_topics else {}
    version = runtime.get("brokerVersionDesc", "")
    try:
        line = broker_line(version)
        levels = parse_delay_levels(config.get("messageDelayLevel", ""))
    except (ValueError, DurationError) as error:
        raise ReadFailed(f"{where}: {error}") from error
    auto_create = config.get("autoCreateSubscriptionGroup")
    return BrokerSnapshot(
        master=master,
        version=version,
        line=line,
        delay_levels_ms=levels,
        auto_create_subscription_group=None if auto_create is None else auto_create.strip().lower() == "true",
        groups={name: group.to_json() for name, group in groups.items()},
        retry_topics={name.removeprefix(RETRY_TOPIC_PREFIX): topic
                      for name, topic in topics.items() if name.startswith(RETRY_TOPIC_PREFIX)},
        topics_read=with_topics,
    )
