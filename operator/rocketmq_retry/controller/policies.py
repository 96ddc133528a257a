"""RetryPolicy on the control loop: decide what each policy may do, apply the batch to the cluster's masters, and say
what each status should be; for a finalizer, reset what the policy owned.

A pass groups its policies by the ACL Secret they name (one connection identity each) and runs one reconciliation of
the cluster per group (reconcile/apply.py): each master's group table read once, the changed groups written in one
batch. Event passes may start from a read of the last `read_max_age` seconds (reconcile/snapshots.py); fresh passes
(the drift sweep, a master that appeared, a finalizer) always read, and take a census of the groups' live consumers
(reconcile/consumers.py), which every pass then reports.
"""

import dataclasses
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime

from rocketmq_retry.controller import KIND
from rocketmq_retry.controller.config import OperatorConfig
from rocketmq_retry.controller.loop import Finalized, Job, Report
from rocketmq_retry.controller.metrics import Metrics, Trigger
from rocketmq_retry.controller.publisher import StatusMemory, StatusSink
from rocketmq_retry.controller.records import ClaimKey, Claims, Decision, PolicyRecord, claim_key, decide
from rocketmq_retry.controller.secrets import SecretReader, SecretUnavailable
from rocketmq_retry.controller.statuses import (
    is_retryable,
    known_brokers,
    outcome_of,
    policy_status,
    transition_event,
)
from rocketmq_retry.domain.conditions import Reason
from rocketmq_retry.domain.effective import effective_view
from rocketmq_retry.domain.management import Management, management
from rocketmq_retry.domain.spec import AclSecretRef, ClusterRef, DeletionPolicy
from rocketmq_retry.domain.status import BrokerState, slaves_catching_up
from rocketmq_retry.reconcile.apply import Intent, Mode, PolicyResult, reconcile_cluster
from rocketmq_retry.reconcile.consumers import Census
from rocketmq_retry.reconcile.reading import ClusterAdmin
from rocketmq_retry.reconcile.snapshots import Snapshots
from rocketmq_retry.remoting.acl import Credentials

log = logging.getLogger(__name__)

AdminFactory = Callable[[ClusterRef, Credentials | None], ClusterAdmin]


class RetryPolicies:
    name = KIND

    def __init__(self, config: OperatorConfig, claims: Claims, *, admins: AdminFactory, secrets: SecretReader,
                 sink: StatusSink, memory: StatusMemory, metrics: Metrics) -> None:
        """`claims`: kopf's index of every policy by the group it claims, complete before the first event."""
        self.sink = sink
        self.resync_interval = config.sweep_interval
        self._config = config
        self._claims = claims
        self._admins = admins
        self._secrets = secrets
        self._memory = memory
        self._metrics = metrics
        self._snapshots: dict[tuple[str, Credentials | None], Snapshots] = {}
        self._censuses: dict[tuple[str, Credentials | None], Census] = {}
        self._clusters: dict[str, ClusterRef] = {}

    def claim(self, record: PolicyRecord) -> ClaimKey | None:
        return claim_key(record, self._config)

    def claimants(self, claim: ClaimKey | None) -> Iterable[PolicyRecord]:
        return self._claims.get(claim, ())

    def forget(self, uid: str) -> None:
        """Nothing is kept per policy: its status lives in the loop's memory, its groups on the brokers."""

    def clusters(self) -> list[ClusterRef]:
        """Every cluster a pass has run on since the start (the master watch looks at these)."""
        return list(self._clusters.values())

    async def run_pass(self, cluster: str, jobs: Sequence[Job], now: datetime, *,
                       fresh: bool) -> dict[str, Report | Finalized]:
        trigger = Trigger.SWEEP if fresh else Trigger.EVENT
        with self._metrics.reconcile_duration.labels(trigger).time():
            decisions = {job.record.uid: decide(job.record, self._claims, self._config) for job in jobs}
            resets = {job.record.uid: _reset(job, decisions[job.record.uid]) for job in jobs if job.finalizing}
            work: list[tuple[PolicyRecord, Intent]] = []
            for job in jobs:
                intent = resets.get(job.record.uid, decisions[job.record.uid].intent)
                if isinstance(intent, Intent):
                    work.append((job.record, intent))
            target = _target(decisions.values())
            results = await self._reconcile(target, work, now, fresh=fresh or bool(resets)) if target and work else {}
        if fresh and work:
            self._metrics.cluster_swept(cluster, results.values())
            self._metrics.keep_clusters({key[0] for key in self._claims if key is not None})
        outcomes: dict[str, Report | Finalized] = {}
        for job in jobs:
            uid = job.record.uid
            reset, result = resets.get(uid), results.get(uid)
            if isinstance(reset, str):
                outcomes[uid] = Finalized(True, reset)
            elif reset is not None and result is not None:
                outcomes[uid] = _finalized(reset, result)
            else:
                outcomes[uid] = self._report(job.record, decisions[uid], result, cluster=cluster, now=now,
                                             trigger=trigger)
        if fresh:  # the policies gauge from this pass's statuses and, for the others, the last written
            concluded = {uid: outcome.status for uid, outcome in outcomes.items() if isinstance(outcome, Report)}
            known = (record for claimants in self._claims.values() for record in claimants)
            self._metrics.count_policies(concluded.get(record.uid) or self._memory.current(record).status
                                         for record in known)
        return outcomes

    async def _reconcile(self, cluster: ClusterRef, pairs: Sequence[tuple[PolicyRecord, Intent]], now: datetime, *,
                         fresh: bool) -> dict[str, PolicyResult]:
        """One reconciliation of `cluster` per connection identity; results by uid."""
        self._clusters[cluster.key] = cluster
        by_secret: defaultdict[tuple[str, AclSecretRef] | None, list[tuple[PolicyRecord, Intent]]] = defaultdict(list)
        for record, intent in pairs:
            ref = intent.spec.cluster.acl_secret_ref if intent.spec.cluster else None
            by_secret[None if ref is None else (record.namespace, ref)].append((record, intent))
        results: dict[str, PolicyResult] = {}
        for secret, members in by_secret.items():
            try:
                credentials = None if secret is None else await self._secrets.credentials(*secret)
            except SecretUnavailable as error:
                message = f"cannot read the ACL Secret: {error}"
                results |= {record.uid: PolicyResult((), effective_view(intent.spec, ()), message,
                                                     Reason.ACL_SECRET_UNAVAILABLE) for record, intent in members}
                continue
            identity = (cluster.key, credentials)
            intents = [intent for _, intent in members]
            by_key = await reconcile_cluster(self._admins(cluster, credentials), cluster, intents,
                                             call_timeout=self._config.broker_timeout, now=now,
                                             snapshots=self._snapshots.setdefault(identity, Snapshots()),
                                             max_age=0.0 if fresh else self._config.read_max_age,
                                             census=self._censuses.setdefault(identity, Census()),
                                             census_groups=self._config.census_groups if fresh else 0)
            results |= {record.uid: by_key[intent.key] for record, intent in members}
        return results

    def _report(self, record: PolicyRecord, decision: Decision, result: PolicyResult | None, *, cluster: str,
                now: datetime, trigger: Trigger) -> Report:
        if trigger is Trigger.SWEEP and result is not None:
            written = [broker.name for broker in result.brokers if broker.last_applied is not None]
            if written:
                log.info("[%s] re-applied consumer group config on %s", record.ref, ", ".join(written))
                self._metrics.drift_corrections.labels(cluster).inc(len(written))
        status = policy_status(record, decision, result, now)
        outcome = outcome_of(decision, result)
        self._metrics.reconciles.labels(trigger, outcome.reason).inc()
        event = transition_event(record.status, status)
        if event is not None or trigger is Trigger.EVENT:
            log.info("[%s] %s: %s", record.ref, outcome.reason, outcome.message)
        catching_up = result is not None and slaves_catching_up(known_brokers(result, record.status), now,
                                                                 self._config.slave_catch_up)
        return Report(status, () if event is None else (event,), retry=is_retryable(outcome),
                      requeue_after=self._config.slave_check_interval if catching_up else None)


def _target(decisions: Iterable[Decision]) -> ClusterRef | None:
    """The pass's cluster, with the proxies any of its policies name: they are where its gRPC consumers are seen."""
    clusters = [decision.cluster for decision in decisions if decision.cluster is not None]
    if not clusters:
        return None
    proxies = dict.fromkeys(proxy for cluster in clusters for proxy in cluster.proxies)
    return dataclasses.replace(clusters[0], proxies=tuple(proxies))


def _reset(job: Job, decision: Decision) -> Intent | str:
    """What deleting this policy owes its group: the reset of the owned fields to RocketMQ's defaults, or why nothing
    (the message of the finalizer's outcome)."""
    intent = decision.intent
    if intent is None:
        return "the spec is invalid, so the policy owns nothing to reset"
    if intent.spec.deletion_policy is DeletionPolicy.RETAIN:
        return "deletionPolicy Retain: the group config is left as it is"
    if management(job.record.annotations) is Management.UNMANAGED:
        return "unmanaged: the group config is left as it is"
    if decision.conflict_with is not None:
        return f"the group is managed by {decision.conflict_with}: nothing to reset"
    return Intent(intent.key, intent.spec, Mode.RESET)


def _finalized(reset: Intent, result: PolicyResult) -> Finalized:
    """Honour deletionPolicy Reset: done when every master took the reset; groups and offsets stay."""
    failed = [f"{b.name}: {b.message}" for b in result.brokers if b.state is BrokerState.FAILED]
    if result.error is not None:
        return Finalized(False, f"cannot reset: {result.error}")
    if failed:
        return Finalized(False, "cannot reset on " + "; ".join(failed))
    return Finalized(True, f"reset the owned fields of {reset.spec.consumer_group} to RocketMQ's defaults on "
                           f"{len(result.brokers)} master broker(s)")
