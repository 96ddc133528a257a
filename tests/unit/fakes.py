"""An in-memory RocketMQ cluster behind the admin calls the reconciler makes, recording every write; and a clock the
test moves by hand."""

import asyncio
import copy
import heapq
import itertools
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from rocketmq_retry.controller.config import OperatorConfig
from rocketmq_retry.controller.records import ClaimKey, PolicyRecord, claim_key
from rocketmq_retry.domain.broker import DEFAULT_MESSAGE_DELAY_LEVEL
from rocketmq_retry.remoting.codes import RequestCode, ResponseCode
from rocketmq_retry.remoting.errors import BrokerError, ConnectionFailed
from rocketmq_retry.remoting.models import (
    BrokerData,
    ClientConnection,
    ClusterInfo,
    ConsumerConnection,
    QueueOffsets,
    SubscriptionGroupConfig,
    TopicConfig,
)

_V4_DROPPED = ("groupRetryPolicy", "attributes", "consumeTimeoutMinute", "groupSysFlag", "consumeMessageOrderly")


@dataclass
class FakeBroker:
    name: str  # brokerName, shared by a master and its slaves
    addr: str
    version: str = "V5_5_0"
    broker_id: int = 0  # 0 master, > 0 slave
    delay_levels: str = DEFAULT_MESSAGE_DELAY_LEVEL
    auto_create: bool = True
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    topics: dict[str, TopicConfig] = field(default_factory=dict)
    # group -> (message model, client id -> running info properties; None: the client cannot answer)
    consumers: dict[str, tuple[str, dict[str, dict[str, str] | None]]] = field(default_factory=dict)
    running_info_calls: int = 0
    retry_offsets: dict[str, list[tuple[int, int]]] = field(default_factory=dict)  # group -> (max, committed) per queue
    down: bool = False  # refuses connections
    stalled: bool = False  # accepts but never answers
    writes: list[list[str]] = field(default_factory=list)  # group names per update call
    topic_writes: list[list[str]] = field(default_factory=list)  # topic names per update call
    topic_reads: int = 0
    group_reads: int = 0

    @property
    def is4(self) -> bool:
        return self.version.startswith("V4")

    def copy_from(self, master: "FakeBroker") -> None:
        """A slave's periodic copy of its master's group table (SlaveSynchronize.syncSubscriptionGroupConfig)."""
        self.groups = copy.deepcopy(master.groups)

    def store(self, config: dict[str, Any]) -> None:
        """What the broker keeps of a written config: 4.x drops the fields it does not know."""
        kept = copy.deepcopy(config)
        if self.is4:
            for key in _V4_DROPPED:
                kept.pop(key, None)
        self.groups[str(kept["groupName"])] = kept


class FakeAdmin:
    def __init__(self, brokers: Sequence[FakeBroker], cluster_name: str = "bed") -> None:
        self.brokers = {broker.addr: broker for broker in brokers}
        self.cluster_name = cluster_name
        self.namesrv_down = False

    def broker(self, name: str) -> FakeBroker:
        return next(b for b in self.brokers.values() if b.name == name)

    async def _reach(self, addr: str) -> FakeBroker:
        broker = self.brokers[addr]
        if broker.down:
            raise ConnectionFailed(addr, "connect failed: ConnectionRefusedError(111)")
        if broker.stalled:
            await asyncio.Event().wait()
        return broker

    async def cluster_info(self) -> ClusterInfo:
        if self.namesrv_down:
            raise ConnectionFailed("127.0.0.1:9876", "connect failed: ConnectionRefusedError(111)")
        addrs: dict[str, dict[int, str]] = {}
        for broker in self.brokers.values():
            addrs.setdefault(broker.name, {})[broker.broker_id] = broker.addr
        brokers = {name: BrokerData(name, self.cluster_name, by_id) for name, by_id in addrs.items()}
        return ClusterInfo(brokers, {self.cluster_name: tuple(brokers)})

    async def broker_runtime_info(self, addr: str) -> dict[str, str]:
        return {"brokerVersionDesc": (await self._reach(addr)).version}

    async def get_broker_config(self, addr: str) -> dict[str, str]:
        broker = await self._reach(addr)
        auto_create = str(broker.auto_create).lower()
        return {"messageDelayLevel": broker.delay_levels, "autoCreateSubscriptionGroup": auto_create,
                "brokerName": broker.name}

    async def get_all_subscription_groups(self, addr: str) -> dict[str, SubscriptionGroupConfig]:
        broker = await self._reach(addr)
        broker.group_reads += 1
        return {name: SubscriptionGroupConfig.from_json(raw) for name, raw in broker.groups.items()}

    async def get_all_topic_configs(self, addr: str) -> dict[str, TopicConfig]:
        broker = await self._reach(addr)
        broker.topic_reads += 1
        return dict(broker.topics)

    async def create_or_update_topics(self, addr: str, configs: Sequence[TopicConfig]) -> None:
        broker = await self._reach(addr)
        broker.topic_writes.append([config.topic_name for config in configs])
        broker.topics |= {config.topic_name: copy.deepcopy(config) for config in configs}

    async def update_subscription_groups(self, addr: str, configs: Sequence[SubscriptionGroupConfig]) -> None:
        broker = await self._reach(addr)
        broker.writes.append([config.group_name for config in configs])
        if broker.broker_id != 0 and broker.is4:
            raise BrokerError(ResponseCode.SYSTEM_ERROR, "Can't modify topic or subscription group from slave broker",
                              RequestCode.UPDATE_AND_CREATE_SUBSCRIPTIONGROUP, addr)
        for config in configs:
            broker.store(config.to_json())

    async def consumer_connection(self, addr: str, group: str) -> ConsumerConnection | None:
        broker = await self._reach(addr)
        if group not in broker.consumers:
            return None
        model, clients = broker.consumers[group]
        return ConsumerConnection(tuple(ClientConnection(client_id, "127.0.0.1:40000", "JAVA", 513)
                                        for client_id in clients), "CONSUME_PASSIVELY", model, (group,))

    async def consumer_running_info(self, addr: str, group: str, client_id: str) -> dict[str, str]:
        broker = await self._reach(addr)
        broker.running_info_calls += 1
        properties = broker.consumers.get(group, ("", {}))[1].get(client_id)
        if properties is None:
            raise BrokerError(ResponseCode.SYSTEM_ERROR, f"The Consumer <{group}> <{client_id}> not online",
                              RequestCode.GET_CONSUMER_RUNNING_INFO, addr)
        return properties


    async def consume_stats(self, addr: str, group: str, topic: str) -> tuple[QueueOffsets, ...]:
        broker = await self._reach(addr)
        assert topic == f"%RETRY%{group}", topic  # the census reads the retry topic only
        return tuple(QueueOffsets(topic, broker.name, queue, end, committed)
                     for queue, (end, committed) in enumerate(broker.retry_offsets.get(group, [])))


def java_push_consumer(max_reconsume_times: int = -1, *, orderly: bool = False,
                       model: str = "CLUSTERING") -> dict[str, str]:
    """Running info properties of the official Java push consumer, as far as the census reads them."""
    return {"maxReconsumeTimes": str(max_reconsume_times), "PROP_CONSUMEORDERLY": str(orderly).lower(),
            "suspendCurrentQueueTimeMillis": "1000", "consumeTimeout": "15", "messageModel": model}


def two_masters(version: str = "V5_5_0") -> FakeAdmin:
    return FakeAdmin([FakeBroker("broker-a", "127.0.0.1:10911", version),
                      FakeBroker("broker-b", "127.0.0.1:10921", version)])


def claims(*records: PolicyRecord, config: OperatorConfig | None = None) -> dict[ClaimKey | None, list[PolicyRecord]]:
    """The claims index kopf would hold for these policies."""
    index: defaultdict[ClaimKey | None, list[PolicyRecord]] = defaultdict(list)
    for record in records:
        index[claim_key(record, config or OperatorConfig())].append(record)
    return index


@dataclass
class FakeTimer:
    due: float
    callback: Callable[[], None]
    cancelled: bool = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeClock:
    """The control loop's clock in unit tests: time moves only by `advance`, which runs the timers that came due."""

    def __init__(self, start: datetime) -> None:
        self.start = start
        self.elapsed = 0.0
        self._timers: list[tuple[float, int, FakeTimer]] = []
        self._order = itertools.count()

    def now(self) -> datetime:
        return self.start + timedelta(seconds=self.elapsed)

    def call_later(self, delay: float, callback: Callable[[], None]) -> FakeTimer:
        timer = FakeTimer(self.elapsed + delay, callback)
        heapq.heappush(self._timers, (timer.due, next(self._order), timer))
        return timer

    def fire_due(self) -> bool:
        """Run the timers due by now, in order; whether any ran."""
        fired = False
        while self._timers and self._timers[0][0] <= self.elapsed:
            _, _, timer = heapq.heappop(self._timers)
            if not timer.cancelled:
                timer.callback()
                fired = True
        return fired

    def next_due(self) -> float | None:
        live = [due for due, _, timer in self._timers if not timer.cancelled]
        return min(live) if live else None
