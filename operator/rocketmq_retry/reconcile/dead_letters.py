"""Reading a consumer group's dead-letter queue on every master, and making it readable when the spec asks.

Queue counts and permissions come from the topic's route (one name-server call) rather than from every master's
whole topic table; a master's table is read only to make the topic readable there. Every failure is reported per
broker, never raised, so one dead broker cannot hide the others' dead letters.
"""

import asyncio
import dataclasses
from datetime import UTC, datetime
from typing import Final

from rocketmq_retry.domain.dead_letters import Backlog, BrokerBacklog, DeadLetterBrokerState, DeadLetterQueueSpec
from rocketmq_retry.domain.expiry import file_reserved_hours
from rocketmq_retry.domain.spec import ClusterRef
from rocketmq_retry.reconcile.reading import Master, ReadFailed, bounded, discover_masters
from rocketmq_retry.reconcile.redrive import pending_range, route_or_none
from rocketmq_retry.remoting.admin import Admin
from rocketmq_retry.remoting.codes import Perm
from rocketmq_retry.remoting.consumer import PullConsumer
from rocketmq_retry.remoting.models import QueueData, TopicConfig
from rocketmq_retry.remoting.pulling import PullStatus, dlq_topic
from rocketmq_retry.remoting.routing import MessageQueue

READ_WRITE: Final = Perm.READ | Perm.WRITE  # 6, what 4.9.2+ and 5.x brokers give a new dead-letter topic
NEW_TOPIC_QUEUES: Final = 1  # DLQ_NUMS_PER_GROUP: the broker creates the topic with one queue


async def observe_dead_letters(admin: Admin, cluster: ClusterRef, spec: DeadLetterQueueSpec, *,
                               call_timeout: float) -> Backlog:
    """Depth, size, oldest pending dead letter and fileReservedTime on every master; with `spec.readable`, make the
    topic readable."""
    topic = dlq_topic(spec.consumer_group)
    try:
        masters = await discover_masters(admin, cluster, call_timeout)
    except ReadFailed as error:
        return Backlog((), f"cannot list the cluster's masters: {error}")
    try:
        route = await route_or_none(admin, topic, call_timeout)
    except ReadFailed as error:
        return Backlog((), f"cannot read the route of {topic}: {error}")
    queues = {data.broker_name: data for data in route.queues} if route else {}
    peek = PullConsumer(admin.pool, admin.namesrv_addrs, spec.redrive_group)
    brokers = await asyncio.gather(*(_observe(admin, peek, master, queues.get(master.name), spec=spec,
                                              call_timeout=call_timeout) for master in masters))
    return Backlog(tuple(brokers))


async def _observe(admin: Admin, peek: PullConsumer, master: Master, data: QueueData | None, *,
                   spec: DeadLetterQueueSpec, call_timeout: float) -> BrokerBacklog:
    """The queue on `master` and, unless it could not be read, how long the master keeps its commit-log files: read
    at every pass, since `mqadmin updateBrokerConfig` changes it at runtime. A config that cannot be read leaves the
    depth standing and says why in the broker's message."""
    backlog = await _read_queue(admin, peek, master, data, spec=spec, call_timeout=call_timeout)
    if backlog.state is DeadLetterBrokerState.FAILED:
        return backlog
    where = f"{master.name} ({master.addr})"
    try:
        config = await bounded(admin.get_broker_config(master.addr), call_timeout, f"{where} broker config")
    except ReadFailed as error:
        return dataclasses.replace(backlog, message=str(error))
    try:
        return dataclasses.replace(backlog, file_reserved_hours=file_reserved_hours(config))
    except ValueError as error:
        return dataclasses.replace(backlog, message=f"{where}: {error}")


async def _read_queue(admin: Admin, peek: PullConsumer, master: Master, data: QueueData | None, *,
                      spec: DeadLetterQueueSpec, call_timeout: float) -> BrokerBacklog:
    topic = dlq_topic(spec.consumer_group)
    perm, queues = (data.perm, data.read_queue_nums) if data else (None, 0)
    made = False
    try:
        if spec.readable and (perm is None or not perm & Perm.READ):
            config, made = await _make_readable(admin, master, topic, call_timeout)
            perm, queues = config.perm, config.read_queue_nums
        if perm is None:
            return BrokerBacklog(master.name, master.addr, DeadLetterBrokerState.ABSENT)
        depth = stored = 0
        oldest: datetime | None = None
        for queue_id in range(queues):
            queue = MessageQueue(topic, master.name, queue_id)
            pending = await pending_range(admin, queue, master.addr, redrive_group=spec.redrive_group,
                                          call_timeout=call_timeout)
            depth += pending.end - pending.start
            stored += pending.end - pending.low
            if perm & Perm.READ and pending.end > pending.start:
                found = await _store_time(peek, queue, pending.start, call_timeout)
                if found is not None and (oldest is None or found < oldest):
                    oldest = found
    except ReadFailed as error:
        return BrokerBacklog(master.name, master.addr, DeadLetterBrokerState.FAILED, perm, queues,
                             made_readable=made, message=str(error))
    state = DeadLetterBrokerState.READABLE if perm & Perm.READ else DeadLetterBrokerState.NOT_READABLE
    return BrokerBacklog(master.name, master.addr, state, perm, queues, depth, stored, oldest, made)


async def _make_readable(admin: Admin, master: Master, topic: str, call_timeout: float) -> tuple[TopicConfig, bool]:
    """The topic's config with read and write permission on `master`, and whether it had to be written.

    An existing topic keeps its queue counts and every other setting (fewer read queues would hide messages);
    a missing one is created as the broker itself would create it.
    """
    where = f"{master.name} ({master.addr})"
    topics = await bounded(admin.get_all_topic_configs(master.addr), call_timeout, f"{where} topics")
    existing = topics.get(topic)
    if existing is not None and existing.perm & READ_WRITE == READ_WRITE:
        return existing, False  # the route has not caught up with a change already made
    config = TopicConfig(topic, NEW_TOPIC_QUEUES, NEW_TOPIC_QUEUES, READ_WRITE) if existing is None \
        else dataclasses.replace(existing, perm=existing.perm | READ_WRITE)
    await bounded(admin.create_or_update_topic(master.addr, config), call_timeout, f"{where} update of {topic}")
    return config, True


async def _store_time(peek: PullConsumer, queue: MessageQueue, offset: int, call_timeout: float) -> datetime | None:
    """Store time of the message at `offset`, None when it cannot be read (the age is a nicety, not the depth)."""
    try:
        pulled = await bounded(peek.pull(queue, offset, max_messages=1), call_timeout, f"{queue} at {offset}")
    except ReadFailed:
        return None
    if pulled.status is not PullStatus.FOUND or not pulled.messages:
        return None
    return datetime.fromtimestamp(pulled.messages[0].store_timestamp / 1000, UTC)
