"""The operator's work on policies, free of kopf: reconcile one policy, finalize one, or a cluster's worth at once.

The reconciler's workers, the finalizer and the drift sweep call these with the policies the operator knows; kopf only
delivers the events.
"""

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Final, Protocol

from rocketmq_retry.controller.metrics import Metrics, Trigger
from rocketmq_retry.controller.records import Claims, Decision, PolicyRecord, decide
from rocketmq_retry.controller.statuses import (
    PolicyEvent,
    is_retryable,
    outcome_of,
    policy_status,
    status_changed,
    transition_event,
)
from rocketmq_retry.domain.conditions import Reason
from rocketmq_retry.domain.effective import effective_view
from rocketmq_retry.domain.jsontypes import JsonObject
from rocketmq_retry.domain.management import Management, management
from rocketmq_retry.domain.spec import AclSecretRef, ClusterRef, DeletionPolicy
from rocketmq_retry.domain.status import BrokerState
from rocketmq_retry.reconcile.apply import Intent, Mode, PolicyResult, reconcile_cluster
from rocketmq_retry.reconcile.config import OperatorConfig
from rocketmq_retry.reconcile.locks import GroupLocks
from rocketmq_retry.reconcile.passes import PassQueue
from rocketmq_retry.reconcile.reading import ClusterAdmin
from rocketmq_retry.reconcile.snapshots import Snapshots
from rocketmq_retry.remoting.acl import Credentials

log = logging.getLogger(__name__)

AdminFactory = Callable[[ClusterRef, Credentials | None], ClusterAdmin]
PASS_WINDOW: Final = 0.05  # seconds an idle cluster's next pass waits for more policies to join it
EVENT_READ_MAX_AGE: Final = 2.0  # seconds a pass of event handlers may reuse a master's read (reconcile/snapshots.py)


class SecretUnavailable(Exception):
    """The ACL Secret cannot be read or lacks a key; the message is meant for status."""


class SecretReader(Protocol):
    async def credentials(self, namespace: str, ref: AclSecretRef) -> Credentials:
        """ACL credentials from a Secret; SecretUnavailable when it cannot."""
        ...


class StatusSink(Protocol):
    """Where status and Events go: the API server (controller/kubeapi.py), a recorder in tests."""

    async def patch_status(self, record: PolicyRecord, status: JsonObject) -> None: ...
    async def post_event(self, record: PolicyRecord, event: PolicyEvent) -> None: ...


@dataclass(frozen=True)
class Reconciled:
    status: JsonObject
    event: PolicyEvent | None
    retry: bool  # the outcome is retryable: reconcile again with backoff
    changed: bool  # the status differs from the one last written


@dataclass(frozen=True)
class Finalized:
    done: bool  # False: the reset could not be applied everywhere and should be retried
    message: str


class StatusMemory:
    """The status the operator last wrote per object (by uid).

    The operator is the only writer of status, so this is never older than the copy a watch delivers; comparing
    against it keeps the sweep from re-writing a status, or re-posting an Event, the watch has not caught up with.
    """

    def __init__(self) -> None:
        self._written: dict[str, dict[str, Any]] = {}

    def current(self, record: PolicyRecord) -> PolicyRecord:
        written = self._written.get(record.uid)
        return record if written is None else replace(record, status=written)

    def remember(self, record: PolicyRecord, status: JsonObject) -> None:
        merged = {**record.status, **status}
        self._written[record.uid] = {key: value for key, value in merged.items() if value is not None}

    def forget(self, record: PolicyRecord) -> None:
        self._written.pop(record.uid, None)

    def keep(self, uids: Iterable[str]) -> None:
        """Forget the objects not among `uids`: those deleted without a finalizer never reach `forget`."""
        live = set(uids)
        self._written = {uid: status for uid, status in self._written.items() if uid in live}


@dataclass
class Runtime:
    config: OperatorConfig
    admins: AdminFactory
    secrets: SecretReader
    locks: GroupLocks = field(default_factory=GroupLocks)
    memory: StatusMemory = field(default_factory=StatusMemory)
    metrics: Metrics = field(default_factory=Metrics)
    _queues: dict[tuple[str, Credentials | None], PassQueue] = field(default_factory=dict, init=False)
    _clusters: dict[str, ClusterRef] = field(default_factory=dict, init=False)

    def clusters(self) -> list[ClusterRef]:
        """Every cluster a pass has run on since the start."""
        return list(self._clusters.values())

    async def run(self, cluster: ClusterRef, pairs: Sequence[tuple[PolicyRecord, Intent]], now: datetime, *,
                  fresh: bool) -> dict[str, PolicyResult]:
        """These policies' results of the next pass over `cluster`; the caller holds their group locks."""
        by_secret: defaultdict[tuple[str, AclSecretRef] | None, list[Intent]] = defaultdict(list)
        for record, intent in pairs:
            ref = intent.spec.cluster.acl_secret_ref if intent.spec.cluster else None
            by_secret[None if ref is None else (record.namespace, ref)].append(intent)
        results: dict[str, PolicyResult] = {}
        for secret, intents in by_secret.items():
            try:
                credentials = None if secret is None else await self.secrets.credentials(*secret)
            except SecretUnavailable as error:
                message = f"cannot read the ACL Secret: {error}"
                results |= {i.key: PolicyResult((), effective_view(i.spec, ()), message, Reason.ACL_SECRET_UNAVAILABLE)
                            for i in intents}
                continue
            results |= await self._passes(cluster, credentials).run(intents, now, fresh=fresh)
        return results

    def _passes(self, cluster: ClusterRef, credentials: Credentials | None) -> PassQueue:
        """The pass queue of a cluster as seen with these credentials: one writer per cluster and identity."""
        key = (cluster.key, credentials)
        queue = self._queues.get(key)
        if queue is None:
            admin, timeout, snapshots = self.admins(cluster, credentials), self.config.broker_timeout, Snapshots()

            async def run_pass(intents: Sequence[Intent], now: datetime, fresh: bool) -> dict[str, PolicyResult]:
                return await reconcile_cluster(admin, cluster, intents, call_timeout=timeout, now=now,
                                               snapshots=snapshots, max_age=0.0 if fresh else EVENT_READ_MAX_AGE)

            queue = self._queues[key] = PassQueue(run_pass, cluster.key, window=PASS_WINDOW)
            self._clusters[cluster.key] = cluster
        return queue

    def locked(self, cluster: ClusterRef, intents: Iterable[Intent]) -> GroupLocks.Holder:
        return self.locks.hold((cluster.key, intent.spec.consumer_group) for intent in intents)


async def reconcile_record(runtime: Runtime, record: PolicyRecord, claims: Claims, now: datetime) -> Reconciled:
    """Apply one policy (or observe it when it may not write) and say what its status should be."""
    with runtime.metrics.reconcile_duration.labels(Trigger.EVENT).time():
        record = runtime.memory.current(record)
        decision = decide(record, claims, runtime.config)
        result = None
        if decision.intent is not None and decision.cluster is not None:
            async with runtime.locked(decision.cluster, [decision.intent]):
                results = await runtime.run(decision.cluster, [(record, decision.intent)], now, fresh=False)
                result = results[record.ref]
        return conclude(runtime, record, decision, result, now, trigger=Trigger.EVENT)


def conclude(runtime: Runtime, record: PolicyRecord, decision: Decision, result: PolicyResult | None,
             now: datetime, *, trigger: Trigger) -> Reconciled:
    """The status and Event of a pass; the status is remembered as written and the outcome counted."""
    status = policy_status(record, decision, result, now)
    event = transition_event(record.status, status)
    runtime.memory.remember(record, status)
    outcome = outcome_of(decision, result)
    runtime.metrics.reconciles.labels(trigger, outcome.reason).inc()
    return Reconciled(status, event, is_retryable(outcome), status_changed(record.status, status))


async def publish(runtime: Runtime, sink: StatusSink, record: PolicyRecord, reconciled: Reconciled) -> None:
    """Write the status if it changed and post the Event if there is one.

    A failed status write is raised, and the status memory forgets the object so that the next pass writes again;
    a failed Event is only logged: the status, which it repeats, is what counts.
    """
    if reconciled.changed:
        try:
            await sink.patch_status(record, reconciled.status)
        except Exception:
            runtime.memory.forget(record)
            raise
    if reconciled.event is not None:
        try:
            await sink.post_event(record, reconciled.event)
        except Exception as error:
            log.warning("%s: cannot post the %s Event: %s", record.ref, reconciled.event.reason, error)


async def finalize_record(runtime: Runtime, record: PolicyRecord, claims: Claims, now: datetime) -> Finalized:
    """Honour deletionPolicy: Reset restores RocketMQ's defaults of the owned fields; groups and offsets stay."""
    decision = decide(record, claims, runtime.config)
    intent, cluster = decision.intent, decision.cluster
    if intent is None or cluster is None:
        return Finalized(True, "the spec is invalid, so the policy owns nothing to reset")
    if intent.spec.deletion_policy is DeletionPolicy.RETAIN:
        return Finalized(True, "deletionPolicy Retain: the group config is left as it is")
    if management(record.annotations) is Management.UNMANAGED:
        return Finalized(True, "unmanaged: the group config is left as it is")
    if decision.conflict_with is not None:
        return Finalized(True, f"the group is managed by {decision.conflict_with}: nothing to reset")
    reset = Intent(intent.key, intent.spec, Mode.RESET)
    async with runtime.locked(cluster, [reset]):
        result = (await runtime.run(cluster, [(record, reset)], now, fresh=True))[record.ref]
    failed = [f"{b.name}: {b.message}" for b in result.brokers if b.state is BrokerState.FAILED]
    if result.error is not None:
        return Finalized(False, f"cannot reset: {result.error}")
    if failed:
        return Finalized(False, "cannot reset on " + "; ".join(failed))
    return Finalized(True, f"reset the owned fields of {intent.spec.consumer_group} to RocketMQ's defaults on "
                           f"{len(result.brokers)} master broker(s)")
