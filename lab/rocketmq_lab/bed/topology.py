"""How a bed lays out its brokers: masters alone, each master with a slave, or replicas a controller elects among.

Pure: which broker processes a topology has, what each is called and which broker.conf keys make it play its part.
RocketMQ's rules it follows (apache/rocketmq, BrokerStartup and BrokerController):
- a master has brokerId 0 and a slave of the same brokerName a positive id, else the broker exits at start;
- a slave needs no master address: the name server hands it the master's HA address at each registration;
- a master advertises `brokerIP2:haListenPort` to its slaves, and brokerIP2 defaults to a non-loopback address, so
  the bed sets it to loopback;
- in controller mode (5.x) every replica starts as a slave with brokerId -1; the controller assigns ids and elects
  one master per brokerName, and only among the replicas in the sync-state set.
"""

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

CONTROLLER: Final = "controller"  # the part name of the controller process


class Topology(StrEnum):
    MASTERS = "masters"  # each broker name one master, no replica
    ASYNC_MASTER = "async-master"  # a master and a slave per broker name; a send returns once the master stored it
    SYNC_MASTER = "sync-master"  # a master and a slave per broker name; a send waits for the slave's copy
    CONTROLLER = "controller"  # 5.x: two replicas per broker name, a controller elects the master

    @property
    def replicated(self) -> bool:
        return self is not Topology.MASTERS

    @property
    def elected(self) -> bool:
        """Masters change at runtime: which node is master is only known from the name server."""
        return self is Topology.CONTROLLER


@dataclass(frozen=True)
class NodePlan:
    """One broker process of a topology."""

    part: str  # the process's name: what faults and logs call it
    broker_name: str  # RocketMQ's brokerName, shared by a master and its replicas
    broker_id: int  # 0 master, > 0 slave, -1 assigned by the controller
    conf: dict[str, str | int | bool]  # the topology's broker.conf keys for this node


def broker_name(index: int) -> str:
    return f"broker-{chr(ord('a') + index)}"


def plan_nodes(topology: Topology, broker_names: int, *, rocketmq5: bool,
               controller_addr: str | None = None) -> list[NodePlan]:
    """The broker processes of `topology` with `broker_names` broker names, masters first.

    Part names: a lone master or a fixed master is called by its broker name (`broker-a`), so that everything
    written for single masters reads the same; its slave is `broker-a-slave`; controller-mode replicas, of which
    none is master by configuration, are `broker-a-n0` and `broker-a-n1`.
    """
    if topology is Topology.CONTROLLER:
        if not rocketmq5:
            raise ValueError("controller mode (automatic master election) exists from RocketMQ 5.0 on")
        if controller_addr is None:
            raise ValueError("controller mode needs the controller's address")
        elected: dict[str, str | int | bool] = {"brokerRole": "SLAVE", "enableControllerMode": True,
                                                "controllerAddr": controller_addr, "brokerIP2": "127.0.0.1"}
        return [NodePlan(f"{broker_name(i)}-n{replica}", broker_name(i), -1, dict(elected))
                for replica in range(2) for i in range(broker_names)]
    names = [broker_name(i) for i in range(broker_names)]
    if topology is Topology.MASTERS:
        return [NodePlan(name, name, 0, {}) for name in names]
    master: dict[str, str | int | bool] = {"brokerRole": "ASYNC_MASTER", "brokerIP2": "127.0.0.1"}
    if topology is Topology.SYNC_MASTER:
        # 5.x waits for a slave only when two replicas must hold a message (CommitLog.handleHA: 0 or 1 ack needed
        # returns at once), so SYNC_MASTER alone would not wait there.
        master |= {"brokerRole": "SYNC_MASTER"} | ({"totalReplicas": 2, "inSyncReplicas": 2} if rocketmq5 else {})
    masters = [NodePlan(name, name, 0, dict(master)) for name in names]
    slaves = [NodePlan(f"{name}-slave", name, 1, {"brokerRole": "SLAVE", "brokerIP2": "127.0.0.1"}) for name in names]
    return masters + slaves


def controller_conf(port: int, store: str) -> dict[str, str | int | bool]:
    """A single-node DLedger controller (the default controller type), as RocketMQ's controller quick start runs it.

    A DLedger controller listens on the port of its own peer entry. One node is allowed: losing it stops elections
    only, never traffic (docs/en/controller/deploy.md).
    """
    return {"controllerDLegerGroup": "bed", "controllerDLegerPeers": f"n0-127.0.0.1:{port}",
            "controllerDLegerSelfId": "n0", "controllerStorePath": store, "mappedFileSize": 16 * 1024 * 1024}
