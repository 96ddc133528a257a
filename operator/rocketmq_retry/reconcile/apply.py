"""One reconciliation pass over a cluster for any number of policies: read each master once, batch the writes, then
read each slave's groups to tell whether it holds what its master was given (slaves are never written to).

Event handlers pass one policy, the drift sweep all policies of a cluster; both get per-broker outcomes. Every
failure is reported as a Failed broker (or a cluster-wide error when the name servers cannot be read), never raised,
so a dead broker cannot stop the others from being configured.
"""

import asyncio
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from rocketmq_retry.domain.broker import DEFAULT_RETRY_QUEUE_NUMS, BrokerLine
from rocketmq_retry.domain.conditions import Reason
from rocketmq_retry.domain.desired import RETRY_QUEUE_NUMS, desired_fields, reset_fields
from rocketmq_retry.domain.diff import GroupPlan, plan_group
from rocketmq_retry.domain.effective import BrokerSample, EffectiveView, effective_view
from rocketmq_retry.domain.jsontypes import JsonValue
from rocketmq_retry.domain.spec import ClusterRef, RetryPolicySpec
from rocketmq_retry.domain.status import BrokerState, BrokerStatus, SlaveStatus
from rocketmq_retry.reconcile.consumers import Census
from rocketmq_retry.reconcile.reading import (
    RETRY_TOPIC_PREFIX,
    BrokerSnapshot,
    ClusterAdmin,
    Master,
    ReadFailed,
    Slave,
    bounded,
    discover_masters,
    read_slave_groups,
)
from rocketmq_retry.reconcile.snapshots import Snapshots
from rocketmq_retry.remoting.admin import DEFAULT_BATCH_SIZE
from rocketmq_retry.remoting.codes import Perm
from rocketmq_retry.remoting.models import SubscriptionGroupConfig, TopicConfig

SlaveGroups = Mapping[str, Mapping[str, JsonValue]]  # group name -> config, as a slave holds it
SlaveRead = tuple[Slave, SlaveGroups | ReadFailed]


class Mode(StrEnum):
    APPLY = "Apply"  # write the owned fields with the spec's values
    RESET = "Reset"  # write the owned fields with RocketMQ's defaults, only where the group exists
    OBSERVE = "Observe"  # read only: unmanaged, paused or in conflict


@dataclass(frozen=True)
class Intent:
    key: str  # the caller's identity for the policy, e.g. namespace/name
    spec: RetryPolicySpec
    mode: Mode


@dataclass(frozen=True)
class PolicyResult:
    brokers: tuple[BrokerStatus, ...]
    view: EffectiveView
    error: str | None = None  # why no master could be reached at all (name servers down, credentials missing)
    error_reason: Reason = Reason.BROKER_UNREACHABLE  # the Ready reason `error` is reported under
    retry_backlog: tuple[tuple[str, int], ...] | None = None  # (master, retries waiting) at the last census


@dataclass(frozen=True)
class _Planned:
    intent: Intent
    plan: GroupPlan | None  # None: nothing to write (observe, or reset of an absent group)

    @property
    def edits_existing(self) -> bool:
        """A write into a group the broker holds, which must be planned from a new read (reconcile/snapshots.py)."""
        return self.plan is not None and self.plan.needs_write and not self.plan.creates


async def reconcile_cluster(admin: ClusterAdmin, cluster: ClusterRef, intents: Sequence[Intent], *,
                            call_timeout: float, now: datetime, snapshots: Snapshots | None = None,
                            max_age: float = 0.0, census: Census | None = None,
                            census_groups: int = 0) -> dict[str, PolicyResult]:
    """Bring every master of `cluster` to what `intents` ask; results keyed by Intent.key.

    With `snapshots`, a master read less than `max_age` seconds ago is not read again unless the pass edits a group
    it holds (see reconcile/snapshots.py). Results show the groups' live consumers and retry backlogs as `census`
    last saw them; with `census_groups`, a census of that many of the intents' groups is taken first, after the
    writes (reconcile/consumers.py).
    """
    reads = snapshots or Snapshots()
    seen = census or Census()
    try:
        masters = await discover_masters(admin, cluster, call_timeout)
    except ReadFailed as error:
        message = f"cannot list the cluster's masters: {error}"
        return {intent.key: PolicyResult((), effective_view(intent.spec, ()), message) for intent in intents}
    outcomes = await asyncio.gather(*(_reconcile_broker(admin, master, intents, call_timeout, now,
                                                        snapshots=reads, max_age=max_age)
                                      for master in masters))
    if census_groups:
        await seen.take(admin, masters, [intent.spec.consumer_group for intent in intents], call_timeout,
                        limit=census_groups, proxies=[Master("proxy", str(proxy)) for proxy in cluster.proxies])
    results = {}
    for intent in intents:
        statuses = tuple(per_broker[intent.key][0] for per_broker in outcomes)
        samples = [sample for per_broker in outcomes if (sample := per_broker[intent.key][1]) is not None]
        group = intent.spec.consumer_group
        backlog = seen.retry_backlog(group)
        results[intent.key] = PolicyResult(statuses, effective_view(intent.spec, samples, seen.consumers(group) or ()),
                                           retry_backlog=None if backlog is None else tuple(sorted(backlog.items())))
    return results


async def _reconcile_broker(admin: ClusterAdmin, master: Master, intents: Sequence[Intent], call_timeout: float,
                            now: datetime, *, snapshots: Snapshots,
                            max_age: float) -> dict[str, tuple[BrokerStatus, BrokerSample | None]]:
    with_topics = any(intent.mode is Mode.APPLY or intent.spec.retry_queues is not None for intent in intents)
    snapshot = snapshots.recent(master, with_topics=with_topics, max_age=max_age, now=now)
    planned = [] if snapshot is None else [_plan(intent, snapshot) for intent in intents]
    if snapshot is None or any(item.edits_existing for item in planned):
        try:
            snapshot = await snapshots.read(admin, master, call_timeout, with_topics=with_topics, now=now)
        except ReadFailed as error:
            failed = BrokerStatus(master.name, BrokerState.FAILED, master.addr, message=str(error))
            return {intent.key: (failed, None) for intent in intents}
        planned = [_plan(intent, snapshot) for intent in intents]
    writes = [item.plan for item in planned if item.plan is not None and item.plan.needs_write]
    topics = {topic.topic_name.removeprefix(RETRY_TOPIC_PREFIX): topic
              for item in planned if (topic := _retry_topic(item, snapshot)) is not None}
    write_error = None
    try:
        # The retry topic first: a group whose retryQueueNums exceeds its retry topic's queues loses retries.
        if topics:
            await bounded(admin.create_or_update_topics(master.addr, list(topics.values())),
                          call_timeout * _requests(len(topics)),
                          f"{master.name} ({master.addr}) update of {len(topics)} retry topic(s)")
        if writes:
            configs = [SubscriptionGroupConfig.from_json(plan.config) for plan in writes]
            await bounded(admin.update_subscription_groups(master.addr, configs),
                          call_timeout * _requests(len(configs)),
                          f"{master.name} ({master.addr}) update of {len(configs)} group(s)")
        if topics or writes:
            snapshots.wrote(master, [plan.config for plan in writes], topics)
    except ReadFailed as error:
        snapshots.forget(master)
        write_error = str(error)
    slaves = await asyncio.gather(*(_read_slave(admin, master, slave, call_timeout) for slave in master.slaves))
    return {item.intent.key: _result(item, snapshot, topics, write_error, now, slaves=slaves) for item in planned}


async def _read_slave(admin: ClusterAdmin, master: Master, slave: Slave,
                      call_timeout: float) -> SlaveRead:
    try:
        return slave, await read_slave_groups(admin, master, slave, call_timeout)
    except ReadFailed as error:
        return slave, error


def _requests(configs: int) -> int:
    """List requests a write of `configs` takes: the call timeout holds per request."""
    return math.ceil(configs / DEFAULT_BATCH_SIZE)


def _plan(intent: Intent, snapshot: BrokerSnapshot) -> _Planned:
    group = intent.spec.consumer_group
    actual = snapshot.groups.get(group)
    if intent.mode is Mode.OBSERVE or (intent.mode is Mode.RESET and actual is None):
        return _Planned(intent, None)
    fields = desired_fields if intent.mode is Mode.APPLY else reset_fields
    return _Planned(intent, plan_group(group, actual, fields(intent.spec, snapshot.line), snapshot.line))


def _retry_topic(item: _Planned, snapshot: BrokerSnapshot) -> TopicConfig | None:
    """The group's %RETRY% topic to write so that it has at least the group's retryQueueNums queues, read and write;
    None when it has them (or the policy applies nothing).

    The broker sends a retry to a random queue below the group's retryQueueNums whatever the topic has (rocketmq#3953),
    and sizes the topic only when it creates it, at a consumer's first heartbeat. Made here, the topic is in the route
    before the first consumer starts, so its first retries are not held until the client's next route poll. It is
    never shrunk: retries waiting in the queues above would no longer be read.
    """
    plan = item.plan
    if item.intent.mode is not Mode.APPLY or plan is None or not (plan.creates or plan.group in snapshot.groups):
        return None
    wanted = plan.desired.get(RETRY_QUEUE_NUMS, plan.base.get(RETRY_QUEUE_NUMS, DEFAULT_RETRY_QUEUE_NUMS))
    if not isinstance(wanted, int) or isinstance(wanted, bool) or wanted < 1:
        return None
    existing = snapshot.retry_topics.get(plan.group)
    if existing is None:
        # As the broker itself creates it (TopicConfigManager.createTopicInSendMessageBackMethod): read and write.
        return TopicConfig(RETRY_TOPIC_PREFIX + plan.group, wanted, wanted, Perm.READ | Perm.WRITE)
    if existing.read_queue_nums >= wanted and existing.write_queue_nums >= wanted:
        return None
    # Everything else as it is; 5.x merges attributes into the stored ones, so an empty map keeps them.
    return replace(existing, read_queue_nums=max(existing.read_queue_nums, wanted),
                   write_queue_nums=max(existing.write_queue_nums, wanted), attributes={})


def _slave_status(item: _Planned, line: BrokerLine, slave: Slave, groups: SlaveGroups | ReadFailed) -> SlaveStatus:
    """Whether `slave` holds the owned fields the policy gives its group, judged as a write to it would be planned."""
    if isinstance(groups, ReadFailed):
        return SlaveStatus(slave.broker_id, slave.addr, None, str(groups))
    if item.intent.mode is not Mode.APPLY:
        return SlaveStatus(slave.broker_id, slave.addr, None)
    spec = item.intent.spec
    held = plan_group(spec.consumer_group, groups.get(spec.consumer_group), desired_fields(spec, line), line)
    if not held.needs_write:
        return SlaveStatus(slave.broker_id, slave.addr, True)
    lacks = "the group" if held.creates else ", ".join(change.field for change in held.changes)
    return SlaveStatus(slave.broker_id, slave.addr, False,
                       f"lacks {lacks}: a slave copies its master's groups every 10 s")


def _result(item: _Planned, snapshot: BrokerSnapshot, topics: Mapping[str, TopicConfig], write_error: str | None,
            now: datetime, *, slaves: Sequence[SlaveRead]) -> tuple[BrokerStatus, BrokerSample]:
    master, plan, name = snapshot.master, item.plan, item.intent.spec.consumer_group
    group: Mapping[str, JsonValue] | None = snapshot.groups.get(name)
    wrote_group = plan is not None and plan.needs_write
    topic = topics.get(name) or snapshot.retry_topics.get(name)
    if item.intent.mode is Mode.OBSERVE:
        status = BrokerStatus(master.name, BrokerState.UNMANAGED, master.addr, snapshot.version)
    elif not wrote_group and name not in topics:
        status = BrokerStatus(master.name, BrokerState.APPLIED, master.addr, snapshot.version)
    elif write_error is not None:
        status = BrokerStatus(master.name, BrokerState.FAILED, master.addr, snapshot.version, write_error)
        topic = snapshot.retry_topics.get(name)
    else:
        status = BrokerStatus(master.name, BrokerState.APPLIED, master.addr, snapshot.version, last_applied=now)
        if plan is not None and wrote_group:
            group = plan.config
    status = replace(status, slaves=tuple(_slave_status(item, snapshot.line, slave, groups)
                                          for slave, groups in slaves))
    sample = BrokerSample(master.name, snapshot.line, snapshot.delay_levels_ms,
                          snapshot.auto_create_subscription_group,
                          None if topic is None else topic.read_queue_nums, group)
    return status, sample
