"""kopf peering for more than one replica: who this replica is, and whether it leads, for the work kopf cannot pause.

kopf pauses its own watch streams, handlers and daemons while a live peer has a higher (or the same) priority, but
the drift sweep is our own asyncio task with its own copy of the index. Before each pass it asks `PeeringGate`,
which reads the same peering objects and applies kopf's rule, so a replica that was active and then yielded never
writes brokers or status from a stale index.
"""

import os
import random
import socket
import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, Protocol

from rocketmq_retry.domain.jsontypes import JsonValue

PEERING_GROUP: Final = "kopf.dev"
PEERING_VERSION: Final = "v1"
CLUSTER_PEERINGS: Final = "clusterkopfpeerings"
NAMESPACED_PEERINGS: Final = "kopfpeerings"
DEFAULT_LIFETIME: Final = 60  # seconds; kopf's own default (settings.peering.lifetime)
RANDOM_PRIORITY_MAX: Final = 2**31 - 1  # two replicas collide (and kopf freezes both) with p = 5e-10


def own_identity() -> str:
    """The id kopf records for this replica: the pod's name (POD_ID, set by the chart), else host, pid and salt."""
    return os.environ.get("POD_ID") or f"{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:6]}"


def random_priority() -> int:
    """A priority for one of several identical pods: kopf pauses every replica when two priorities are equal."""
    return random.randint(1, RANDOM_PRIORITY_MAX)


@dataclass(frozen=True)
class Peering:
    """This replica's place in a kopf peering: the object's name, its id in it, its priority, its keep-alive, and
    whether the object is a ClusterKopfPeering (a cluster-wide operator) or a KopfPeering in each namespace."""

    name: str
    identity: str
    priority: int
    lifetime: int = DEFAULT_LIFETIME
    clusterwide: bool = False


def leads(status: Mapping[str, JsonValue] | None, identity: str, priority: int, now: datetime) -> bool:
    """kopf's rule (kopf/_core/engines/peering.py): pause while another live peer's priority is >= ours.

    A missing peering object pauses too: with `--peering` kopf waits for it. A peer is live until its last
    keep-alive plus its lifetime.
    """
    if status is None:
        return False
    for peer, entry in status.items():
        if peer == identity or not isinstance(entry, Mapping):
            continue
        seen, lifetime = entry.get("lastseen"), _number(entry.get("lifetime"), DEFAULT_LIFETIME)
        alive = seen is None or datetime.fromisoformat(str(seen)) + timedelta(seconds=lifetime) > now
        if alive and _number(entry.get("priority"), 0) >= priority:
            return False
    return True


def _number(value: JsonValue | None, default: int) -> float:
    """A number kopf wrote into a peer's entry, or kopf's default for it when the peer left it out."""
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else default


class PeeringReader(Protocol):
    async def peering_status(self, name: str, namespace: str | None) -> Mapping[str, JsonValue] | None: ...


class PeeringGate:
    """Answers "does this replica lead?" from the peering objects kopf itself watches."""

    def __init__(self, peering: Peering, reader: PeeringReader) -> None:
        self._peering = peering
        self._reader = reader

    async def leads(self, namespaces: Collection[str]) -> bool:
        """True when this replica leads the peering of every namespace it would touch (cluster-wide: the one)."""
        scopes: Collection[str | None] = [None] if self._peering.clusterwide else namespaces
        now = datetime.now(UTC)
        for scope in scopes:
            status = await self._reader.peering_status(self._peering.name, scope)
            if not leads(status, self._peering.identity, self._peering.priority, now):
                return False
        return True
