"""A cheap look at every cluster's masters every few seconds, so a broker that comes back need not wait for the sweep.

A broker that restarts, most often with an empty store after its disk or pod was replaced, has lost every group the
operator wrote. The name server drops a broker when the broker's connection closes and lists it again when it
re-registers, so a master that appears in its view gets a sweep pass of its cluster at once. A restart quicker than
one look still gets repaired by the periodic sweep.
"""

import asyncio
import logging
from collections.abc import Callable, Collection, Iterable

from rocketmq_retry.controller.policies import AdminFactory
from rocketmq_retry.domain.spec import ClusterRef
from rocketmq_retry.reconcile.reading import Master, ReadFailed, discover_masters

log = logging.getLogger(__name__)

ClusterSweep = Callable[[Collection[str]], None]  # queue a fresh pass over these cluster keys


def appeared(before: frozenset[Master] | None, now: frozenset[Master]) -> frozenset[Master]:
    """Masters in `now` that were not in `before`; none on the first look (`before` None), which sees no change."""
    return frozenset() if before is None else now - before


class MasterWatch:
    def __init__(self, admins: AdminFactory, clusters: Callable[[], Iterable[ClusterRef]], sweep: ClusterSweep, *,
                 call_timeout: float, interval: float) -> None:
        """`interval`: seconds between looks, each one cluster-info request per cluster."""
        self._admins = admins
        self._clusters = clusters
        self._sweep = sweep
        self._call_timeout = call_timeout
        self._interval = interval
        self._seen: dict[str, frozenset[Master]] = {}

    async def run_forever(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                changed = await self.look_once()
                if changed:
                    self._sweep(changed)
            except Exception:
                log.exception("looking at the masters failed; looking again in %g s", self._interval)

    async def look_once(self) -> set[str]:
        """The keys of the clusters where a master appeared since the last look; unreadable clusters are skipped."""
        clusters = list(self._clusters())
        views = await asyncio.gather(*(self._masters(cluster) for cluster in clusters))
        changed = set()
        for cluster, masters in zip(clusters, views, strict=True):
            if masters is None:
                continue
            new = appeared(self._seen.get(cluster.key), masters)
            self._seen[cluster.key] = masters
            if new:
                names = ", ".join(sorted(f"{master.name} ({master.addr})" for master in new))
                log.info("cluster %s: master %s appeared; sweeping the cluster now", cluster.key, names)
                changed.add(cluster.key)
        return changed

    async def _masters(self, cluster: ClusterRef) -> frozenset[Master] | None:
        try:
            return frozenset(await discover_masters(self._admins(cluster, None), cluster, self._call_timeout))
        except ReadFailed:
            return None  # the sweep and the handlers report unreachable name servers
