"""Reading a group's pending dead letters without changing anything: what `rocketmq-retry dlq list|export` shows.

Pending means what a redrive would move: each queue of `%DLQ%<group>` from the redrive group's committed offset (the
queue's first message when it has none) to the queue's end when the read reached it, so messages dead-lettered
meanwhile are not chased. Nothing is written: pulls carry no commit flag, offsets are only queried and the topic's
permission is only read from its route. A broker creates the group of a pull it does not know (where
autoCreateSubscriptionGroup is on, the default), so each master is pulled as a group it already has: the redrive
group, or else the failing group itself.

Bounded: every call within `call_timeout`, every queue read once, forward, to a fixed end, each pull moving on.
"""

from collections.abc import AsyncGenerator
from datetime import datetime

from rocketmq_retry.domain.browsing import DeadLetter
from rocketmq_retry.domain.dead_letters import DeadLetterQueueSpec
from rocketmq_retry.domain.selection import Selector, message_ids
from rocketmq_retry.domain.spec import ClusterRef
from rocketmq_retry.reconcile.reading import Master, ReadFailed, bounded, discover_masters
from rocketmq_retry.reconcile.redrive import BATCH, pending_range, route_or_none
from rocketmq_retry.remoting.admin import Admin
from rocketmq_retry.remoting.codes import Perm
from rocketmq_retry.remoting.consumer import PullConsumer
from rocketmq_retry.remoting.message import MessageExt
from rocketmq_retry.remoting.models import QueueData
from rocketmq_retry.remoting.pulling import PullStatus, dlq_topic
from rocketmq_retry.remoting.routing import MessageQueue


class PendingDeadLetters:
    """One read of the pending dead letters on every master of `cluster` that holds `%DLQ%<group>`, in (broker,
    queue, offset) order, those `selector` matches, at most `limit`. `scanned` and `absent_ids` say, after the read,
    why it selected what it did."""

    def __init__(self, admin: Admin, cluster: ClusterRef, spec: DeadLetterQueueSpec, selector: Selector, *,
                 limit: int | None = None, call_timeout: float) -> None:
        self.admin = admin
        self.cluster = cluster
        self.spec = spec
        self.selector = selector
        self.limit = limit
        self.call_timeout = call_timeout
        self.topic = dlq_topic(spec.consumer_group)
        self.scanned = 0  # pending dead letters looked at
        self.selected = 0
        self.absent_ids = selector.message_ids  # the selector's ids no scanned dead letter carries
        self._readers: dict[str, PullConsumer] = {}

    def why_nothing(self, now: datetime) -> str:
        return self.selector.why_nothing(self.scanned, now, self.absent_ids)

    async def read(self) -> AsyncGenerator[DeadLetter, None]:
        """ReadFailed naming the broker when one cannot be read, before anything is yielded when the topic is not
        readable somewhere (a listing without one master's dead letters would pass for the whole)."""
        for master, data in await self._holders():
            reader = await self._reader(master)
            for queue_id in range(data.read_queue_nums):
                queue = MessageQueue(self.topic, master.name, queue_id)
                pending = await pending_range(self.admin, queue, master.addr, redrive_group=self.spec.redrive_group,
                                              call_timeout=self.call_timeout)
                offset, end = pending.start, pending.end
                while offset < end:
                    batch, offset = await self._pull(reader, master, queue, offset, end)
                    for message in batch:
                        self.scanned += 1
                        if self.selector.matches(message):
                            self.selected += 1
                            yield DeadLetter(master.name, message)
                            if self.limit is not None and self.selected >= self.limit:
                                return

    async def _holders(self) -> list[tuple[Master, QueueData]]:
        """The masters of the cluster that hold the topic, by name; ReadFailed when one holds it unreadable."""
        masters = await discover_masters(self.admin, self.cluster, self.call_timeout)
        route = await route_or_none(self.admin, self.topic, self.call_timeout)
        if route is None:  # no message was dead-lettered yet
            return []
        queues = {data.broker_name: data for data in route.queues}
        held = [(master, queues[master.name]) for master in sorted(masters, key=lambda m: m.name)
                if master.name in queues]
        refused = [f"{master.name} (perm {data.perm})" for master, data in held if not data.perm & Perm.READ]
        if refused:
            raise ReadFailed(f"{self.topic} is not readable on {', '.join(refused)}: brokers up to 4.9.1 create it "
                             "write-only. Set `spec.readable: true` on the group's DeadLetterQueue and the operator "
                             "adds the read permission")
        return held

    async def _pull(self, reader: PullConsumer, master: Master, queue: MessageQueue, offset: int,
                    end: int) -> tuple[list[MessageExt], int]:
        """The messages of one pull below `end`, and where to pull next (`end` when the queue has no more)."""
        pulled = await bounded(reader.pull(queue, offset, max_messages=min(BATCH, end - offset)), self.call_timeout,
                               f"{master.name} ({master.addr}) pull of {queue.topic} queue {queue.queue_id} "
                               f"at offset {offset}")
        batch = [message for message in pulled.messages if message.queue_offset < end]
        if self.absent_ids:
            self.absent_ids = self.absent_ids.difference(*(message_ids(message) for message in batch))
        # OFFSET_ILLEGAL: retention removed what lay below next_begin_offset; NO_NEW_MSG: the store ends early.
        if pulled.status is PullStatus.NO_NEW_MSG or pulled.next_begin_offset <= offset:
            return batch, end
        return batch, min(pulled.next_begin_offset, end)

    async def _reader(self, master: Master) -> PullConsumer:
        """A consumer of a group `master` already has, so that pulling creates none."""
        where = f"{master.name} ({master.addr})"
        groups = await bounded(self.admin.get_all_subscription_groups(master.addr), self.call_timeout,
                               f"{where} subscription groups")
        for group in (self.spec.redrive_group, self.spec.consumer_group):
            if group in groups:
                if group not in self._readers:
                    self._readers[group] = PullConsumer(self.admin.pool, self.admin.namesrv_addrs, group)
                return self._readers[group]
        raise ReadFailed(f"{where} has neither group {self.spec.redrive_group} nor {self.spec.consumer_group}: "
                         "reading as another group would create that group there")
