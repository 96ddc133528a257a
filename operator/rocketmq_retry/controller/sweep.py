"""The drift sweep: one background task that periodically re-applies every owned policy, cluster by cluster.

Per cluster it reads each master once and writes, in one batch per broker, only the groups that drifted (edited
by hand, or lost with a broker's store); per-object kopf timers would cost a task and a broker read per policy.
Status is written only when it changed, and an Event only when the Ready reason changed. With kopf peering, a
pass runs only on the replica that leads the peering (`leads`), as kopf's own handlers do.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from datetime import UTC, datetime
from typing import Final

from rocketmq_retry.controller.engine import Reconciled, Runtime, StatusSink, conclude, publish
from rocketmq_retry.controller.metrics import Trigger
from rocketmq_retry.controller.records import Decision, PolicyRecord, decide_all
from rocketmq_retry.domain.spec import ClusterRef
from rocketmq_retry.reconcile.apply import PolicyResult
from rocketmq_retry.reconcile.locks import GroupKey

log = logging.getLogger(__name__)

PUBLISH_AT_ONCE: Final = 64  # status writes in flight; KubeApi runs 32 at a time

RecordSource = Callable[[], list[PolicyRecord]]
Member = tuple[str, str]  # (namespace/name, consumer group) of a policy swept in a cluster
Clock = Callable[[], datetime]
Leadership = Callable[[Collection[str]], Awaitable[bool]]  # namespaces a pass would touch -> this replica leads


class Sweeper:
    def __init__(self, runtime: Runtime, source: RecordSource, sink: StatusSink,
                 clock: Clock = lambda: datetime.now(UTC), leads: Leadership | None = None) -> None:
        self._runtime = runtime
        self._source = source
        self._sink = sink
        self._clock = clock
        self._leads = leads  # None: standalone, always leads
        self._following = False

    async def run_forever(self) -> None:
        while True:
            await asyncio.sleep(self._runtime.config.sweep_interval)
            try:
                await self.sweep_once()
            except Exception:
                log.exception("drift sweep failed; retrying at the next interval")

    async def sweep_once(self, only: Collection[str] | None = None) -> None:
        """One pass over every cluster that live policies target (or the clusters keyed `only`), concurrently."""
        records = self._source()
        self._runtime.memory.keep(record.uid for record in records)
        if not await self._leading(records):
            return
        decisions = decide_all(records, self._runtime.config)
        clusters: dict[str, ClusterRef] = {}
        members: dict[str, set[Member]] = {}
        for record in records:
            decision = decisions[record.ref]
            if record.deleting or decision.intent is None or decision.cluster is None:
                continue
            if only is not None and decision.cluster.key not in only:
                continue
            clusters[decision.cluster.key] = decision.cluster
            members.setdefault(decision.cluster.key, set()).add((record.ref, decision.intent.spec.consumer_group))
        await asyncio.gather(*(self._sweep_cluster(clusters[key], members[key]) for key in clusters))
        if only is None:
            self._runtime.metrics.keep_clusters(clusters)
        self._runtime.metrics.count_policies(self._runtime.memory.current(r).status for r in self._source())

    async def _leading(self, records: list[PolicyRecord]) -> bool:
        if self._leads is None:
            return True
        following = not await self._leads({record.namespace for record in records})
        if following != self._following:
            log.info("drift sweep %s", "paused: another replica leads the kopf peering" if following else "resumed")
            self._following = following
        return not following

    async def _sweep_cluster(self, cluster: ClusterRef, members: set[Member]) -> None:
        locks: set[GroupKey] = {(cluster.key, group) for _, group in members}
        try:
            with self._runtime.metrics.reconcile_duration.labels(Trigger.SWEEP).time():
                async with self._runtime.locks.hold(locks):
                    # Decided again under the locks: a handler may have applied a newer spec while this pass waited.
                    chosen = self._fresh(cluster, members)
                    now = self._clock()
                    results = await self._runtime.run(cluster, [(r, d.intent) for r, d in chosen if d.intent], now,
                                                      fresh=True)
            self._runtime.metrics.cluster_swept(cluster.key, results.values())
            concluded = [(record, self._conclude(cluster, record, decision, results.get(record.ref), now))
                         for record, decision in chosen]
            await self._publish([(record, done) for record, done in concluded if done.changed or done.event])
        except Exception:
            log.exception("drift sweep of cluster %s failed", cluster.key)

    def _fresh(self, cluster: ClusterRef, members: set[Member]) -> list[tuple[PolicyRecord, Decision]]:
        records = self._source()
        decisions = decide_all(records, self._runtime.config)
        chosen = []
        for watched in records:
            if watched.deleting:
                continue
            record = self._runtime.memory.current(watched)
            decision = decisions[record.ref]
            intent = decision.intent
            if intent is None or decision.cluster is None or decision.cluster.key != cluster.key:
                continue
            if (record.ref, intent.spec.consumer_group) in members:
                chosen.append((record, decision))
        return chosen

    def _conclude(self, cluster: ClusterRef, record: PolicyRecord, decision: Decision, result: PolicyResult | None,
                  now: datetime) -> Reconciled:
        written = [broker.name for broker in result.brokers if broker.last_applied is not None] if result else []
        if written:
            log.info("%s: re-applied consumer group config on %s", record.ref, ", ".join(written))
            self._runtime.metrics.drift_corrections.labels(cluster.key).inc(len(written))
        return conclude(self._runtime, record, decision, result, now, trigger=Trigger.SWEEP)

    async def _publish(self, concluded: Sequence[tuple[PolicyRecord, Reconciled]]) -> None:
        """Statuses and Events, PUBLISH_AT_ONCE at a time: a broker that lost its store changes every policy's status,
        and a task per policy at once held ~100 MiB more at 10,000 policies."""
        for start in range(0, len(concluded), PUBLISH_AT_ONCE):
            chunk = concluded[start:start + PUBLISH_AT_ONCE]
            published = await asyncio.gather(*(publish(self._runtime, self._sink, record, reconciled)
                                               for record, reconciled in chunk), return_exceptions=True)
            for (record, _), failure in zip(chunk, published, strict=True):
                if isinstance(failure, Exception):
                    log.warning("%s: cannot write the status: %s", record.ref, failure)


def live_records(stores: Iterable[Iterable[PolicyRecord]]) -> list[PolicyRecord]:
    """Every record of a kopf index whose values are stores of records."""
    return [record for store in stores for record in store]
