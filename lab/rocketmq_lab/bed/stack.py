"""The local stack behind `rocketmq-retry local up|down|status|kill|pause|resume|restart`: a control plane plus a
RocketMQ cluster.

Its processes outlive the command that started them, so their PIDs (and kernel start times, to
never signal a recycled PID) are kept in a state file; `down` stops exactly those and nothing else.
"""

import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import project
from . import paths, versions
from .kube import ControlPlane
from .processes import ManagedProcess
from .rocketmq import RocketMQCluster
from .topology import Topology

log = logging.getLogger(__name__)


@dataclass
class LocalStack:
    root: Path
    control_plane: ControlPlane | None = None
    rocketmq: RocketMQCluster | None = None

    @classmethod
    def at(cls, root: Path | None = None) -> "LocalStack":
        """The stack whose state lives in `root` (default: the user's state dir), loaded if it exists."""
        stack = cls(root or paths.state_root() / "local")
        if stack.state_file.exists():
            record = json.loads(stack.state_file.read_text())
            if record.get("control_plane"):
                stack.control_plane = ControlPlane.from_record(record["control_plane"])
            if record.get("rocketmq"):
                stack.rocketmq = RocketMQCluster.from_record(record["rocketmq"])
        return stack

    @property
    def state_file(self) -> Path:
        return self.root / "stack.json"

    @property
    def processes(self) -> list[ManagedProcess]:
        found = list(self.control_plane.processes) if self.control_plane else []
        return found + (self.rocketmq.processes if self.rocketmq else [])

    @property
    def healthy(self) -> bool:
        """Every process is up: none is down, none paused (a paused part answers nobody)."""
        return bool(self.processes) and all(p.state == "up" for p in self.processes)

    def up(self, *, rocketmq_version: str = versions.ROCKETMQ_5, brokers: int = 2,
           topology: Topology = Topology.MASTERS, kubernetes: bool = True) -> None:
        """Start the stack; a healthy stack is left alone, a half-dead one is replaced."""
        if self.healthy:
            log.info("local stack already running (state: %s)", self.state_file)
            return
        if self.processes:
            log.warning("local stack is partly down; stopping what is left and starting afresh")
            self.down()
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            if kubernetes:
                self.control_plane = ControlPlane(self.root / "kubernetes")
                self.control_plane.start()
                self.save()
                self.control_plane.install_crds(project.checkout().crds)
            self.rocketmq = RocketMQCluster(rocketmq_version, self.root / "rocketmq", broker_count=brokers,
                                            topology=topology)
            self.rocketmq.start()
        except BaseException:
            # Keep the logs for the error message, but leave nothing running behind a failed start.
            for process in self.processes:
                process.stop()
            raise
        finally:
            self.save()

    def down(self) -> None:
        """Stop every process this stack started, then forget it (stores and logs are removed)."""
        for process in self.processes:
            process.stop()
        shutil.rmtree(self.root, ignore_errors=True)
        self.control_plane = None
        self.rocketmq = None

    def status(self) -> dict[str, Any]:
        return {
            "state": str(self.state_file),
            "kubeconfig": str(self.control_plane.kubeconfig) if self.control_plane else None,
            "nameServer": self.rocketmq.namesrv_addr if self.rocketmq else None,
            "proxy": self.rocketmq.proxy_endpoint if self.rocketmq else None,
            "rocketmqVersion": self.rocketmq.version if self.rocketmq else None,
            "processes": {p.name: {"pid": p.pid, "running": p.running, "state": p.state, "log": str(p.log_path)}
                          for p in self.processes},
        }

    def save(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        record = {"control_plane": self.control_plane.to_record() if self.control_plane else None,
                  "rocketmq": self.rocketmq.to_record() if self.rocketmq else None}
        self.state_file.write_text(json.dumps(record, indent=2))
