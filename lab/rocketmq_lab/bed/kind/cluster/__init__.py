"""The kind cluster of `kind-config.yaml`, made from local images only.

The repository's kind-config.yaml (a control plane and two labelled workers) stays the one description of the
topology; the lab adds only what this machine needs: its own node image, no default CNI (kindnetd's image
cannot be built here; `node-routes.yaml` routes pods between nodes instead) and kubelet's consent to
cgroup v1, which Kubernetes 1.36 otherwise refuses.
"""

import json
import logging
import socket
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import yaml

from .... import project
from ... import gobuild
from ..engine import docker

log = logging.getLogger(__name__)

NAME: Final = "rocketmq-retry"
NODE_ROUTES: Final = Path(__file__).with_name("node-routes.yaml")
READY_WAIT: Final = "240s"
CONTROL_PLANE: Final = {"node-role.kubernetes.io/control-plane": ""}
CONTROL_PLANE_TOLERATION: Final = {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists",
                                   "effect": "NoSchedule"}


def lab_config(base: dict[str, Any]) -> dict[str, Any]:
    """kind-config.yaml plus the lab's needs (pure, so it is unit-tested)."""
    config: dict[str, Any] = json.loads(json.dumps(base))
    config.setdefault("networking", {})["disableDefaultCNI"] = True
    config["networking"].setdefault("apiServerAddress", "127.0.0.1")
    patches = list(config.get("kubeadmConfigPatches", []))
    patches.append(yaml.safe_dump({"kind": "KubeletConfiguration", "failCgroupV1": False}))
    config["kubeadmConfigPatches"] = patches
    return config


class KindCluster:
    """One kind cluster whose kubeconfig lives in the lab's state directory."""

    def __init__(self, state: Path, name: str = NAME) -> None:
        self.state = state
        self.name = name
        self.kubeconfig = state / "kubeconfig"

    def _kind(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([str(gobuild.kind_bin() / "kind"), *args], capture_output=True, text=True,
                                timeout=timeout, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"`kind {' '.join(args[:2])}` failed:\n{result.stderr.strip()[-2000:]}")
        return result

    def exists(self) -> bool:
        return self.name in self._kind("get", "clusters").stdout.split()

    def kubectl(self, *args: str, input_text: str | None = None, timeout: float = 300,
                check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([str(gobuild.kubernetes_bin() / "kubectl"), f"--kubeconfig={self.kubeconfig}", *args],
                                input=input_text, capture_output=True, text=True, timeout=timeout, check=False)
        if check and result.returncode != 0:
            raise RuntimeError(f"`kubectl {' '.join(args[:3])}` failed: {result.stderr.strip()[-1500:]}")
        return result

    def create(self, node_image: str, *, api_port: int | None = None) -> None:
        config = lab_config(yaml.safe_load(project.checkout().kind_config.read_text()))
        if api_port is not None:
            require_free_port(api_port)
            config["networking"]["apiServerPort"] = api_port
        self.state.mkdir(parents=True, exist_ok=True)
        config_file = self.state / "kind-config.yaml"
        config_file.write_text(yaml.safe_dump(config))
        log.info("creating kind cluster %s (%d nodes)", self.name, len(config["nodes"]))
        self._kind("create", "cluster", f"--name={self.name}", f"--image={node_image}", f"--config={config_file}",
                   f"--kubeconfig={self.kubeconfig}")

    def install_node_routes(self, image: str) -> None:
        """Pod networking, then cluster DNS pinned to the control plane: a chaos fault on a worker must take down
        the brokers there, not every client's name lookups with it (kubeadm's CoreDNS lands on any node)."""
        self.kubectl("apply", "-f", "-", input_text=NODE_ROUTES.read_text().replace("image: IMAGE", f"image: {image}"))
        self.kubectl("wait", "node", "--all", "--for=condition=Ready", f"--timeout={READY_WAIT}", timeout=300)
        self.kubectl("-n", "kube-system", "patch", "deployment", "coredns", "--type=merge",
                     f"--patch={json.dumps({'spec': {'template': {'spec': {'nodeSelector': CONTROL_PLANE}}}})}")
        self.kubectl("-n", "kube-system", "rollout", "status", "deployment/coredns", f"--timeout={READY_WAIT}",
                     timeout=300)

    def load(self, refs: Sequence[str]) -> None:
        self._kind("load", "docker-image", f"--name={self.name}", *refs)

    def nodes(self) -> list[str]:
        return self._kind("get", "nodes", f"--name={self.name}").stdout.split()

    def node_of(self, namespace: str, pod: str) -> str:
        return self.kubectl("-n", namespace, "get", "pod", pod, "-o", "jsonpath={.spec.nodeName}").stdout.strip()

    def delete(self) -> None:
        if self.exists():
            self._kind("delete", "cluster", f"--name={self.name}")


def require_free_port(port: int) -> None:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as error:
            raise RuntimeError(f"port {port} on 127.0.0.1 is in use ({error.strerror}): free it or pick another "
                               "with --api-port") from None


def pause_node(node: str) -> None:
    docker("pause", node)


def unpause_node(node: str) -> None:
    docker("unpause", node)
