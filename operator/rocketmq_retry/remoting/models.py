"""Typed views of the JSON documents the name server and brokers exchange.

Configs that are read, modified and written back (subscription groups, topics) keep every JSON key
they do not model in `extra` and write it back unchanged, so a field added by a newer broker is
never reset by a read-modify-write through this library.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any, Self

from .codes import Perm
from .errors import MalformedBody

MASTER_ID = 0


def _expect(value: Any, kind: type, what: str) -> Any:
    """`value` if it is a `kind` (bool is not accepted as int); else MalformedBody naming `what`."""
    if (kind is int and isinstance(value, bool)) or not isinstance(value, kind):
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
    def _split(cls, raw: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        known = {key.json: key for key in cls._KEYS}
        values = {known[k].attr: _expect(v, known[k].kind, f"{cls.__name__}.{k}")
                  for k, v in raw.items() if k in known and v is not None}
        return values, {k: v for k, v in raw.items() if k not in known}

    def _known_json(self) -> dict[str, Any]:
        return {key.json: getattr(self, key.attr) for key in self._KEYS}


class RetryPolicyType(StrEnum):
    CUSTOMIZED = "CUSTOMIZED"
    EXPONENTIAL = "EXPONENTIAL"


@dataclass(frozen=True)
class CustomizedRetryPolicy:
    """Delay before retry n is `next[min(n + 2, len(next) - 1)]` milliseconds (broker/proxy semantics)."""

    next: tuple[int, ...]


@dataclass(frozen=True)
class ExponentialRetryPolicy:
    """Delay = min(max, initial * multiplier ** min(n, 32)) milliseconds."""

    initial: int
    max: int
    multiplier: int


@dataclass
class GroupRetryPolicy:
    """RocketMQ 5 `groupRetryPolicy`; `type` stays a plain string if a newer broker sends an unknown one."""

    type: str = RetryPolicyType.CUSTOMIZED
    customized: CustomizedRetryPolicy | None = None
    exponential: ExponentialRetryPolicy | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Self:
        rest = dict(raw)
        policy_type = _expect(rest.pop("type", RetryPolicyType.CUSTOMIZED), str, "groupRetryPolicy.type")
        customized = rest.pop("customizedRetryPolicy", None)
        exponential = rest.pop("exponentialRetryPolicy", None)
        return cls(
            type=policy_type,
            customized=None if customized is None else CustomizedRetryPolicy(tuple(
                _expect(v, int, "customizedRetryPolicy.next[]")
                for v in _list(_object(customized, "customizedRetryPolicy").get("next", []),
                               "customizedRetryPolicy.next"))),
            exponential=None if exponential is None else ExponentialRetryPolicy(**{
                f.name: _expect(_object(exponential, "exponentialRetryPolicy").get(f.name), int,
                                f"exponentialRetryPolicy.{f.name}")
                for f in fields(ExponentialRetryPolicy)}),
            extra=rest)

    def to_json(self) -> dict[str, Any]:
        result: dict[str, Any] = {**self.extra, "type": str(self.type)}
        if self.customized is not None:
            result["customizedRetryPolicy"] = {"next": list(self.customized.next)}
        if self.exponential is not None:
            result["exponentialRetryPolicy"] = {"initial": self.exponential.initial, "max": self.exponential.max,
                                                "multiplier": self.exponential.multiplier}
        return result


@dataclass
class SubscriptionGroupConfig(_JsonConfig):
    """A consumer group's broker-side config. Defaults are the Java defaults.

    Only keys both 4.x and 5.x know are typed (plus `groupRetryPolicy`, None when absent, as on 4.x);
    everything else, e.g. 5.x `consumeTimeoutMinute`, travels in `extra`. `attributes` is always written
    as `{}`: 5.x merges it into the stored map and rejects any key it does not know.
    """

    group_name: str
    consume_enable: bool = True
    consume_from_min_enable: bool = True
    consume_broadcast_enable: bool = True
    retry_queue_nums: int = 1
    retry_max_times: int = 16
    broker_id: int = MASTER_ID
    which_broker_when_consume_slowly: int = 1
    notify_consumer_ids_changed_enable: bool = True
    group_retry_policy: GroupRetryPolicy | None = None
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
        values, extra = cls._split(raw)
        if "group_name" not in values:
            raise MalformedBody("subscription group config without groupName")
        policy = extra.pop("groupRetryPolicy", None)
        return cls(**values, extra=extra, group_retry_policy=None if policy is None else
                   GroupRetryPolicy.from_json(_object(policy, "groupRetryPolicy")))

    def to_json(self) -> dict[str, Any]:
        result = {**self.extra, **self._known_json(), "attributes": {}}
        if self.group_retry_policy is not None:
            result["groupRetryPolicy"] = self.group_retry_policy.to_json()
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
