"""The live consumers of a cluster's groups and their retry backlogs: who is connected to the masters, what each
client says it does, and how many retries wait for the group.

A census asks every master for each group's connections (GET_CONSUMER_CONNECTION_LIST) and for the group's offsets in
its retry topic (GET_CONSUME_STATS): two calls per group and master. It asks each client it has not met before for its
settings (GET_CONSUMER_RUNNING_INFO, which the broker forwards to the client); a client's settings do not change while
it runs, so they are kept for as long as it stays connected, and a census of an unchanged cluster asks no client.
Sweep passes take the census; every pass reads the last one, so events never cost a broker call per client. A census
covers a bounded number of groups, those it saw longest ago (or never) first: at 10,000 policies a census of every
group took 13 s of each 30 s sweep (bench_convergence), so there each group is seen every few sweeps instead.

Given the cluster's proxies, it asks each of them for the group's connections as well: a 5.x proxy in cluster mode
is the only one that knows its gRPC clients. A client a proxy lists and no master does is one of them when its id is
a gRPC SDK's (domain.consumers.is_grpc_client_id), and asked nothing: it follows the group. Any other is asked for its
settings through that proxy.
"""

import asyncio
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, TypeVar

from rocketmq_retry.domain.consumers import ClientSettings, LiveConsumer, is_grpc_client_id, settings_from_properties
from rocketmq_retry.reconcile.reading import RETRY_TOPIC_PREFIX, ClusterAdmin, Master, ReadFailed, bounded
from rocketmq_retry.remoting.models import ClientConnection, ConsumerConnection

IN_FLIGHT: Final = 32  # broker calls of one census at a time: the brokers' admin thread pools are small
_T = TypeVar("_T")


@dataclass(frozen=True)
class _Answer:
    settings: ClientSettings | None
    unanswered: str | None


_GRPC: Final = _Answer(None, None)  # a gRPC client is not asked: it follows the group


@dataclass(frozen=True)
class _Sighting:
    """Where a client was first seen in one census: the master (or proxy) to ask it through, and its connection
    there."""

    master: Master
    group: ConsumerConnection
    connection: ClientConnection
    grpc: bool = False


class _Calls:
    """The broker calls of one census: each bounded by the call timeout, at most IN_FLIGHT at a time."""

    def __init__(self, admin: ClusterAdmin, call_timeout: float) -> None:
        self._admin = admin
        self._timeout = call_timeout
        self._slots = asyncio.Semaphore(IN_FLIGHT)

    async def _bounded(self, what: str, call: Awaitable[_T]) -> _T:
        async with self._slots:
            return await bounded(call, self._timeout, what)

    async def connections(self, master: Master, group: str) -> ConsumerConnection | ReadFailed | None:
        """The group's clients on `master`; the failure itself when the master could not tell."""
        try:
            return await self._bounded(f"{master.name} ({master.addr}) connections of {group}",
                                       self._admin.consumer_connection(master.addr, group))
        except ReadFailed as error:
            return error

    async def retry_backlog(self, master: Master, group: str) -> int | ReadFailed:
        """Messages in the group's retry topic on `master` beyond its committed offsets."""
        try:
            rows = await self._bounded(f"{master.name} ({master.addr}) retry offsets of {group}",
                                       self._admin.consume_stats(master.addr, group, RETRY_TOPIC_PREFIX + group))
        except ReadFailed as error:
            return error
        return sum(row.lag for row in rows)

    async def answer(self, master: Master, group: str, client_id: str) -> "_Answer":
        """What the client says about itself, asked through `master`."""
        try:
            properties = await self._bounded(f"{client_id} through {master.name}",
                                             self._admin.consumer_running_info(master.addr, group, client_id))
        except ReadFailed as error:
            return _Answer(None, str(error))
        settings = settings_from_properties(properties)
        return _Answer(settings, None if settings is not None else "its running info has no retry settings")


class Census:
    """The last census of one cluster's groups (for one connection identity)."""

    def __init__(self) -> None:
        self._groups: dict[str, tuple[LiveConsumer, ...]] = {}
        self._answers: dict[str, dict[str, _Answer]] = {}  # group -> client id -> what the client answered
        self._backlogs: dict[str, dict[str, int]] = {}  # group -> master name -> retries waiting
        self._taken: dict[str, int] = {}  # group -> the number of the last census that covered it
        self._censuses = 0

    def consumers(self, group: str) -> tuple[LiveConsumer, ...] | None:
        """The group's live consumers at the last census that reached a master; None before any did."""
        return self._groups.get(group)

    def retry_backlog(self, group: str) -> Mapping[str, int] | None:
        """Per master (by name), the group's retries waiting at the last census; None before any master answered."""
        return self._backlogs.get(group)

    async def take(self, admin: ClusterAdmin, masters: Sequence[Master], groups: Iterable[str],
                   call_timeout: float, *, limit: int, proxies: Sequence[Master] = ()) -> None:
        """Census of at most `limit` of `groups` on `masters` and `proxies`, those covered longest ago first. A
        group no master answered for keeps its last census."""
        self._censuses += 1
        chosen = sorted(dict.fromkeys(groups), key=lambda group: self._taken.get(group, 0))[:limit]
        for group in chosen:
            self._taken[group] = self._censuses
        calls = _Calls(admin, call_timeout)
        await asyncio.gather(*(self._take_group(calls, masters, proxies, group) for group in chosen))

    async def _take_group(self, calls: _Calls, masters: Sequence[Master], proxies: Sequence[Master],
                          group: str) -> None:
        lists, backlogs, proxied = await asyncio.gather(
            asyncio.gather(*(calls.connections(master, group) for master in masters)),
            asyncio.gather(*(calls.retry_backlog(master, group) for master in masters)),
            asyncio.gather(*(calls.connections(proxy, group) for proxy in proxies)))
        counted = {master.name: backlog for master, backlog in zip(masters, backlogs, strict=True)
                   if not isinstance(backlog, ReadFailed)}
        if counted:
            self._backlogs[group] = counted
        answered = [(master, found) for master, found in zip(masters, lists, strict=True)
                    if not isinstance(found, ReadFailed)]
        if not answered:
            return
        seen: dict[str, _Sighting] = {}
        for master, found in answered:
            if found is not None:
                for connection in found.connections:
                    seen.setdefault(connection.client_id, _Sighting(master, found, connection))
        for proxy, listed in zip(proxies, proxied, strict=True):  # after the masters: they see remoting clients
            if isinstance(listed, ConsumerConnection):
                for connection in listed.connections:
                    seen.setdefault(connection.client_id, _Sighting(proxy, listed, connection,
                                                                    grpc=is_grpc_client_id(connection.client_id)))
        known = self._answers.get(group, {})
        answers = await asyncio.gather(*(_known(known[client_id]) if client_id in known
                                         else _known(_GRPC) if sighting.grpc
                                         else calls.answer(sighting.master, group, client_id)
                                         for client_id, sighting in seen.items()))
        self._answers[group] = dict(zip(seen, answers, strict=True))  # clients that left are forgotten
        self._groups[group] = tuple(
            LiveConsumer(client_id, sighting.connection.language, sighting.connection.version,
                         sighting.group.message_model, sighting.group.consume_type, grpc=sighting.grpc,
                         settings=answer.settings, unanswered=answer.unanswered)
            for (client_id, sighting), answer in sorted(zip(seen.items(), answers, strict=True),
                                                        key=lambda item: item[0][0]))


async def _known(answer: _Answer) -> _Answer:
    return answer
