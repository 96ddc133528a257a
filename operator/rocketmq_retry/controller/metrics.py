"""The operator's Prometheus metrics, on a registry of their own rather than prometheus-client's global one.

Each Runtime owns a `Metrics`, so a test sees exact values and the endpoint serves only the operator's series. Label
values are bounded by design: trigger, Ready reason, cluster key, condition type and status, redrive result, kind of
client; never a policy, a dead-letter queue or a group (the objects' status and Events name those).
"""

from collections import Counter as Tally
from collections.abc import Collection, Iterable, Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any, Final, NamedTuple

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from rocketmq_retry.controller.statuses import condition_states
from rocketmq_retry.domain.conditions import READY, RECONCILING, STALLED, Reason
from rocketmq_retry.domain.consumers import ConsumerKind
from rocketmq_retry.domain.status import BrokerState
from rocketmq_retry.reconcile.apply import PolicyResult

DURATION_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Every (condition, status) the operator writes; Reconciling and Stalled are present only while True.
CONDITION_STATES: Final = ((READY, "True"), (READY, "False"), (READY, "Unknown"), (RECONCILING, "True"),
                           (STALLED, "True"))
_NOT_IN_SYNC: Final = frozenset({BrokerState.FAILED, BrokerState.PENDING})


class RedriveResult(StrEnum):
    MOVED = "moved"  # acknowledged by the target topic
    FAILED = "failed"  # given up after retries; the message stays pending
    DUPLICATE = "duplicate"  # re-sent after an interrupted run had delivered it already


class Trigger(StrEnum):
    EVENT = "event"  # a pass of objects whose spec or annotations changed; it may reuse a recent read
    SWEEP = "sweep"  # a fresh pass: the drift sweep, a master that appeared, a finalizer


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.reconciles = Counter(
            "rocketmq_retry_reconciles", "Policy reconciliations by trigger and resulting Ready reason.",
            ["trigger", "result"], registry=self.registry)
        self.reconcile_duration = Histogram(
            "rocketmq_retry_reconcile_duration_seconds",
            "Seconds per RetryPolicy pass over a cluster, by trigger.",
            ["trigger"], buckets=DURATION_BUCKETS, registry=self.registry)
        self.drift_corrections = Counter(
            "rocketmq_retry_drift_corrections", "Group configs the drift sweep rewrote on a master broker.",
            ["cluster"], registry=self.registry)
        self.brokers_out_of_sync = Gauge(
            "rocketmq_retry_brokers_out_of_sync",
            "Master brokers with a Failed or Pending policy in the cluster's last sweep pass that could list them.",
            ["cluster"], registry=self.registry)
        self.retry_backlog = Gauge(
            "rocketmq_retry_retry_backlog",
            "Retries waiting in the retry topics of a cluster's policy groups, as of the last sweep's census.",
            ["cluster"], registry=self.registry)
        self.live_consumers = Gauge(
            "rocketmq_retry_live_consumers",
            "Live consumer instances of a cluster's policy groups by kind of client, as of the last sweep's census.",
            ["cluster", "kind"], registry=self.registry)
        self.policies = Gauge(
            "rocketmq_retry_policies", "Known RetryPolicy objects by condition and status, as of the last sweep.",
            ["condition", "status"], registry=self.registry)
        self.dead_letters = Gauge(
            "rocketmq_retry_dead_letters",
            "Dead letters not yet redriven, summed over a cluster's DeadLetterQueue objects as of their last read.",
            ["cluster"], registry=self.registry)
        self.dead_letter_backlogs_high = Gauge(
            "rocketmq_retry_dead_letter_backlogs_high",
            "DeadLetterQueue objects of a cluster whose pending dead letters exceed their alertThreshold.",
            ["cluster"], registry=self.registry)
        self.dead_letter_queues_expiring = Gauge(
            "rocketmq_retry_dead_letter_queues_expiring",
            "DeadLetterQueue objects of a cluster whose oldest pending dead letter the brokers may remove within their "
            "expiryMargin (condition DeadLettersExpiring).",
            ["cluster"], registry=self.registry)
        self.dead_letters_earliest_removal = Gauge(
            "rocketmq_retry_dead_letters_earliest_removal_timestamp_seconds",
            "Unix time from which a broker may remove the first of a cluster's pending dead letters (store time plus "
            "fileReservedTime, a lower bound); absent while none is pending or it is unknown.",
            ["cluster"], registry=self.registry)
        self.redrive_messages = Counter(
            "rocketmq_retry_redrive_messages", "Dead letters handled by redrives, by result.",
            ["cluster", "result"], registry=self.registry)
        # Every known series exists from the start at zero, so rate() and absent() work from the first scrape.
        for trigger in Trigger:
            self.reconcile_duration.labels(trigger)
            for reason in Reason:
                self.reconciles.labels(trigger, reason)
        self._clusters: set[str] = set()
        self._dead_letter_queues: dict[str, _DeadLetterRead] = {}  # by uid
        self._dead_letter_clusters: set[str] = set()
        self._removal_clusters: set[str] = set()

    def serve(self, port: int) -> None:
        """Serve /metrics on every interface from a daemon thread, as a Service in front of the pod needs."""
        start_http_server(port, registry=self.registry)

    def cluster_swept(self, cluster: str, results: Iterable[PolicyResult]) -> None:
        """Count the brokers out of sync, the retry backlog and the live consumers; a pass that could not list the
        masters learnt nothing, so changes nothing."""
        listed = [result for result in results if result.error is None]
        if not listed:
            return
        names = {broker.name for result in listed for broker in result.brokers if broker.state in _NOT_IN_SYNC}
        self.brokers_out_of_sync.labels(cluster).set(len(names))
        waiting = sum(count for result in listed for _, count in result.retry_backlog or ())
        self.retry_backlog.labels(cluster).set(waiting)
        instances: Tally[str] = Tally()
        for result in listed:
            for item in result.view.consumers.classes if result.view.consumers is not None else ():
                instances[item.limit.kind] += item.instances
        for kind in ConsumerKind:
            self.live_consumers.labels(cluster, kind).set(instances[kind])
        self._clusters.add(cluster)

    def keep_clusters(self, clusters: Collection[str]) -> None:
        """Drop the gauge of clusters no live policy targets any more, so a stale count cannot keep an alert firing."""
        for gone in self._clusters.difference(clusters):
            self.brokers_out_of_sync.remove(gone)
            self.retry_backlog.remove(gone)
            for kind in ConsumerKind:
                self.live_consumers.remove(gone, kind)
        self._clusters.intersection_update(clusters)

    def count_policies(self, statuses: Iterable[Mapping[str, Any]]) -> None:
        """Set the policies gauge from every known policy's status; absent states are set to zero, not left stale."""
        tally = Tally(state for status in statuses for state in condition_states(status))
        for condition, status in CONDITION_STATES:
            self.policies.labels(condition, status).set(tally[(condition, status)])

    def dead_letter_queue_read(self, uid: str, cluster: str, depth: int, backlog_high: bool, *, expiring: bool,
                               earliest_removal: datetime | None) -> None:
        """Record one object's latest read; the gauges are the sums (the earliest removal: the minimum) over the
        objects of each cluster."""
        removal = None if earliest_removal is None else earliest_removal.timestamp()
        self._dead_letter_queues[uid] = _DeadLetterRead(cluster, depth, backlog_high, expiring, removal)
        self._publish_dead_letters()

    def dead_letter_queue_gone(self, uid: str) -> None:
        """Forget an object this process no longer watches (deleted, or handed to another replica)."""
        if self._dead_letter_queues.pop(uid, None) is not None:
            self._publish_dead_letters()

    def redriven(self, cluster: str, moved: int, failed: int, duplicates: int) -> None:
        for result, count in ((RedriveResult.MOVED, moved), (RedriveResult.FAILED, failed),
                              (RedriveResult.DUPLICATE, duplicates)):
            self.redrive_messages.labels(cluster, result).inc(max(0, count))

    def _publish_dead_letters(self) -> None:
        depth: Tally[str] = Tally()
        high: Tally[str] = Tally()
        expiring: Tally[str] = Tally()
        removal: dict[str, float] = {}
        for read in self._dead_letter_queues.values():
            depth[read.cluster] += read.depth
            high[read.cluster] += read.backlog_high
            expiring[read.cluster] += read.expiring
            if read.earliest_removal is not None:
                removal[read.cluster] = min(read.earliest_removal, removal.get(read.cluster, read.earliest_removal))
        for gone in self._dead_letter_clusters.difference(depth):
            self.dead_letters.remove(gone)
            self.dead_letter_backlogs_high.remove(gone)
            self.dead_letter_queues_expiring.remove(gone)
        for gone in self._removal_clusters.difference(removal):
            self.dead_letters_earliest_removal.remove(gone)
        for cluster in depth:
            self.dead_letters.labels(cluster).set(depth[cluster])
            self.dead_letter_backlogs_high.labels(cluster).set(high[cluster])
            self.dead_letter_queues_expiring.labels(cluster).set(expiring[cluster])
        for cluster, at in removal.items():
            self.dead_letters_earliest_removal.labels(cluster).set(at)
        self._dead_letter_clusters, self._removal_clusters = set(depth), set(removal)


class _DeadLetterRead(NamedTuple):
    """One DeadLetterQueue object's last read, as the gauges sum it."""

    cluster: str
    depth: int
    backlog_high: bool
    expiring: bool
    earliest_removal: float | None  # Unix time
