"""Broker faults in a Kubernetes cluster: delete broker pods, but only where chaos was explicitly allowed.

A namespace takes part only when annotated `rocketmq-retry.io/chaos: allowed`, and only pods matching the
label selector are candidates (checked again on each pod before it is deleted), so a typo in a selector or a
namespace cannot take down something else.
"""

import random
import time
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any, Final

from .injectors import TargetNotAllowed
from .journal import Fault, Journal

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
