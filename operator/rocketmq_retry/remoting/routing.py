"""Message queues from topic routes, and the Java producer's queue choice with latency fault avoidance, pure.

Follows the official client (`TopicPublishInfo`, `MQFaultStrategy`, `LatencyFaultToleranceImpl`) so that
failover measured with our producer means what it means for Java applications: round-robin over the
writable queues of brokers that have a master, skipping the broker of the previous attempt, and, when
latency fault avoidance is on, skipping brokers that recently failed or answered slowly.
"""

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final, Self

from .codes import Perm
from .errors import NoRoute
from .models import TopicRoute

# MQFaultStrategy: a send that took at least latency_max[i] ms makes the broker unavailable for
# not_available[i] ms; a failed send counts as 10 s (isolation).
_LATENCY_MAX_MS: Final = (50, 100, 550, 1800, 3000, 5000, 15000)
_NOT_AVAILABLE_MS: Final = (0, 0, 2000, 5000, 6000, 10000, 30000)
_ISOLATION_MS: Final = 10000


@dataclass(frozen=True, order=True)
class MessageQueue:
    topic: str
    broker_name: str
    queue_id: int

    def __str__(self) -> str:
        return f"{self.topic}@{self.broker_name}#{self.queue_id}"


@dataclass(frozen=True)
class PublishInfo:
    """Where a topic can be written: queues in the Java client's order, and each broker's master address."""

    topic: str
    queues: tuple[MessageQueue, ...]
    masters: Mapping[str, str]

    @classmethod
    def from_route(cls, topic: str, route: TopicRoute) -> Self:
        masters = master_addresses(route)
        queues = tuple(
            MessageQueue(topic, data.broker_name, queue_id)
            for data in sorted(route.queues, key=lambda q: q.broker_name)
            if data.perm & Perm.WRITE and data.broker_name in masters
            for queue_id in range(data.write_queue_nums)
        )
        return cls(topic, queues, masters)


def readable_queues(topic: str, route: TopicRoute) -> list[MessageQueue]:
    """The queues a consumer reads (`topicRouteData2TopicSubscribeInfo`): readable brokers' read queues."""
    return sorted(MessageQueue(topic, data.broker_name, queue_id)
                  for data in route.queues if data.perm & Perm.READ
                  for queue_id in range(data.read_queue_nums))


def master_addresses(route: TopicRoute) -> dict[str, str]:
    return {b.name: b.master_addr for b in route.brokers if b.master_addr}


class FaultTable:
    """Per broker: until when it counts as unavailable, and whether it was reachable at all."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._available_from: dict[str, float] = {}
        self._reachable: dict[str, bool] = {}

    def update(self, broker: str, latency: float, *, isolate: bool, reachable: bool) -> None:
        """Record one send to `broker` that took `latency` seconds (`isolate` for a failed send)."""
        latency_ms = _ISOLATION_MS if isolate else latency * 1000
        pause_ms = next((pause for bound, pause in zip(reversed(_LATENCY_MAX_MS), reversed(_NOT_AVAILABLE_MS),
                                                        strict=True) if latency_ms >= bound), 0)
        self._available_from[broker] = self._clock() + pause_ms / 1000
        self._reachable[broker] = reachable

    def available(self, broker: str) -> bool:
        return self._clock() >= self._available_from.get(broker, float("-inf"))

    def reachable(self, broker: str) -> bool:
        return self._reachable.get(broker, True)


QueueFilter = Callable[[MessageQueue], bool]


class QueueSelector:
    """Round robin over a topic's queues with the filters of `MQFaultStrategy.selectOneMessageQueue`."""

    def __init__(self, faults: FaultTable, *, latency_fault_enabled: bool, rng: random.Random | None = None) -> None:
        self.faults = faults
        self.latency_fault_enabled = latency_fault_enabled
        self._rng = rng or random.Random()
        self._index = self._rng.randrange(2**31)

    def reset(self) -> None:
        """A new random start, as Java's `ThreadLocalIndex.reset` does before each retry."""
        self._index = self._rng.randrange(2**31)

    def select(self, info: PublishInfo, last_broker: str | None) -> MessageQueue:
        if not info.queues:
            raise NoRoute(f"topic {info.topic} has no writable queue on a broker with a master")

        def not_last(queue: MessageQueue) -> bool:
            return last_broker is None or queue.broker_name != last_broker

        def healthy_and_not_last(healthy: Callable[[str], bool]) -> QueueFilter:
            return lambda queue: healthy(queue.broker_name) and not_last(queue)

        if self.latency_fault_enabled:
            for healthy in (self.faults.available, self.faults.reachable):
                chosen = self._first(info.queues, healthy_and_not_last(healthy))
                if chosen is not None:
                    return chosen
            return self._next(info.queues)
        return self._first(info.queues, not_last) or self._next(info.queues)

    def _next(self, queues: tuple[MessageQueue, ...]) -> MessageQueue:
        self._index = (self._index + 1) % 2**31
        return queues[self._index % len(queues)]

    def _first(self, queues: tuple[MessageQueue, ...], accept: QueueFilter) -> MessageQueue | None:
        for _ in queues:
            queue = self._next(queues)
            if accept(queue):
                return queue
        return None
