"""Broker faults in a Kubernetes cluster: delete broker pods, but only where chaos was explicitly allowed.

A namespace takes part only when annotated `rocketmq-retry.io/chaos: allowed`, and only pods matching the
label selector are candidates (checked again on each pod before it is deleted), so a typo in a selector or a
namespace cannot take down something else. `PodInjector` puts these rules behind the experiments' `Injector`.
"""

import asyncio
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final, Protocol

from rocketmq_retry.remoting import ClusterInfo, RemotingError

from .injectors import FaultNotPossible, TargetNotAllowed
from .journal import Fault, Journal
from .topology import ClusterTopology

ALLOW_ANNOTATION: Final = "rocketmq-retry.io/chaos"
ALLOWED: Final = "allowed"


class Mode(StrEnum):
    ONE = "one"  # one random matching pod
    ALL = "all"
    FIXED = "fixed"  # `count` random matching pods


def parse_selector(selector: str) -> dict[str, str]:
    """`k=v,k2=v2` (equality selectors only: the broker pods are chosen by exact labels)."""
    labels = {}
    for part in filter(None, (p.strip() for p in selector.split(","))):
        key, sep, value = part.partition("=")
        if not sep or not key.strip() or value.startswith("=") or "!" in key:
            raise ValueError(f"selector part {part!r} is not key=value")
        labels[key.strip()] = value.strip()
    if not labels:
        raise ValueError("an empty selector would match every pod; name the broker pods' labels")
    return labels


def matches(labels: Mapping[str, str] | None, wanted: Mapping[str, str]) -> bool:
    found = labels or {}
    return all(found.get(key) == value for key, value in wanted.items())


def choose(candidates: Sequence[str], mode: Mode, count: int, rng: random.Random) -> list[str]:
    if mode is Mode.ALL:
        return sorted(candidates)
    wanted = 1 if mode is Mode.ONE else count
    if wanted < 1:
        raise ValueError(f"fixed mode needs a count of at least 1, not {count}")
    return sorted(rng.sample(list(candidates), min(wanted, len(candidates))))


class PodKiller:
    """Deletes broker pods through a CoreV1Api (synchronous kubernetes client), recording each as a fault."""

    def __init__(self, core: Any, journal: Journal, *, rng: random.Random | None = None) -> None:
        self.core = core
        self.journal = journal
        self._rng = rng or random.Random()

    def kill(self, namespace: str, selector: str, *, mode: Mode = Mode.ONE, count: int = 1,
             grace_period_seconds: int = 0) -> list[str]:
        """Delete the chosen pods; the names deleted. TargetNotAllowed for a namespace not opted in."""
        wanted = parse_selector(selector)
        annotations = self.core.read_namespace(namespace).metadata.annotations or {}
        if annotations.get(ALLOW_ANNOTATION) != ALLOWED:
            raise TargetNotAllowed(f"namespace {namespace} is not annotated {ALLOW_ANNOTATION}={ALLOWED}")
        pods = self.core.list_namespaced_pod(namespace, label_selector=selector).items
        candidates = {pod.metadata.name: pod for pod in pods
                      if pod.metadata.deletion_timestamp is None and matches(pod.metadata.labels, wanted)}
        chosen = choose(list(candidates), mode, count, self._rng)
        for name in chosen:
            self.journal.record(Fault(time.time(), "kill", f"{namespace}/{name}"))
            self.core.delete_namespaced_pod(name, namespace, grace_period_seconds=grace_period_seconds)
        return chosen


class NameServerView(Protocol):
    """What PodInjector asks of the name server and brokers (an `Admin` answers it)."""

    async def cluster_info(self) -> ClusterInfo: ...

    async def broker_runtime_info(self, addr: str) -> dict[str, str]: ...


@dataclass(frozen=True)
class Incarnation:
    """One broker process behind a broker name: where it listens and when it booted (None: it did not say)."""

    addr: str
    booted: str | None


def is_replacement(before: Incarnation, now: Incarnation) -> bool:
    """`now` is another broker process than `before`: a new address, or a new boot at the same one."""
    return now.addr != before.addr or (before.booted is not None and now.booted != before.booted)


class PodInjector:
    """Broker faults on pods, by broker name: `kill` deletes the broker's pods (grace 0) through PodKiller's rules,
    `restart` waits until the name server has the name again, served by a new broker process, and points `topology`
    (shared with the experiment) at the new address. The StatefulSet brings the pod back by itself, so the return is
    watched from the kill on and journaled when seen, not when `restart` is called. Pods cannot be paused.

    Use it as an async context manager: leaving it stops the watching of returns nobody waited for.
    """

    def __init__(self, core: Any, namesrv: NameServerView, topology: ClusterTopology, journal: Journal, *,
                 namespace: str, selector: str, broker_label: str = "broker", allowed: set[str] | None = None,
                 recovery_timeout: float = 300.0, poll_interval: float = 0.5) -> None:
        parse_selector(selector)  # a bad selector fails here, before any fault
        self.killer = PodKiller(core, journal)
        self.namesrv = namesrv
        self.topology = topology
        self.journal = journal
        self.namespace = namespace
        self.selector = selector
        self.broker_label = broker_label
        self.allowed = allowed if allowed is not None else {b.name for b in topology.brokers}
        self.recovery_timeout = recovery_timeout
        self.poll_interval = poll_interval
        self._returns: dict[str, asyncio.Task[None]] = {}

    async def __aenter__(self) -> "PodInjector":
        return self

    async def __aexit__(self, *_: object) -> None:
        for watching in self._returns.values():
            watching.cancel()
        await asyncio.gather(*self._returns.values(), return_exceptions=True)
        self._returns.clear()

    def _check(self, target: str) -> None:
        if target not in self.allowed:
            raise TargetNotAllowed(f"{target!r} is not an allowed target (allowed: {sorted(self.allowed)})")

    def pod_selector(self, broker: str) -> str:
        return f"{self.selector},{self.broker_label}={broker}"

    async def kill(self, target: str) -> None:
        self._check(target)
        before = await self._incarnation(self.topology.broker(target).addr)
        deleted = await asyncio.to_thread(self.killer.kill, self.namespace, self.pod_selector(target), mode=Mode.ALL,
                                          grace_period_seconds=0)
        if not deleted:
            raise RuntimeError(f"no pod in namespace {self.namespace} matches {self.pod_selector(target)}: "
                               f"broker {target} was not killed")
        self._returns[target] = asyncio.create_task(self._back(target, before))

    async def restart(self, target: str) -> None:
        """Until `target` is back (its pod is recreated by its StatefulSet); TimeoutError after recovery_timeout."""
        self._check(target)
        watching = self._returns.pop(target, None)
        await (watching if watching is not None else self._back(target, None))

    async def pause(self, target: str) -> None:
        raise FaultNotPossible(f"a pod cannot be paused ({target}): pause its node, or run on the local bed")

    async def resume(self, target: str) -> None:
        raise FaultNotPossible(f"a pod cannot be resumed ({target}): it was never paused")

    async def _back(self, target: str, before: Incarnation | None) -> None:
        try:
            async with asyncio.timeout(self.recovery_timeout):
                now = await self._replacement(target, before)
        except TimeoutError:
            raise TimeoutError(f"broker {target} was not registered again by a new broker within "
                               f"{self.recovery_timeout:g} s") from None
        self.topology.moved(target, now.addr)
        self.journal.record(Fault(time.time(), "restart", target))

    async def _replacement(self, target: str, before: Incarnation | None) -> Incarnation:
        """Poll the name server until `target` has a master that answers and is not `before`."""
        while True:
            now = await self._registered(target)
            if now is not None and (before is None or is_replacement(before, now)):
                return now
            await asyncio.sleep(self.poll_interval)

    async def _registered(self, target: str) -> Incarnation | None:
        """The master registered for `target`, if the name server has one and it answers."""
        try:
            broker = (await self.namesrv.cluster_info()).brokers.get(target)
        except RemotingError:
            return None
        if broker is None or broker.master_addr is None:
            return None
        return await self._incarnation(broker.master_addr)

    async def _incarnation(self, addr: str) -> Incarnation | None:
        try:
            return Incarnation(addr, (await self.namesrv.broker_runtime_info(addr)).get("bootTimestamp"))
        except RemotingError:
            return None
