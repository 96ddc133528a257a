"""The operator's work on one DeadLetterQueue object, free of kopf: read the queue, run its redrive, write status.

A redrive outlives any single event, so each object gets one long-lived worker (a kopf daemon ticks it): the worker
owns the object's redrive task, reads the brokers every `dead_letter_interval` and at once when the spec or the run
changes, and writes status and Events only when they change. The status of an active run carries its progress, from
which a restarted operator resumes it.
"""

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from rocketmq_retry.controller.engine import SecretReader, SecretUnavailable, StatusSink
from rocketmq_retry.controller.metrics import Metrics
from rocketmq_retry.controller.records import PolicyRecord
from rocketmq_retry.controller.statuses import PolicyEvent, condition_states, status_changed, transition_event
from rocketmq_retry.domain.conditions import Outcome, Reason
from rocketmq_retry.domain.conflicts import Claim, resolve_ownership
from rocketmq_retry.domain.dead_letters import (
    BACKLOG_HIGH,
    REDRIVE_REJECTED,
    Backlog,
    DeadLetterQueueSpec,
    DeadLetterView,
    RedriveAction,
    RedrivePlan,
    RedriveSpec,
    backlog_outcome,
    dead_letter_status,
    made_readable,
    parse_dead_letter_spec,
    plan_redrive,
)
from rocketmq_retry.domain.redrive import RedriveProgress, RedriveState
from rocketmq_retry.domain.spec import ClusterRef, SpecError
from rocketmq_retry.reconcile.config import OperatorConfig
from rocketmq_retry.reconcile.dead_letters import observe_dead_letters
from rocketmq_retry.reconcile.reading import ReadFailed
from rocketmq_retry.reconcile.redrive import Redrive, begin_redrive
from rocketmq_retry.remoting.acl import Credentials
from rocketmq_retry.remoting.admin import Admin
from rocketmq_retry.remoting.consumer import PullConsumer
from rocketmq_retry.remoting.producer import Producer
from rocketmq_retry.remoting.pulling import dlq_topic

log = logging.getLogger(__name__)


class Observe(Protocol):
    async def __call__(self, admin: Admin, cluster: ClusterRef, spec: DeadLetterQueueSpec, *,
                       call_timeout: float) -> Backlog: ...


class Begin(Protocol):
    async def __call__(self, admin: Admin, spec: DeadLetterQueueSpec, request: RedriveSpec, now: datetime, *,
                       call_timeout: float) -> RedriveProgress: ...


EngineFactory = Callable[[Admin, DeadLetterQueueSpec, RedriveProgress], Redrive]


def redrive_engine(admin: Admin, spec: DeadLetterQueueSpec, progress: RedriveProgress) -> Redrive:
    """The engine for a run, on the admin's connections: pulls as the redrive group, sends with a plain producer."""
    servers = admin.namesrv_addrs
    return Redrive(PullConsumer(admin.pool, servers, spec.redrive_group), Producer(admin.pool, servers),
                   dlq_topic(spec.consumer_group), progress)


@dataclass
class DeadLetterRuntime:
    config: OperatorConfig
    admins: Callable[[ClusterRef, Credentials | None], Admin]
    secrets: SecretReader
    sink: StatusSink
    metrics: Metrics = field(default_factory=Metrics)
    observe: Observe = observe_dead_letters
    begin: Begin = begin_redrive
    engine: EngineFactory = redrive_engine


class DeadLetterWorker:
    def __init__(self, runtime: DeadLetterRuntime, record: PolicyRecord) -> None:
        self._runtime = runtime
        self._uid = record.uid
        self._status: dict[str, Any] = dict(record.status)  # as last written, or as found at start
        self._run = _last_run(record.status)
        self._counted = _counts(self._run)  # the restored counters were counted by whoever wrote them
        self._engine: Redrive | None = None
        self._task: asyncio.Task[RedriveProgress] | None = None
        self._generation: int | None = None
        self._refreshed: float | None = None

    @property
    def alive(self) -> bool:
        return self._task is not None and not self._task.done()

    async def tick(self, record: PolicyRecord, known: Iterable[PolicyRecord], now: datetime) -> None:
        """Act on the spec and a finished run; read the brokers when due or when something changed."""
        try:
            spec = parse_dead_letter_spec(record.spec)
            cluster = self._runtime.config.cluster_for(spec.cluster)
        except SpecError as error:
            await self._publish(record, DeadLetterView(Outcome(Reason.INVALID_SPEC, str(error)), redrive=self._run),
                                now)
            return
        finished = self._reap(now)
        plan = plan_redrive(spec.redrive, self._run, alive=self.alive)
        interval = self._runtime.config.dead_letter_interval
        due = (finished or plan != RedrivePlan(RedriveAction.NONE) or record.generation != self._generation
               or self._refreshed is None or time.monotonic() - self._refreshed >= interval)
        if not due:
            return
        self._generation, self._refreshed = record.generation, time.monotonic()
        topic = dlq_topic(spec.consumer_group)
        owner = _owner(record, spec, cluster, known, self._runtime.config)
        if owner is not None:
            message = (f"consumer group {spec.consumer_group} on cluster {cluster.key} is watched by the older "
                       f"DeadLetterQueue {owner}; delete one of the two")
            await self._publish(record, DeadLetterView(Outcome(Reason.CONFLICT, message), spec, topic,
                                                       redrive=self._run, conflict_with=owner), now)
            return
        try:
            ref = cluster.acl_secret_ref
            credentials = None if ref is None else await self._runtime.secrets.credentials(record.namespace, ref)
        except SecretUnavailable as error:
            outcome = Outcome(Reason.ACL_SECRET_UNAVAILABLE, f"cannot read the ACL Secret: {error}")
            await self._publish(record, DeadLetterView(outcome, spec, topic, redrive=self._run), now)
            return
        admin = self._runtime.admins(cluster, credentials)
        await self._act(plan, spec, admin, record.ref, now)
        backlog = await self._runtime.observe(admin, cluster, spec, call_timeout=self._runtime.config.broker_timeout)
        view = DeadLetterView(backlog_outcome(backlog, readable=spec.readable), spec, topic, backlog, self._run)
        await self._publish(record, view, now, cluster.key)

    async def close(self) -> None:
        """Stop the run abruptly, as a crash would; the next worker for the object resumes it from its status."""
        self._runtime.metrics.dead_letter_queue_gone(self._uid)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _act(self, plan: RedrivePlan, spec: DeadLetterQueueSpec, admin: Admin, ref: str, now: datetime) -> None:
        run, request = self._run, spec.redrive
        if plan.reject is not None and run is not None:
            run.rejected_request_id = plan.reject
        if plan.action is RedriveAction.START and request is not None:
            try:
                self._run = await self._runtime.begin(admin, spec, request, now,
                                                      call_timeout=self._runtime.config.broker_timeout)
            except ReadFailed as error:
                self._run = _new_run(request, now)
                self._run.finish(RedriveState.FAILED, now, f"could not start: {error}")
                return
            self._start(admin, spec, ref)
        elif plan.action is RedriveAction.RESUME and run is not None:
            log.info("%s: resuming redrive %s", ref, run.request_id)
            self._start(admin, spec, ref)
        elif plan.action is RedriveAction.CANCEL and run is not None:
            if self._engine is not None and self.alive:
                self._engine.stop()
            else:
                run.finish(RedriveState.CANCELLED, now, "cancelled while no run was active (the operator restarted)")
        elif plan.action is RedriveAction.SKIP and request is not None:
            self._run = _new_run(request, now)
            self._run.finish(RedriveState.CANCELLED, now, "cancelled before it started")

    def _start(self, admin: Admin, spec: DeadLetterQueueSpec, ref: str) -> None:
        assert self._run is not None
        self._engine = self._runtime.engine(admin, spec, self._run)
        self._task = asyncio.create_task(self._engine.run(), name=f"redrive {self._run.request_id} of {ref}")

    def _reap(self, now: datetime) -> bool:
        """Take a finished run's task; True when one finished since the last tick."""
        if self._task is None or not self._task.done():
            return False
        task, self._task, self._engine = self._task, None, None
        error = None if task.cancelled() else task.exception()
        if error is not None and self._run is not None:
            log.error("redrive %s ended with an unexpected error", self._run.request_id, exc_info=error)
            self._run.finish(RedriveState.FAILED, now, f"ended with an unexpected error: {error}")
        return True

    async def _publish(self, record: PolicyRecord, view: DeadLetterView, now: datetime,
                       cluster: str | None = None) -> None:
        status = dead_letter_status(view, self._status, record.generation, now)
        self._count(cluster, view, status)
        if not status_changed(self._status, status):
            return
        events = dead_letter_events(self._status, status, made_readable(view.backlog), view.topic)
        await self._runtime.sink.patch_status(record, status)
        merged = {**self._status, **status}
        self._status = {key: value for key, value in merged.items() if value is not None}
        for event in events:
            await self._runtime.sink.post_event(record, event)

    def _count(self, cluster: str | None, view: DeadLetterView, status: Mapping[str, Any]) -> None:
        """Depth and backlog as read; redrive counters by what moved since the last count of the same run."""
        metrics, run, backlog = self._runtime.metrics, view.redrive, view.backlog
        if cluster is None:
            return
        if backlog is not None and backlog.error is None:
            high = dict(condition_states(status)).get(BACKLOG_HIGH) == "True"
            metrics.dead_letter_queue_read(self._uid, cluster, backlog.depth, high)
        counts = _counts(run)
        if counts is not None:
            base = self._counted[1:] if self._counted and self._counted[0] == counts[0] else (0, 0, 0)
            moved, failed, duplicates = (current - before for current, before in zip(counts[1:], base, strict=True))
            metrics.redriven(cluster, moved, failed, duplicates)
            self._counted = counts


def _counts(run: RedriveProgress | None) -> tuple[str, int, int, int] | None:
    return None if run is None else (run.request_id, run.moved, run.failed, run.duplicates)


def _new_run(request: RedriveSpec, now: datetime) -> RedriveProgress:
    return RedriveProgress(request.request_id, request.rate, now, request.max_messages, request.target_topic)


def _last_run(status: Mapping[str, Any]) -> RedriveProgress | None:
    raw = status.get("redrive")
    if raw is None:
        return None
    try:
        return RedriveProgress.from_json(raw)
    except ValueError as error:
        log.warning("ignoring a status.redrive the operator cannot read: %s", error)
        return None


def _owner(record: PolicyRecord, spec: DeadLetterQueueSpec, cluster: ClusterRef, known: Iterable[PolicyRecord],
           config: OperatorConfig) -> str | None:
    """namespace/name of an older object watching the same group in the same cluster (it wins), else None."""
    claims = [Claim(record.namespace, record.name, record.created, cluster.key, spec.consumer_group)]
    for other in known:
        if other.ref == record.ref or other.deleting:
            continue
        try:
            theirs = parse_dead_letter_spec(other.spec)
            where = config.cluster_for(theirs.cluster)
        except SpecError:
            continue
        claims.append(Claim(other.namespace, other.name, other.created, where.key, theirs.consumer_group))
    return resolve_ownership(claims)[record.ref].conflict_with


def dead_letter_events(previous: Mapping[str, Any], status: Mapping[str, Any], readable_on: Sequence[str],
                       topic: str | None) -> list[PolicyEvent]:
    """Events for what changed: Ready's reason, BacklogHigh, a refused request, the run's state, a readable topic."""
    events = [event for event in [transition_event(previous, status)] if event is not None]
    was, now = dict(condition_states(previous)), dict(condition_states(status))
    backlog = _condition_message(status, BACKLOG_HIGH)
    if now.get(BACKLOG_HIGH) == "True" and was.get(BACKLOG_HIGH) != "True":
        events.append(PolicyEvent("Warning", "BacklogHigh", backlog))
    elif now.get(BACKLOG_HIGH) == "False" and was.get(BACKLOG_HIGH) == "True":
        events.append(PolicyEvent("Normal", "BacklogCleared", backlog))
    if now.get(REDRIVE_REJECTED) == "True" and was.get(REDRIVE_REJECTED) != "True":
        events.append(PolicyEvent("Warning", "RedriveRejected", _condition_message(status, REDRIVE_REJECTED)))
    before, after = previous.get("redrive") or {}, status.get("redrive") or {}
    key = (after.get("requestId"), after.get("state"))
    if after and key != (before.get("requestId"), before.get("state")):
        request, state = key
        if state == RedriveState.RUNNING:
            planned = RedriveProgress.from_json(after).planned
            events.append(PolicyEvent("Normal", "RedriveStarted", f"redrive {request} started: {planned} "
                                      f"message(s) pending at up to {after.get('rate')}/s"))
        else:
            kind = "Warning" if state == RedriveState.FAILED else "Normal"
            events.append(PolicyEvent(kind, f"Redrive{state}", f"redrive {request}: {after.get('message', '')}"))
    if readable_on:
        events.append(PolicyEvent("Normal", "DeadLetterTopicReadable",
                                  f"made {topic} readable (perm 6) on {', '.join(readable_on)}"))
    return events


def _condition_message(status: Mapping[str, Any], kind: str) -> str:
    for item in status.get("conditions") or []:
        if isinstance(item, Mapping) and item.get("type") == kind:
            return str(item.get("message", ""))
    return ""

