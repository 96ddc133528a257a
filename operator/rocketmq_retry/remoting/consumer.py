"""A clustering pull consumer of one group: reads queues, commits offsets, hands failed messages back.

The caller owns the loop (which queues, from which offset, when to commit), so the chaos probes and the
dead-letter redrive can each decide what "consumed" means; this class only speaks the protocol.
"""

import os
import socket
import time
from collections.abc import Sequence

from .admin import Admin
from .codes import ResponseCode
from .connection import ConnectionPool
from .errors import BrokerError, NoRoute
from .frame import RemotingCommand
from .message import MessageExt
from .pulling import (
    ConsumeFromWhere,
    PullResult,
    heartbeat_request,
    pull_request,
    pull_result,
    send_back_request,
)
from .routing import MessageQueue, master_addresses, readable_queues

# The broker holds a long poll up to 5 s past its suspend time before it answers NO_NEW_MSG.
_LONG_POLL_GRACE = 5.0


class PullConsumer:
    """`max_reconsume_times=None` leaves the dead-letter threshold to the group's `retryMaxTimes`."""

    def __init__(self, pool: ConnectionPool, namesrv_addrs: Sequence[str], group: str, *,
                 max_reconsume_times: int | None = None, client_id: str | None = None) -> None:
        self.admin = Admin(pool, namesrv_addrs)
        self.group = group
        self.max_reconsume_times = max_reconsume_times
        self.client_id = client_id or f"{socket.gethostname()}@{os.getpid()}@{id(self):x}"
        self._masters: dict[str, str] = {}
        self._sub_version = int(time.time() * 1000)

    @property
    def pool(self) -> ConnectionPool:
        return self.admin.pool

    async def queues(self, topic: str) -> list[MessageQueue]:
        """The readable queues of `topic`, from a fresh route; BrokerError(TOPIC_NOT_EXIST) if it has none."""
        route = await self.admin.topic_route(topic)
        self._masters.update(master_addresses(route))
        return readable_queues(topic, route)

    async def pull(self, queue: MessageQueue, offset: int, *, max_messages: int = 32, suspend: float = 0.0,
                   commit_offset: int | None = None) -> PullResult:
        """One pull; `suspend` > 0 long-polls for up to that many seconds when nothing is there yet."""
        addr = await self._master(queue)
        request = pull_request(self.group, queue, offset, max_messages=max_messages, commit_offset=commit_offset,
                               suspend_ms=int(suspend * 1000), sub_version=self._sub_version)
        timeout = self.pool.request_timeout + (suspend + _LONG_POLL_GRACE if suspend > 0 else 0)
        return pull_result(await self.pool.invoke(addr, request, timeout=timeout), addr)

    async def max_offset(self, queue: MessageQueue) -> int:
        """Where the next message stored in `queue` will be."""
        return await self.admin.max_offset(await self._master(queue), queue.topic, queue.queue_id)

    async def committed_offset(self, queue: MessageQueue) -> int | None:
        return await self.admin.query_consumer_offset(await self._master(queue), self.group, queue.topic,
                                                      queue.queue_id)

    async def commit(self, queue: MessageQueue, offset: int) -> None:
        await self.admin.update_consumer_offset(await self._master(queue), self.group, queue.topic, queue.queue_id,
                                                offset)

    async def send_back(self, queue: MessageQueue, message: MessageExt, *, delay_level: int = 0) -> None:
        """Hand `message` (pulled from `queue`) back for a later retry, or to the DLQ once retries are spent."""
        addr = await self._master(queue)
        request = send_back_request(message, self.group, delay_level=delay_level,
                                    max_reconsume_times=self.max_reconsume_times, broker_name=queue.broker_name)
        _expect_success(await self.pool.invoke(addr, request), request, addr)

    async def heartbeat(self, topics: Sequence[str],
                        consume_from: ConsumeFromWhere = ConsumeFromWhere.FIRST_OFFSET) -> None:
        """Announce this consumer to every master serving `topics` (creates the group and its retry topic)."""
        brokers = {queue.broker_name for topic in topics for queue in await self.queues(topic)}
        request = heartbeat_request(self.client_id, self.group, topics, sub_version=self._sub_version,
                                    consume_from=consume_from)
        for addr in sorted(self._masters[name] for name in brokers if name in self._masters):
            _expect_success(await self.pool.invoke(addr, request), request, addr)

    async def _master(self, queue: MessageQueue) -> str:
        if queue.broker_name not in self._masters:
            await self.queues(queue.topic)
        try:
            return self._masters[queue.broker_name]
        except KeyError:
            raise NoRoute(f"broker {queue.broker_name} has no master in the route of {queue.topic}") from None


def _expect_success(response: RemotingCommand, request: RemotingCommand, addr: str) -> None:
    if response.code != ResponseCode.SUCCESS:
        raise BrokerError(response.code, response.remark, request.code, addr)
