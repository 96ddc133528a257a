"""The retries a group's live consumers really get, from what the brokers and the clients themselves report (pure).

Which limit a consumer dead-letters after depends on the client, not on the group alone (RocketMQ 4.9.7 and 5.x):

* Remoting push consumers, concurrent, CLUSTERING (`ConsumeMessageConcurrentlyService`): every send-back carries the
  client's own `maxReconsumeTimes` (-1, the default, is sent as 16: `DefaultMQPushConsumerImpl.getMaxReconsumeTimes`),
  and the broker uses it instead of the group's retryMaxTimes. The delays are the broker's delay levels.
* Remoting push consumers, orderly (`ConsumeMessageOrderlyService`): a failed message is redelivered in place by the
  client every `suspendCurrentQueueTimeMillis`, without the broker; with -1 (the default) the limit is
  Integer.MAX_VALUE, so it is never dead-lettered; a finite limit sends it to the DLQ once reached.
* BROADCASTING consumers never retry: the client drops a failed message.
* Pop consumers and gRPC clients of the 5.x proxy follow the group: retryMaxTimes, and for gRPC its backoff.

Settings come from GET_CONSUMER_RUNNING_INFO, which the broker forwards to the client; a client that does not answer
(another language, an old version) is reported with what its connection alone tells. A proxy in cluster mode keeps
its gRPC clients to itself: only its own connection list names them, and nothing in that list marks them as gRPC but
their client id (`is_grpc_client_id`).
"""

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from rocketmq_retry.domain.conditions import EFFECTIVE_RETRIES_DIFFER, RETRIES_NOT_APPLICABLE, Observation
from rocketmq_retry.domain.durations import format_duration
from rocketmq_retry.domain.ladder import remoting_ladder

JAVA_CONCURRENT_DEFAULT_LIMIT: Final = 16  # DefaultMQPushConsumerImpl.getMaxReconsumeTimes: -1 means 16
JAVA_DEFAULT_SUSPEND_MS: Final = 1000  # DefaultMQPushConsumer.suspendCurrentQueueTimeMillis
CLIENT_IDS_SHOWN: Final = 10  # client ids listed per kind in status; the count covers them all
# The gRPC SDKs' client id (Java ClientId, Python rocketmq.v5.util.client_id): host@pid@index@base36 of the time.
_GRPC_CLIENT_ID: Final = re.compile(r"[^@]+@[0-9]+@[0-9]+@[0-9a-z]+")


def is_grpc_client_id(client_id: str) -> bool:
    """Whether a client seen only on a proxy is one of its gRPC clients. Remoting clients name themselves
    ip@instanceName, the default instance name being pid#nanoTime (ClientConfig.buildMQClientId), or
    ip@instanceName@unitName: never four parts of which the middle two are numbers. The version a proxy reports is
    its own for every gRPC client, so it tells nothing."""
    return _GRPC_CLIENT_ID.fullmatch(client_id) is not None


class ConsumerKind(StrEnum):
    CONCURRENT = "RemotingConcurrent"
    ORDERLY = "RemotingOrderly"
    BROADCAST = "Broadcast"
    POP = "Pop"
    GRPC = "gRPC"
    UNKNOWN = "Unknown"  # connected, but its settings could not be read


@dataclass(frozen=True)
class ClientSettings:
    """What a remoting client answered about itself (its running info properties)."""

    max_reconsume_times: int  # as configured: -1 is the client's default
    orderly: bool
    suspend_ms: int = JAVA_DEFAULT_SUSPEND_MS
    broadcasting: bool = False


@dataclass(frozen=True)
class LiveConsumer:
    """One client instance connected to a master for the group, as the broker's connection list shows it."""

    client_id: str
    language: str
    version: int
    message_model: str  # the group's on that broker, from its latest heartbeat: CLUSTERING or BROADCASTING
    consume_type: str  # the group's on that broker: CONSUME_PASSIVELY (push), CONSUME_ACTIVELY (pull), CONSUME_POP
    grpc: bool = False  # connected through the 5.x proxy with gRPC
    settings: ClientSettings | None = None
    unanswered: str | None = None  # why the settings are missing

    @property
    def kind(self) -> ConsumerKind:
        """The client's own settings first: the broker keeps one message model per group, its latest heartbeat's."""
        broadcasting = self.settings.broadcasting if self.settings is not None else self.message_model == "BROADCASTING"
        if broadcasting:
            return ConsumerKind.BROADCAST
        if self.grpc:
            return ConsumerKind.GRPC
        if self.consume_type == "CONSUME_POP":
            return ConsumerKind.POP
        if self.settings is None:
            return ConsumerKind.UNKNOWN
        return ConsumerKind.ORDERLY if self.settings.orderly else ConsumerKind.CONCURRENT


@dataclass(frozen=True)
class Limit:
    """How one kind of live consumer is retried: `retries` before the DLQ (None: never dead-lettered or unknown)."""

    kind: ConsumerKind
    retries: int | None
    follows_group: bool
    in_place_every_ms: int | None = None

    @property
    def dead_letters(self) -> bool:
        return self.retries is not None and self.kind is not ConsumerKind.BROADCAST


def limit_of(consumer: LiveConsumer, group_retries: int) -> Limit:
    """The retry limit `consumer` gets when its group's retryMaxTimes is `group_retries`."""
    kind, settings = consumer.kind, consumer.settings
    if kind is ConsumerKind.BROADCAST:
        return Limit(kind, 0, follows_group=False)
    if kind in (ConsumerKind.GRPC, ConsumerKind.POP):
        return Limit(kind, group_retries, follows_group=True)
    if settings is None:
        return Limit(kind, None, follows_group=False)
    if kind is ConsumerKind.ORDERLY:
        finite = settings.max_reconsume_times if settings.max_reconsume_times >= 0 else None
        return Limit(kind, finite, follows_group=False, in_place_every_ms=settings.suspend_ms)
    configured = settings.max_reconsume_times
    return Limit(kind, JAVA_CONCURRENT_DEFAULT_LIMIT if configured == -1 else configured, follows_group=False)


@dataclass(frozen=True)
class ConsumerClass:
    """The instances of one kind that share one limit: a line of `status.consumers`."""

    limit: Limit
    client_ids: tuple[str, ...]
    summary: str

    @property
    def instances(self) -> int:
        return len(self.client_ids)


@dataclass(frozen=True)
class ConsumersView:
    """The group's live consumers by limit, and the observed conditions they imply."""

    classes: tuple[ConsumerClass, ...]
    group_retries: int

    @property
    def instances(self) -> int:
        return sum(item.instances for item in self.classes)

    @property
    def differing(self) -> tuple[ConsumerClass, ...]:
        """Classes that dead-letter after another count than the group's, or never, though they do retry."""
        return tuple(item for item in self.classes
                     if item.limit.kind in (ConsumerKind.CONCURRENT, ConsumerKind.ORDERLY)
                     and item.limit.retries != self.group_retries)

    @property
    def broadcast_instances(self) -> int:
        return sum(item.instances for item in self.classes if item.limit.kind is ConsumerKind.BROADCAST)


def consumers_view(consumers: Sequence[LiveConsumer], group_retries: int,
                   delay_levels_ms: Sequence[int]) -> ConsumersView:
    """Group `consumers` (each client once) by limit, ordered by kind then limit, with a summary of each ladder."""
    by_limit: dict[Limit, list[str]] = {}
    for consumer in consumers:
        by_limit.setdefault(limit_of(consumer, group_retries), []).append(consumer.client_id)
    order = list(ConsumerKind)
    classes = tuple(
        ConsumerClass(limit, tuple(sorted(ids)), _summary(limit, delay_levels_ms))
        for limit, ids in sorted(by_limit.items(),
                                 key=lambda item: (order.index(item[0].kind), item[0].retries is None,
                                                   item[0].retries or 0)))
    return ConsumersView(classes, group_retries)


def _summary(limit: Limit, delay_levels_ms: Sequence[int]) -> str:
    retries = limit.retries
    if limit.kind is ConsumerKind.BROADCAST:
        return "no retries: a broadcasting client drops a message its listener fails"
    if limit.kind is ConsumerKind.UNKNOWN:
        return "limit unknown: the client did not report its settings"
    if limit.kind is ConsumerKind.ORDERLY:
        every = format_duration(limit.in_place_every_ms or 0)
        if retries is None:
            return f"retried in place every {every} without limit; never dead-lettered"
        return f"retried in place every {every}, {retries} times; then dead-lettered"
    assert retries is not None  # concurrent, pop and gRPC limits are always known
    source = "the group's retryMaxTimes" if limit.follows_group else "the client's maxReconsumeTimes"
    if limit.kind is ConsumerKind.CONCURRENT and delay_levels_ms:
        return f"{remoting_ladder(delay_levels_ms, retries).summary} ({source})"
    return f"{retries} {'retry' if retries == 1 else 'retries'}, then dead-lettered ({source})"


def observations(view: ConsumersView | None) -> tuple[Observation, ...]:
    """`EffectiveRetriesDiffer` and `RetriesNotApplicable` from the live consumers; none while none is online."""
    if view is None:
        return ()
    counts: Counter[int | None] = Counter()
    for item in view.differing:
        counts[item.limit.retries] += item.instances
    parts = [f"{instances} instance(s) {'never (orderly, no limit)' if count is None else f'after {count}'}"
             for count, instances in sorted(counts.items(), key=lambda entry: (entry[0] is None, entry[0] or 0))]
    if parts:
        differ = Observation(EFFECTIVE_RETRIES_DIFFER, "True", "ClientLimits",
                             f"live consumers dead-letter after another number of retries than the group's "
                             f"{view.group_retries}: {', '.join(parts)}; their own maxReconsumeTimes decides "
                             "(setMaxReconsumeTimes in the application), see status.consumers")
    else:
        differ = Observation(EFFECTIVE_RETRIES_DIFFER, "False", "AsGroup",
                             f"every live consumer that retries dead-letters after the group's {view.group_retries}")
    broadcast = view.broadcast_instances
    if broadcast:
        applicable = Observation(RETRIES_NOT_APPLICABLE, "True", "BroadcastConsumers",
                                 f"{broadcast} instance(s) consume in BROADCASTING mode: they never retry, a message "
                                 "their listener fails is dropped")
    else:
        applicable = Observation(RETRIES_NOT_APPLICABLE, "False", "NoBroadcastConsumers",
                                 "no live consumer of the group consumes in BROADCASTING mode")
    return differ, applicable


def settings_from_properties(properties: Mapping[str, str]) -> ClientSettings | None:
    """A Java push consumer's settings from its running info properties; None when they do not say.

    `DefaultMQPushConsumerImpl.consumerRunningInfo` writes the consumer object's own fields with their toString
    (`MixAll.object2Properties`) and adds PROP_CONSUMEORDERLY; other consumers (lite pull, other languages) lack them.
    """
    try:
        limit = int(properties["maxReconsumeTimes"])
        orderly = properties["PROP_CONSUMEORDERLY"].strip().lower() == "true"
        suspend = int(properties.get("suspendCurrentQueueTimeMillis", JAVA_DEFAULT_SUSPEND_MS))
    except (KeyError, ValueError):
        return None
    return ClientSettings(limit, orderly, suspend, properties.get("messageModel") == "BROADCASTING")
