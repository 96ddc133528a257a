"""Faults on the local bed's processes, each recorded in the journal, and only on targets the run allows."""

import asyncio
import time
from typing import Protocol

from rocketmq_lab.bed.rocketmq import RocketMQCluster

from .journal import Fault, Journal

NAME_SERVER = "namesrv"


class TargetNotAllowed(ValueError):
    """The experiment asked to hurt a process outside the targets it was given."""


class FaultNotPossible(ValueError):
    """The injector cannot do this to its targets (a Kubernetes pod cannot be frozen and thawed, for one)."""


class Injector(Protocol):
    """Faults on named targets (broker names, or NAME_SERVER), each recorded in the journal as a `Fault`: the fault
    stamped when it is sent, the recovery once the target is back. TargetNotAllowed for any other target."""

    async def kill(self, target: str) -> None: ...

    async def restart(self, target: str) -> None: ...

    async def pause(self, target: str) -> None: ...

    async def resume(self, target: str) -> None: ...


class LocalInjector:
    """SIGKILL, SIGSTOP/SIGCONT, stop and restart (keeping or wiping the store) through the bed's own API."""

    def __init__(self, cluster: RocketMQCluster, journal: Journal, *, allowed: set[str] | None = None) -> None:
        self.cluster = cluster
        self.journal = journal
        self.allowed = allowed if allowed is not None else {b.name for b in cluster.brokers}

    def _check(self, target: str) -> None:
        if target not in self.allowed:
            raise TargetNotAllowed(f"{target!r} is not an allowed target (allowed: {sorted(self.allowed)})")

    async def _act(self, action: str, target: str, *, record_after: bool = False) -> None:
        """Faults are stamped when the signal is sent; recoveries once the process is back (registered)."""
        self._check(target)
        if not record_after:
            self.journal.record(Fault(time.time(), action, target))
        await asyncio.to_thread(self._do, action, target)
        if record_after:
            self.journal.record(Fault(time.time(), action, target))

    def _do(self, action: str, target: str) -> None:
        if target == NAME_SERVER:
            name_server = {"kill": self.cluster.kill_namesrv, "restart": self.cluster.restart_namesrv}
            if action not in name_server:
                raise ValueError(f"the name server can be killed and restarted, not {action!r}")
            name_server[action]()
            return
        match action:
            case "kill":
                self.cluster.kill_broker(target)
            case "pause":
                self.cluster.pause_broker(target)
            case "resume":
                self.cluster.resume_broker(target)
            case "restart":
                self.cluster.restart_broker(target)
            case "wipe":
                self.cluster.restart_broker(target, wipe_store=True)
            case _:
                raise ValueError(f"unknown fault action {action!r}")

    async def kill(self, target: str) -> None:
        await self._act("kill", target)

    async def pause(self, target: str) -> None:
        await self._act("pause", target)

    async def resume(self, target: str) -> None:
        await self._act("resume", target, record_after=True)

    async def restart(self, target: str) -> None:
        await self._act("restart", target, record_after=True)

    async def wipe_and_restart(self, target: str) -> None:
        await self._act("wipe", target)
