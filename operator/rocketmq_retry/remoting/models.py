"""Typed views of the JSON documents the name server and brokers exchange.

Configs that are read, modified and written back (subscription groups, topics) keep every JSON key
they do not model in `extra` and write it back unchanged, so a field added by a newer broker is
never reset by a read-modify-write through this library.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Self

from .codes import Perm
from .errors import MalformedBody

MASTER_ID = 0


def _is(value: Any, kind: type) -> bool:
    """Whether `value` is a `kind`; bool is not accepted as int."""
    return isinstance(value, kind) and not (kind is int and isinstance(value, bool))


def _expect(value: Any, kind: type, what: str) -> Any:
    """`value` if it is a `kind` (bool is not accepted as int); else MalformedBody naming `what`."""
    if not _is(value, kind):
        raise MalformedBody(f"{what} should be {kind.__name__}, got {value!r}")
    return value


def _object(value: Any, what: str) -> dict[str, Any]:
    result: dict[str, Any] = _expect(value, dict, what)
    return result


def _list(value: Any, what: str) -> list[Any]:
    result: list[Any] = _expect(value, list, what)
    return result


@dataclass(frozen=True)
class _Key:
    attr: str
    json: str
    kind: type


class _JsonConfig:
    """Shared (de)serialisation for dataclasses whose modelled keys are listed in `_KEYS`."""

    _KEYS: tuple[_Key, ...] = ()
    extra: dict[str, Any]

    @classmethod
    def _split(cls, raw: Mapping[str, Any], *, lenient: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
        """Typed values and the rest; `lenient` keeps a value of the wrong type in the rest instead of refusing it."""
        known = {key.json: key for key in cls._KEYS}
        values, rest = {}, {}
        for k, v in raw.items():
            key = known.get(k)
            if key is not None and v is None:
                continue  # null: not set
            if key is None or (lenient and not _is(v, key.kind)):
                rest[k] = v
            else:
                values[key.attr] = _expect(v, key.kind, f"{cls.__name__}.{k}")
        return values, rest

    def _known_json(self) -> dict[str, Any]:
        """The typed keys that are set; a None field is left out, so the receiver applies its default."""
        return {key.json: value for key in self._KEYS if (value := getattr(self, key.attr)) is not None}


@dataclass
class SubscriptionGroupConfig(_JsonConfig):
    """A consumer group's broker-side config.

    Only keys both 4.x and 5.x know are typed; everything else, e.g. 5.x `consumeTimeoutMinute`, travels in `extra`.
    A typed field left None is not sent, so the broker applies its own (Java) default; RocketMQ's defaults are
    written down once, in rocketmq_retry.domain.broker. A value of the wrong type is not refused either: it stays in
    `extra`, as sent, so one odd group cannot fail the read of a whole table.

    `group_retry_policy` (5.x) is the raw JSON value, None when absent (as on 4.x). It is decoded, never interpreted
    or validated here: rocketmq_retry.domain.retry_policy is its one reader. `attributes` is always written as `{}`:
    5.x merges it into the stored map and rejects any key it does not know.
    """

    group_name: str
    consume_enable: bool | None = None
    consume_from_min_enable: bool | None = None
    consume_broadcast_enable: bool | None = None
    retry_queue_nums: int | None = None
    retry_max_times: int | None = None
    broker_id: int | None = None
    which_broker_when_consume_slowly: int | None = None
    notify_consumer_ids_changed_enable: bool | None = None
    group_retry_policy: Any = None
    extra: dict[str, Any] = field(default_factory=dict)

    _KEYS = (_Key("group_name", "groupName", str), _Key("consume_enable", "consumeEnable", bool),
             _Key("consume_from_min_enable", "consumeFromMinEnable", bool),
             _Key("consume_broadcast_enable", "consumeBroadcastEnable", bool),
             _Key("retry_queue_nums", "retryQueueNums", int), _Key("retry_max_times", "retryMaxTimes", int),
             _Key("broker_id", "brokerId", int),
             _Key("which_broker_when_consume_slowly", "whichBrokerWhenConsumeSlowly", int),
             _Key("notify_consumer_ids_changed_enable", "notifyConsumerIdsChangedEnable", bool))

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Self:
        values, extra = cls._split(raw, lenient=True)
        if "group_name" not in values:
            raise MalformedBody(f"subscription group config without groupName: {raw.get('groupName')!r}")
        return cls(**values, extra=extra, group_retry_policy=extra.pop("groupRetryPolicy", None))

    def to_json(self) -> dict[str, Any]:
        result = {**self.extra, **self._known_json(), "attributes": {}}
        if self.group_retry_policy is not None:
            result["groupRetryPolicy"] = self.group_retry_policy
        return result


@dataclass
class TopicConfig(_JsonConfig):
    """A topic's config on one broker. `attributes` (5.x) are stored without the `+` the request needs."""

    topic_name: str
    read_queue_nums: int = 16
    write_queue_nums: int = 16
    perm: int = Perm.READ | Perm.WRITE
    topic_filter_type: str = "SINGLE_TAG"
    topic_sys_flag: int = 0
    order: bool = False
    attributes: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    _KEYS = (_Key("topic_name", "topicName", str), _Key("read_queue_nums", "readQueueNums", int),
             _Key("write_queue_nums", "writeQueueNums", int), _Key("perm", "perm", int),
             _Key("topic_filter_type", "topicFilterType", str), _Key("topic_sys_flag", "topicSysFlag", int),
             _Key("order", "order", bool), _Key("attributes", "attributes", dict))

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Self:
        values, extra = cls._split(raw)
        if "topic_name" not in values:
            raise MalformedBody("topic config without topicName")
        values["attributes"] = {_expect(k, str, "attribute"): _expect(v, str, f"attribute {k}")
                                for k, v in values.get("attributes", {}).items()}
        return cls(**values, extra=extra)

    def to_json(self) -> dict[str, Any]:
        return {**self.extra, **self._known_json()}


@dataclass(frozen=True)
class BrokerData:
    """One broker name (a master and its slaves) as the name server knows it."""

    name: str
    cluster: str
    addrs: Mapping[int, str]

    @property
    def master_addr(self) -> str | None:
        return self.addrs.get(MASTER_ID)

    @classmethod
    def from_json(cls, raw: Any) -> Self:
        raw = _object(raw, "BrokerData")
        addrs = _object(raw.get("brokerAddrs", {}), "brokerAddrs")
        try:
            by_id = {int(broker_id): _expect(addr, str, "broker address") for broker_id, addr in addrs.items()}
        except ValueError:
            raise MalformedBody(f"brokerAddrs keys are not broker ids: {list(addrs)}") from None
        return cls(name=_expect(raw.get("brokerName"), str, "brokerName"),
                   cluster=_expect(raw.get("cluster"), str, "cluster"), addrs=by_id)


@dataclass(frozen=True)
class ClusterInfo:
    brokers: Mapping[str, BrokerData]
    clusters: Mapping[str, tuple[str, ...]]

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Self:
        brokers = {name: BrokerData.from_json(data)
                   for name, data in _object(raw.get("brokerAddrTable", {}), "brokerAddrTable").items()}
        clusters = {name: tuple(_expect(b, str, "broker name") for b in _list(names, "clusterAddrTable entry"))
                    for name, names in _object(raw.get("clusterAddrTable", {}), "clusterAddrTable").items()}
        return cls(brokers=brokers, clusters=clusters)

    def masters(self, cluster: str | None = None) -> list[BrokerData]:
        """Broker names that currently have a master, optionally of one cluster, sorted by name."""
        names: Iterable[str] = self.brokers if cluster is None else self.clusters.get(cluster, ())
        return sorted((self.brokers[n] for n in names if n in self.brokers and self.brokers[n].master_addr),
                      key=lambda b: b.name)


@dataclass(frozen=True)
class QueueData:
    broker_name: str
    read_queue_nums: int
    write_queue_nums: int
    perm: int
    topic_sys_flag: int

    @classmethod
    def from_json(cls, raw: Any) -> Self:
        raw = _object(raw, "QueueData")
        return cls(broker_name=_expect(raw.get("brokerName"), str, "brokerName"),
                   read_queue_nums=_expect(raw.get("readQueueNums"), int, "readQueueNums"),
                   write_queue_nums=_expect(raw.get("writeQueueNums"), int, "writeQueueNums"),
                   perm=_expect(raw.get("perm"), int, "perm"),
                   topic_sys_flag=_expect(raw.get("topicSysFlag", 0), int, "topicSysFlag"))


@dataclass(frozen=True)
class TopicRoute:
    brokers: tuple[BrokerData, ...]
    queues: tuple[QueueData, ...]

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Self:
        return cls(brokers=tuple(BrokerData.from_json(b) for b in _list(raw.get("brokerDatas", []), "brokerDatas")),
                   queues=tuple(QueueData.from_json(q) for q in _list(raw.get("queueDatas", []), "queueDatas")))


@dataclass(frozen=True)
class ClientConnection:
    """One client's connection to a broker, as GET_CONSUMER_CONNECTION_LIST lists it."""

    client_id: str
    client_addr: str
    language: str
    version: int  # the client's MQVersion ordinal

    @classmethod
    def from_json(cls, raw: Any) -> Self:
        raw = _object(raw, "Connection")
        return cls(client_id=_expect(raw.get("clientId"), str, "clientId"),
                   client_addr=_expect(raw.get("clientAddr"), str, "clientAddr"),
                   language=_expect(raw.get("language"), str, "language"),
                   version=_expect(raw.get("version"), int, "version"))


@dataclass(frozen=True)
class ConsumerConnection:
    """A group's clients on one broker, and what the broker's consumer table says of the group as a whole
    (the latest heartbeat's consume type and message model)."""

    connections: tuple[ClientConnection, ...]
    consume_type: str
    message_model: str
    topics: tuple[str, ...]  # subscribed topics, the group's %RETRY% topic included

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Self:
        return cls(connections=tuple(ClientConnection.from_json(c)
                                     for c in _list(raw.get("connectionSet", []), "connectionSet")),
                   consume_type=_expect(raw.get("consumeType"), str, "consumeType"),
                   message_model=_expect(raw.get("messageModel"), str, "messageModel"),
                   topics=tuple(sorted(_object(raw.get("subscriptionTable", {}), "subscriptionTable"))))


@dataclass(frozen=True)
class QueueOffsets:
    """One queue's row of a group's consume stats (GET_CONSUME_STATS): where the queue ends and where the group is."""

    topic: str
    broker_name: str
    queue_id: int
    broker_offset: int  # the queue's max offset
    consumer_offset: int  # the group's committed offset; the broker reports 0 when it has none

    @property
    def lag(self) -> int:
        """Messages of the queue the group has not committed yet (what `mqadmin consumerProgress` shows as Diff)."""
        return max(0, self.broker_offset - self.consumer_offset)


def consume_stats_rows(raw: Mapping[Any, Any]) -> tuple[QueueOffsets, ...]:
    """The rows of a ConsumeStats body parsed with fastjson.loads_keyed (its offsetTable keys are MessageQueues)."""
    table: Mapping[Any, Any] = _object(raw.get("offsetTable", {}), "offsetTable")
    rows: list[QueueOffsets] = []
    for key, value in table.items():
        if not isinstance(key, tuple):
            raise MalformedBody(f"offsetTable key is not a MessageQueue: {key!r}")
        queue, offsets = dict(key), _object(value, "OffsetWrapper")
        rows.append(QueueOffsets(topic=_expect(queue.get("topic"), str, "topic"),
                                 broker_name=_expect(queue.get("brokerName"), str, "brokerName"),
                                 queue_id=_expect(queue.get("queueId"), int, "queueId"),
                                 broker_offset=_expect(offsets.get("brokerOffset"), int, "brokerOffset"),
                                 consumer_offset=_expect(offsets.get("consumerOffset"), int, "consumerOffset")))
    return tuple(sorted(rows, key=lambda row: (row.topic, row.broker_name, row.queue_id)))
