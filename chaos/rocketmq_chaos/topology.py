"""What an experiment needs to know of a RocketMQ cluster, wherever it runs: the local bed or pods in Kubernetes.

The local bed's `RocketMQCluster` already has this shape; `ClusterTopology` is the same picture read from a name
server, for clusters the experiment did not start (broker pods whose addresses change when they are replaced).
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from rocketmq_retry.remoting import Admin, ClusterInfo


class BrokerEndpoint(Protocol):
    """A master broker: its name, stable across restarts, and its current address."""

    @property
    def name(self) -> str: ...

    @property
    def addr(self) -> str: ...


class Topology(Protocol):
    """The name server, the master brokers and their `messageDelayLevel` (the remoting retry ladder's source)."""

    @property
    def namesrv_addr(self) -> str: ...

    @property
    def brokers(self) -> Sequence[BrokerEndpoint]: ...

    @property
    def delay_levels(self) -> str: ...


@dataclass(frozen=True)
class Master:
    name: str
    addr: str


@dataclass
class ClusterTopology:
    """The masters the name server knows, kept current by whoever replaces a broker (see `moved`)."""

    namesrv_addr: str
    delay_levels: str
    brokers: list[Master] = field(default_factory=list)

    def broker(self, name: str) -> Master:
        for master in self.brokers:
            if master.name == name:
                return master
        raise KeyError(f"no master broker {name!r} (have {[b.name for b in self.brokers]})")

    def moved(self, name: str, addr: str) -> None:
        """Broker `name` is now served from `addr` (a replaced pod has a new IP)."""
        self.brokers = [Master(name, addr) if b.name == name else b for b in self.brokers]
        if all(b.name != name for b in self.brokers):
            raise KeyError(f"no master broker {name!r} (have {[b.name for b in self.brokers]})")


def masters_of(info: ClusterInfo, cluster: str | None = None) -> list[Master]:
    """Every broker name with a registered master (of `cluster` only, when given), sorted by name."""
    return [Master(b.name, b.master_addr) for b in info.masters(cluster) if b.master_addr]


async def discover_topology(admin: Admin, *, cluster: str | None = None,
                            delay_levels: str | None = None) -> ClusterTopology:
    """The masters registered at `admin`'s name server; their delay levels read from the first master's config
    unless given. ValueError when no master is registered or the brokers' delay levels differ."""
    masters = masters_of(await admin.cluster_info(), cluster)
    where = f" of cluster {cluster!r}" if cluster else ""
    if not masters:
        raise ValueError(f"the name server {admin.namesrv_addrs[0]} knows no master broker{where}")
    if delay_levels is None:
        delay_levels = shared_delay_levels(
            {m.name: (await admin.get_broker_config(m.addr)).get("messageDelayLevel") for m in masters})
    return ClusterTopology(admin.namesrv_addrs[0], delay_levels, masters)


def shared_delay_levels(configured: Mapping[str, str | None]) -> str:
    """The one `messageDelayLevel` every master reports (broker name -> its setting, None when it reports none)."""
    levels = set(configured.values())
    if len(levels) == 1 and (only := levels.pop()) is not None:
        return only
    raise ValueError(f"the masters do not share one messageDelayLevel: {dict(configured)}")
