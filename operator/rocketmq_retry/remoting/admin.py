"""Typed admin operations against name servers and brokers, on top of a ConnectionPool.

Every broker answer other than SUCCESS becomes a BrokerError (except where a code is an expected
result, e.g. QUERY_NOT_FOUND -> None). Requests are not retried; callers own retry policy.
"""

import json
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar

from .codes import DEFAULT_TOPIC, RequestCode, ResponseCode
from .connection import ConnectionPool
from .errors import BrokerError, ConnectionFailed, MalformedBody, RemotingTimeout
from .fastjson import loads_keyed, loads_object
from .frame import RemotingCommand
from .models import (
    ClusterInfo,
    ConsumerConnection,
    QueueOffsets,
    SubscriptionGroupConfig,
    TopicConfig,
    TopicRoute,
    consume_stats_rows,
)

DEFAULT_BATCH_SIZE = 500
"""Configs per list request (groups, topics): ~0.5 KiB each keeps frames far below the cap."""
_T = TypeVar("_T")


def parse_namesrv_addrs(value: str) -> list[str]:
    """`host:port;host:port` (the Java client's NAMESRV_ADDR form) -> list of addresses."""
    return [addr.strip() for addr in value.split(";") if addr.strip()]


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _json_body(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


class Admin:
    """Admin client for one RocketMQ cluster: name-server queries and per-broker config and offsets.

    `namesrv_addrs` are tried in order for each name-server query until one answers, because any
    name server holds the full picture.
    """

    def __init__(self, pool: ConnectionPool, namesrv_addrs: Sequence[str]) -> None:
        if not namesrv_addrs:
            raise ValueError("at least one name-server address is needed")
        self.pool = pool
        self.namesrv_addrs = list(namesrv_addrs)
        self._unbatched: set[tuple[str, RequestCode]] = set()  # (broker, list request) it does not support

    async def _call(self, addr: str, code: RequestCode, ext: dict[str, str] | None = None, body: bytes = b"",
                    *, accept: Iterable[int] = (ResponseCode.SUCCESS,)) -> RemotingCommand:
        response = await self.pool.invoke(addr, RemotingCommand(code=code, ext_fields=ext or {}, body=body))
        if response.code not in accept:
            raise BrokerError(response.code, response.remark, code, addr)
        return response

    async def _namesrv_call(self, code: RequestCode, ext: dict[str, str] | None = None) -> RemotingCommand:
        failures: list[ConnectionFailed | RemotingTimeout] = []
        for addr in self.namesrv_addrs:
            try:
                return await self._call(addr, code, ext)
            except (ConnectionFailed, RemotingTimeout) as exc:
                failures.append(exc)
        raise failures[-1]

    # name server

    async def cluster_info(self) -> ClusterInfo:
        response = await self._namesrv_call(RequestCode.GET_BROKER_CLUSTER_INFO)
        return ClusterInfo.from_json(loads_object(response.body))

    async def topic_route(self, topic: str) -> TopicRoute:
        """Raises BrokerError with TOPIC_NOT_EXIST when no broker has registered the topic."""
        response = await self._namesrv_call(RequestCode.GET_ROUTEINFO_BY_TOPIC,
                                            {"topic": topic, "acceptStandardJsonOnly": "true"})
        return TopicRoute.from_json(loads_object(response.body))

    # subscription groups

    async def get_all_subscription_groups(self, addr: str) -> dict[str, SubscriptionGroupConfig]:
        response = await self._call(addr, RequestCode.GET_ALL_SUBSCRIPTIONGROUP_CONFIG)
        table = _table(response, "subscriptionGroupTable")
        return {name: SubscriptionGroupConfig.from_json(raw) for name, raw in table.items()}

    async def get_subscription_group(self, addr: str, name: str) -> SubscriptionGroupConfig | None:
        """One group's config, None if the broker has none.

        Reads the whole table on purpose: GET_SUBSCRIPTIONGROUP_CONFIG (352, 5.x) goes through the
        broker's find-or-create path and silently creates the group when autoCreateSubscriptionGroup
        is on, so it cannot tell "absent" and would change the broker while reading.
        """
        return (await self.get_all_subscription_groups(addr)).get(name)

    async def update_subscription_group(self, addr: str, config: SubscriptionGroupConfig) -> None:
        """Create or replace (not merge) the group on this broker."""
        await self._call(addr, RequestCode.UPDATE_AND_CREATE_SUBSCRIPTIONGROUP, body=_json_body(config.to_json()))

    async def update_subscription_groups(self, addr: str, configs: Sequence[SubscriptionGroupConfig], *,
                                         batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        """Create or replace many groups: batched on brokers with code 225 (5.3.1+), one by one elsewhere."""
        await self._in_batches(addr, RequestCode.UPDATE_AND_CREATE_SUBSCRIPTIONGROUP_LIST, configs,
                               key="groupConfigList", to_json=SubscriptionGroupConfig.to_json,
                               one=self.update_subscription_group, batch_size=batch_size)

    async def _in_batches(self, addr: str, code: RequestCode, items: Sequence[_T], *, key: str,
                          to_json: Callable[[_T], Any], one: Callable[[str, _T], Awaitable[None]],
                          batch_size: int) -> None:
        """Write `items` with list request `code` (body `{key: [...]}`) in chunks of `batch_size`; on a broker that
        answers REQUEST_CODE_NOT_SUPPORTED, with `one` per item, and without asking that broker again."""
        for start in range(0, len(items), batch_size):
            chunk = items[start:start + batch_size]
            if (addr, code) not in self._unbatched:
                try:
                    await self._call(addr, code, body=_json_body({key: [to_json(item) for item in chunk]}))
                    continue
                except BrokerError as exc:
                    if exc.code != ResponseCode.REQUEST_CODE_NOT_SUPPORTED:
                        raise
                    self._unbatched.add((addr, code))
            for item in chunk:
                await one(addr, item)

    async def delete_subscription_group(self, addr: str, name: str, *, clean_offsets: bool) -> None:
        """Both offset flags are sent: 4.x reads `removeOffset`, 5.x `cleanOffset`; each ignores the other."""
        await self._call(addr, RequestCode.DELETE_SUBSCRIPTIONGROUP,
                         {"groupName": name, "cleanOffset": _flag(clean_offsets), "removeOffset": _flag(clean_offsets)})

    # live consumers

    async def consumer_connection(self, addr: str, group: str) -> ConsumerConnection | None:
        """The group's clients connected to this broker; None when it has none (CONSUMER_NOT_ONLINE)."""
        response = await self._call(addr, RequestCode.GET_CONSUMER_CONNECTION_LIST, {"consumerGroup": group},
                                    accept=(ResponseCode.SUCCESS, ResponseCode.CONSUMER_NOT_ONLINE))
        if response.code == ResponseCode.CONSUMER_NOT_ONLINE:
            return None
        return ConsumerConnection.from_json(loads_object(response.body))

    async def consumer_running_info(self, addr: str, group: str, client_id: str) -> dict[str, str]:
        """The `properties` of the client's running info: the broker forwards the request to the client itself.

        A client that cannot answer (not online, too old, not a Java remoting client) makes the broker answer
        SYSTEM_ERROR with a remark saying why, raised as BrokerError. The body keys its queue tables by MessageQueue
        objects.
        """
        response = await self._call(addr, RequestCode.GET_CONSUMER_RUNNING_INFO,
                                    {"consumerGroup": group, "clientId": client_id, "jstackEnable": "false"})
        body = loads_keyed(response.body)
        properties = body.get("properties") if isinstance(body, dict) else None
        if not isinstance(properties, dict):
            raise MalformedBody("consumer running info has no properties object")
        return {str(key): str(value) for key, value in properties.items()}

    async def consume_stats(self, addr: str, group: str, topic: str) -> tuple[QueueOffsets, ...]:
        """Each read queue of `topic` on this broker with the group's committed offset (GET_CONSUME_STATS).

        No rows when the broker has no such topic, or (5.x) when the group's online consumers do not subscribe it.
        """
        response = await self._call(addr, RequestCode.GET_CONSUME_STATS, {"consumerGroup": group, "topic": topic})
        body = loads_keyed(response.body)
        if not isinstance(body, dict):
            raise MalformedBody("consume stats body is not an object")
        return consume_stats_rows(body)

    # topics

    async def create_or_update_topic(self, addr: str, config: TopicConfig) -> None:
        """UPDATE_AND_CREATE_TOPIC. The header form carries no `extra` keys; 5.x merges `attributes`."""
        ext = {"topic": config.topic_name, "defaultTopic": DEFAULT_TOPIC,
               "readQueueNums": str(config.read_queue_nums), "writeQueueNums": str(config.write_queue_nums),
               "perm": str(config.perm), "topicFilterType": config.topic_filter_type,
               "topicSysFlag": str(config.topic_sys_flag), "order": _flag(config.order)}
        if config.attributes:
            ext["attributes"] = ",".join(f"+{k}={v}" for k, v in config.attributes.items())
        await self._call(addr, RequestCode.UPDATE_AND_CREATE_TOPIC, ext)

    async def create_or_update_topics(self, addr: str, configs: Sequence[TopicConfig], *,
                                      batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        """Create or replace many topics: batched on brokers with code 18 (5.3.0+), one by one elsewhere."""
        await self._in_batches(addr, RequestCode.UPDATE_AND_CREATE_TOPIC_LIST, configs, key="topicConfigList",
                               to_json=TopicConfig.to_json, one=self.create_or_update_topic, batch_size=batch_size)

    async def get_all_topic_configs(self, addr: str) -> dict[str, TopicConfig]:
        response = await self._call(addr, RequestCode.GET_ALL_TOPIC_CONFIG)
        table = _table(response, "topicConfigTable")
        return {name: TopicConfig.from_json(raw) for name, raw in table.items()}

    # offsets

    async def max_offset(self, addr: str, topic: str, queue_id: int) -> int:
        """Next logical offset of the queue, i.e. the number of messages ever stored in it."""
        return await self._offset(addr, RequestCode.GET_MAX_OFFSET, {"topic": topic, "queueId": str(queue_id)})

    async def min_offset(self, addr: str, topic: str, queue_id: int) -> int:
        return await self._offset(addr, RequestCode.GET_MIN_OFFSET, {"topic": topic, "queueId": str(queue_id)})

    async def query_consumer_offset(self, addr: str, group: str, topic: str, queue_id: int) -> int | None:
        """The group's committed offset; None when the broker reports QUERY_NOT_FOUND.

        `setZeroIfNotFound=false` stops 5.x from reporting 0 for a queue nobody has committed on; 4.x
        still answers 0 when nothing is stored and the queue's first message is in memory.
        """
        ext = {"consumerGroup": group, "topic": topic, "queueId": str(queue_id), "setZeroIfNotFound": "false"}
        response = await self._call(addr, RequestCode.QUERY_CONSUMER_OFFSET, ext,
                                    accept=(ResponseCode.SUCCESS, ResponseCode.QUERY_NOT_FOUND))
        if response.code == ResponseCode.QUERY_NOT_FOUND:
            return None
        return _offset_field(response)

    async def update_consumer_offset(self, addr: str, group: str, topic: str, queue_id: int, offset: int) -> None:
        """Sent as a request (Java sends it oneway) so that 5.x refusals (unknown group/topic) surface."""
        await self._call(addr, RequestCode.UPDATE_CONSUMER_OFFSET,
                         {"consumerGroup": group, "topic": topic, "queueId": str(queue_id),
                          "commitOffset": str(offset)})

    async def _offset(self, addr: str, code: RequestCode, ext: dict[str, str]) -> int:
        return _offset_field(await self._call(addr, code, ext))

    # broker config

    async def get_broker_config(self, addr: str) -> dict[str, str]:
        """All broker, store and network settings as the broker reports them (`key=value` lines)."""
        response = await self._call(addr, RequestCode.GET_BROKER_CONFIG)
        config: dict[str, str] = {}
        for line in response.body.decode(errors="replace").splitlines():
            key, sep, value = line.partition("=")
            if sep and key.strip():
                config[key.strip()] = value
        return config

    async def broker_runtime_info(self, addr: str) -> dict[str, str]:
        """The broker's runtime table; `brokerVersionDesc` (e.g. `V5_5_0`) is the only place it names its version."""
        response = await self._call(addr, RequestCode.GET_BROKER_RUNTIME_INFO)
        table = loads_object(response.body).get("table", {})
        if not isinstance(table, dict):
            raise MalformedBody("runtime info table is not an object")
        return {str(key): str(value) for key, value in table.items()}


def _offset_field(response: RemotingCommand) -> int:
    try:
        return int(response.ext_fields["offset"])
    except (KeyError, ValueError):
        raise MalformedBody(f"response carries no integer offset: {response.ext_fields}") from None


def _table(response: RemotingCommand, key: str) -> dict[str, dict[str, Any]]:
    """The name -> config object map under `key` of a config-wrapper body."""
    table = loads_object(response.body).get(key, {})
    if not isinstance(table, dict) or not all(isinstance(raw, dict) for raw in table.values()):
        raise MalformedBody(f"{key} is not an object of objects")
    return table
