"""The chaos experiments' Injector on the local bed: its processes, hurt by the bed's own faults."""

import asyncio
import time
from collections.abc import Callable

from rocketmq_chaos.injectors import TargetNotAllowed
from rocketmq_chaos.journal import Fault, Journal

from ..bed.rocketmq import RocketMQCluster


class LocalInjector:
    """SIGKILL, SIGSTOP/SIGCONT and restart through RocketMQCluster's faults, so an experiment does to a part exactly
    what `rocketmq-retry local kill|pause|resume|restart` does. Targets are the bed's part names (`namesrv` is chaos's
    NAME_SERVER too) and its broker names, which stand for the broker name's master at the time of the fault: in
    controller mode that is whichever replica was elected, and its recovery restarts the replica that was hurt.
    By default the broker names are allowed."""

    def __init__(self, cluster: RocketMQCluster, journal: Journal, *, allowed: set[str] | None = None) -> None:
        self.cluster = cluster
        self.journal = journal
        self.allowed = allowed if allowed is not None else set(cluster.broker_names)
        self._hurt: dict[str, str] = {}  # target -> the part its fault hit

    async def _act(self, action: str, target: str, fault: Callable[[str], None], *, record_after: bool = False
                   ) -> None:
        """Faults are stamped when the signal is sent; recoveries once the process is back (registered)."""
        if target not in self.allowed:
            raise TargetNotAllowed(f"{target!r} is not an allowed target (allowed: {sorted(self.allowed)})")
        if not record_after:
            self.journal.record(Fault(time.time(), action, target))
        await asyncio.to_thread(lambda: fault(self._part(target, recovering=record_after)))
        if record_after:
            self.journal.record(Fault(time.time(), action, target))

    def _part(self, target: str, *, recovering: bool) -> str:
        """The part a fault on `target` hits now, or the one its recovery must mend."""
        if recovering:
            return self._hurt.pop(target, target)
        if target in self.cluster.part_names:
            return target
        master = self.cluster.master(target)
        if master is None:
            raise TargetNotAllowed(f"{target!r} has no master to hurt now (the name server lists none)")
        self._hurt[target] = master.name
        return master.name

    async def kill(self, target: str) -> None:
        await self._act("kill", target, self.cluster.kill)

    async def pause(self, target: str) -> None:
        await self._act("pause", target, self.cluster.pause)

    async def resume(self, target: str) -> None:
        await self._act("resume", target, self.cluster.resume, record_after=True)

    async def restart(self, target: str) -> None:
        await self._act("restart", target, self.cluster.restart, record_after=True)
