"""DeadLetterQueue on the control loop: read each object's dead-letter queue, run its redrive, say what its status
should be.

The loop passes an object at once when its spec changes, when its redrive ends, every `dead_letter_interval` (the
kind's resync) and, while a redrive runs, every `redrive_progress_interval`. The status of an active run carries its
progress, from which a restarted operator (or the replica that takes over) resumes it.
"""

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, Protocol

from rocketmq_retry.controller import DLQ_KIND
from rocketmq_retry.controller.config import OperatorConfig
from rocketmq_retry.controller.loop import Finalized, Job, Report
from rocketmq_retry.controller.metrics import Metrics
from rocketmq_retry.controller.publisher import StatusSink
from rocketmq_retry.controller.records import ClaimKey, Claims, PolicyRecord
from rocketmq_retry.controller.secrets import SecretReader, SecretUnavailable
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
from rocketmq_retry.domain.expiry import DEAD_LETTERS_EXPIRING
from rocketmq_retry.domain.redrive import RedriveProgress, RedriveScope, RedriveState
from rocketmq_retry.domain.spec import ClusterRef, SpecError
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


def dead_letter_claim(record: PolicyRecord, config: OperatorConfig) -> ClaimKey | None:
    """The (cluster key, consumer group) whose dead letters the object watches, the key of its kopf index; None when
    its spec is unusable."""
    try:
        spec = parse_dead_letter_spec(record.spec)
        return config.cluster_for(spec.cluster).key, spec.consumer_group
    except SpecError:
        return None


def redrive_engine(admin: Admin, spec: DeadLetterQueueSpec, progress: RedriveProgress) -> Redrive:
    """The engine for a run, on the admin's connections: pulls as the redrive group, sends with a plain producer."""
    servers = admin.namesrv_addrs
    return Redrive(PullConsumer(admin.pool, servers, spec.redrive_group), Producer(admin.pool, servers),
                   spec.consumer_group, progress)


class DeadLetterQueues:
    """DeadLetterQueue on the control loop. A pass reads each object's queue on its cluster's masters and acts on its
    redrive request; the redrive itself runs on as a task of its own (it outlives any pass), and wakes the object
    when it ends. Active runs report their progress at each resync (`dead_letter_interval`)."""

    name = DLQ_KIND

    def __init__(self, config: OperatorConfig, claims: Claims, *,
                 admins: Callable[[ClusterRef, Credentials | None], Admin], secrets: SecretReader, sink: StatusSink,
                 metrics: Metrics, observe: Observe = observe_dead_letters,
                 begin: Begin = begin_redrive, engine: EngineFactory = redrive_engine) -> None:
        self.sink = sink
        self.resync_interval = config.dead_letter_interval
        self.wake: Callable[[str], None] = lambda uid: None  # set by the operator: queue the object on the loop
        self._config = config
        self._claims = claims
        self._admins = admins
        self._secrets = secrets
        self._metrics = metrics
        self._observe = observe
        self._begin = begin
        self._engine = engine
        self._runs: dict[str, _Runner] = {}

    def claim(self, record: PolicyRecord) -> ClaimKey | None:
        return dead_letter_claim(record, self._config)

    def claimants(self, claim: ClaimKey | None) -> Iterable[PolicyRecord]:
        return self._claims.get(claim, ())

    def forget(self, uid: str) -> None:
        """Stop the object's run abruptly, as a crash would; a later operator resumes it from its status."""
        self._metrics.dead_letter_queue_gone(uid)
        runner = self._runs.pop(uid, None)
        if runner is not None:
            runner.stop()

    async def close(self) -> None:
        """Stop every run (the operator exits)."""
        runners, self._runs = list(self._runs.values()), {}
        await asyncio.gather(*(runner.stopped() for runner in runners))

    async def run_pass(self, cluster: str, jobs: Sequence[Job], now: datetime, *,
                       fresh: bool) -> dict[str, Report | Finalized]:
        """Every object of the pass at once: each reads its own queue, and they share the admin connections."""
        reports = await asyncio.gather(*(self._step(job.record, now) for job in jobs))
        return {job.record.uid: report for job, report in zip(jobs, reports, strict=True)}

    async def _step(self, record: PolicyRecord, now: datetime) -> Report:
        runner = self._runs.get(record.uid)
        if runner is None:
            runner = self._runs[record.uid] = _Runner(record, self._metrics, lambda: self.wake(record.uid))
        try:
            spec = parse_dead_letter_spec(record.spec)
            cluster = self._config.cluster_for(spec.cluster)
        except SpecError as error:
            return runner.report(record, DeadLetterView(Outcome(Reason.INVALID_SPEC, str(error)), redrive=runner.run),
                                 now)
        runner.reap(now)
        plan = plan_redrive(spec.redrive, runner.run, alive=runner.alive)
        topic = dlq_topic(spec.consumer_group)
        owner = self._owner(record, spec, cluster)
        if owner is not None:
            message = (f"consumer group {spec.consumer_group} on cluster {cluster.key} is watched by the older "
                       f"DeadLetterQueue {owner}; delete one of the two")
            return runner.report(record, DeadLetterView(Outcome(Reason.CONFLICT, message), spec, topic,
                                                        redrive=runner.run, conflict_with=owner), now)
        try:
            ref = cluster.acl_secret_ref
            credentials = None if ref is None else await self._secrets.credentials(record.namespace, ref)
        except SecretUnavailable as error:
            outcome = Outcome(Reason.ACL_SECRET_UNAVAILABLE, f"cannot read the ACL Secret: {error}")
            return runner.report(record, DeadLetterView(outcome, spec, topic, redrive=runner.run), now)
        admin = self._admins(cluster, credentials)
        await self._act(runner, plan, spec, admin, now=now, ref=record.ref)
        backlog = await self._observe(admin, cluster, spec, call_timeout=self._config.broker_timeout)
        view = DeadLetterView(backlog_outcome(backlog, readable=spec.readable), spec, topic, backlog, runner.run)
        report = runner.report(record, view, now, cluster.key)
        # A run's progress is published every few seconds, and each look lets the loop's leadership gate stop a run
        # on a replica that no longer leads.
        return replace(report, requeue_after=self._config.redrive_progress_interval) if runner.alive else report

    async def _act(self, runner: "_Runner", plan: RedrivePlan, spec: DeadLetterQueueSpec, admin: Admin, *,
                   now: datetime, ref: str) -> None:
        """Carry out the plan for the object's redrive request: start, resume, cancel or refuse a run."""
        run, request = runner.run, spec.redrive
        if plan.reject is not None and run is not None:
            run.rejected_request_id = plan.reject
        if plan.action is RedriveAction.START and request is not None:
            try:
                runner.run = await self._begin(admin, spec, request, now, call_timeout=self._config.broker_timeout)
            except ReadFailed as error:
                runner.run = request.start(now)
                runner.run.finish(RedriveState.FAILED, now, f"could not start: {error}")
                return
            runner.start(self._engine(admin, spec, runner.run), ref)
        elif plan.action is RedriveAction.RESUME and run is not None:
            log.info("[%s] resuming redrive %s", ref, run.request_id)
            runner.start(self._engine(admin, spec, run), ref)
        elif plan.action is RedriveAction.CANCEL and run is not None:
            if runner.alive:
                runner.cancel()
            else:
                run.finish(RedriveState.CANCELLED, now, "cancelled while no run was active (the operator restarted)")
        elif plan.action is RedriveAction.SKIP and request is not None:
            runner.run = request.start(now)
            runner.run.finish(RedriveState.CANCELLED, now, "cancelled before it started")

    def _owner(self, record: PolicyRecord, spec: DeadLetterQueueSpec, cluster: ClusterRef) -> str | None:
        """namespace/name of an older object watching the same group in the same cluster (it wins), else None."""
        claims = [Claim(other.namespace, other.name, other.created, cluster.key, spec.consumer_group)
                  for other in self._claims.get((cluster.key, spec.consumer_group), ())
                  if other.ref != record.ref and not other.deleting]
        claims.append(Claim(record.namespace, record.name, record.created, cluster.key, spec.consumer_group))
        return resolve_ownership(claims)[record.ref].conflict_with


class _Runner:
    """One object's redrive: the run's progress (restored from status at start), its task, and its counters."""

    def __init__(self, record: PolicyRecord, metrics: Metrics, ended: Callable[[], None]) -> None:
        self.run = _last_run(record.status)
        self._uid = record.uid
        self._metrics = metrics
        self._ended = ended
        self._counted = _counts(self.run)  # the restored counters were counted by whoever wrote them
        self._engine: Redrive | None = None
        self._task: asyncio.Task[RedriveProgress] | None = None

    @property
    def alive(self) -> bool:
        return self._task is not None and not self._task.done()

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def stopped(self) -> None:
        self.stop()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)

    def cancel(self) -> None:
        """Ask the run to stop after the message in hand; what is left stays pending."""
        if self._engine is not None:
            self._engine.stop()

    def start(self, redrive: Redrive, ref: str) -> None:
        assert self.run is not None
        self._engine = redrive
        self._task = asyncio.create_task(redrive.run(), name=f"redrive {self.run.request_id} of {ref}")
        self._task.add_done_callback(lambda _: self._ended())

    def reap(self, now: datetime) -> None:
        """Take a finished run's task."""
        if self._task is None or not self._task.done():
            return
        task, self._task, self._engine = self._task, None, None
        error = None if task.cancelled() else task.exception()
        if error is not None and self.run is not None:
            log.error("redrive %s ended with an unexpected error", self.run.request_id, exc_info=error)
            self.run.finish(RedriveState.FAILED, now, f"ended with an unexpected error: {error}")

    def report(self, record: PolicyRecord, view: DeadLetterView, now: datetime, cluster: str | None = None) -> Report:
        """The status and Events of this pass (the loop writes the status only when it changed), counted."""
        status = dead_letter_status(view, record.status, record.generation, now)
        self._count(cluster, view, status)
        events = dead_letter_events(record.status, status, made_readable(view.backlog), view.topic) \
            if status_changed(record.status, status) else []
        return Report(status, events)

    def _count(self, cluster: str | None, view: DeadLetterView, status: Mapping[str, Any]) -> None:
        """Depth and backlog as read; redrive counters by what moved since the last count of the same run."""
        metrics, run, backlog = self._metrics, view.redrive, view.backlog
        if cluster is None:
            return
        if backlog is not None and backlog.error is None:
            states = dict(condition_states(status))
            metrics.dead_letter_queue_read(self._uid, cluster, backlog.depth, states.get(BACKLOG_HIGH) == "True",
                                           expiring=states.get(DEAD_LETTERS_EXPIRING) == "True",
                                           earliest_removal=backlog.earliest_removal)
        counts = _counts(run)
        if counts is not None:
            base = self._counted[1:] if self._counted and self._counted[0] == counts[0] else (0, 0, 0)
            moved, failed, duplicates = (current - before for current, before in zip(counts[1:], base, strict=True))
            metrics.redriven(cluster, moved, failed, duplicates)
            self._counted = counts


def _counts(run: RedriveProgress | None) -> tuple[str, int, int, int] | None:
    return None if run is None else (run.request_id, run.moved, run.failed, run.duplicates)


def _last_run(status: Mapping[str, Any]) -> RedriveProgress | None:
    raw = status.get("redrive")
    if raw is None:
        return None
    try:
        return RedriveProgress.from_json(raw)
    except ValueError as error:
        log.warning("ignoring a status.redrive the operator cannot read: %s", error)
        return None


def dead_letter_events(previous: Mapping[str, Any], status: Mapping[str, Any], readable_on: Sequence[str],
                       topic: str | None) -> list[PolicyEvent]:
    """Events for what changed: Ready's reason, BacklogHigh, DeadLettersExpiring, a refused request, the run's state,
    a readable topic."""
    events = [event for event in [transition_event(previous, status)] if event is not None]
    was, now = dict(condition_states(previous)), dict(condition_states(status))
    for alert, cleared in ((BACKLOG_HIGH, "BacklogCleared"), (DEAD_LETTERS_EXPIRING, "DeadLettersExpiryCleared")):
        if now.get(alert) == "True" and was.get(alert) != "True":
            events.append(PolicyEvent("Warning", alert, _condition_message(status, alert)))
        elif now.get(alert) == "False" and was.get(alert) == "True":
            events.append(PolicyEvent("Normal", cleared, _condition_message(status, alert)))
    if now.get(REDRIVE_REJECTED) == "True" and was.get(REDRIVE_REJECTED) != "True":
        events.append(PolicyEvent("Warning", "RedriveRejected", _condition_message(status, REDRIVE_REJECTED)))
    before, after = previous.get("redrive") or {}, status.get("redrive") or {}
    key = (after.get("requestId"), after.get("state"))
    if after and key != (before.get("requestId"), before.get("state")):
        request, state = key
        if state == RedriveState.RUNNING:
            events.append(PolicyEvent("Normal", "RedriveStarted", _started_message(RedriveProgress.from_json(after))))
        else:
            kind = "Warning" if state == RedriveState.FAILED else "Normal"
            events.append(PolicyEvent(kind, f"Redrive{state}", f"redrive {request}: {after.get('message', '')}"))
    if readable_on:
        events.append(PolicyEvent("Normal", "DeadLetterTopicReadable",
                                  f"made {topic} readable (perm 6) on {', '.join(readable_on)}"))
    return events


def _started_message(run: RedriveProgress) -> str:
    """What a run set out to do, for its RedriveStarted Event."""
    target = "the failing group alone" if run.sends_to is RedriveScope.GROUP else "the topic"
    what = f"dry run {run.request_id}" if run.dry_run else f"redrive {run.request_id} to {target}"
    pending = f"{run.planned} message(s) pending"
    if not run.selector.everything:
        pending += f", taking {run.selector.describe()}"
    pace = "" if run.dry_run else f" at up to {run.rate}/s"
    return f"{what} started: {pending}{pace}"


def _condition_message(status: Mapping[str, Any], kind: str) -> str:
    for item in status.get("conditions") or []:
        if isinstance(item, Mapping) and item.get("type") == kind:
            return str(item.get("message", ""))
    return ""

