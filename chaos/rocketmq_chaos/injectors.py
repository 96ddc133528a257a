"""What experiments hurt their targets through, wherever those run: broker pods (pods.PodInjector) or the local bed's
processes (the lab's LocalInjector). Each fault is recorded in the journal, and only on targets the run allows."""

from typing import Protocol

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
