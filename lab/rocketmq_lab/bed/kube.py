"""A real Kubernetes control plane as processes, like controller-runtime's envtest.

etcd + kube-apiserver (RBAC on, service-account tokens signed) + optionally kube-controller-manager
(namespace, garbage-collector and service-account controllers), with an admin kubeconfig that
carries its credentials inline because kopf cannot follow file paths or exec plugins.
"""

import base64
import logging
import ssl
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from . import gobuild, ports
from .pki import CertificateAuthority
from .processes import ManagedProcess, wait_until

log = logging.getLogger(__name__)

_START_TIMEOUT = 120.0
_CONTROLLERS = "namespace-controller,garbage-collector-controller,serviceaccount-controller"


def write_kubeconfig(path: Path, server: str, ca_pem: bytes, user: dict[str, str], name: str = "bed") -> Path:
    """A kubeconfig with everything inline (`user` holds client-certificate-data/-key-data or a token)."""
    config = {
        "apiVersion": "v1", "kind": "Config", "current-context": name,
        "clusters": [{"name": name, "cluster": {"server": server,
                                                "certificate-authority-data": base64.b64encode(ca_pem).decode()}}],
        "users": [{"name": name, "user": user}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


@dataclass
class ControlPlane:
    workdir: Path
    with_controller_manager: bool = True
    apiserver_port: int = 0
    etcd: ManagedProcess | None = None
    apiserver: ManagedProcess | None = None
    controller_manager: ManagedProcess | None = None
    _ca_pem: bytes = field(default=b"", repr=False)

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.apiserver_port}"

    @property
    def kubeconfig(self) -> Path:
        """The admin (system:masters) kubeconfig."""
        return self.workdir / "admin.kubeconfig"

    @property
    def ca_pem(self) -> bytes:
        return self._ca_pem or (self.workdir / "pki" / "ca.crt").read_bytes()

    @property
    def processes(self) -> list[ManagedProcess]:
        return [p for p in (self.controller_manager, self.apiserver, self.etcd) if p is not None]

    def start(self) -> None:
        bin_dir = gobuild.kubernetes_bin()
        etcd_bin = gobuild.etcd_bin() / "etcd"
        pki = self.workdir / "pki"
        pki.mkdir(parents=True, exist_ok=True)
        ca = CertificateAuthority("rocketmq-retry-bed-ca")
        self._ca_pem = ca.cert_pem
        ca_crt, _ = ca.pair().write(pki, "ca")
        serving_crt, serving_key = ca.issue(
            "kube-apiserver", server_ips=("127.0.0.1", "10.0.0.1"),
            server_names=("localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"),
        ).write(pki, "apiserver")
        admin = ca.issue("admin", organization="system:masters")
        admin_crt, admin_key = admin.write(pki, "admin")
        sa_crt, sa_key = CertificateAuthority("service-account-signer").pair().write(pki, "sa")

        taken: set[int] = set()
        etcd_port = ports.free_port(taken)
        taken.add(etcd_port)
        peer_port = ports.free_port(taken)
        taken.add(peer_port)
        self.apiserver_port = ports.free_port(taken)
        etcd_url, peer_url = f"http://127.0.0.1:{etcd_port}", f"http://127.0.0.1:{peer_port}"
        self.etcd = ManagedProcess("etcd", [
            str(etcd_bin), "--name=bed", f"--data-dir={self.workdir / 'etcd'}",
            f"--listen-client-urls={etcd_url}", f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls={peer_url}", f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=bed={peer_url}", "--unsafe-no-fsync=true", "--logger=zap", "--log-level=warn",
        ], log_path=self.workdir / "logs" / "etcd.log")
        self.apiserver = ManagedProcess("kube-apiserver", [
            str(bin_dir / "kube-apiserver"), f"--etcd-servers={etcd_url}", "--bind-address=127.0.0.1",
            f"--secure-port={self.apiserver_port}", f"--cert-dir={pki}", f"--tls-cert-file={serving_crt}",
            f"--tls-private-key-file={serving_key}", f"--client-ca-file={ca_crt}", "--authorization-mode=RBAC",
            "--service-cluster-ip-range=10.0.0.0/24", f"--service-account-issuer={self.server}",
            f"--service-account-key-file={sa_crt}", f"--service-account-signing-key-file={sa_key}",
            "--disable-admission-plugins=ServiceAccount", "--allow-privileged=true", "--profiling=false",
            "--endpoint-reconciler-type=none",
        ], log_path=self.workdir / "logs" / "kube-apiserver.log")
        write_kubeconfig(self.kubeconfig, self.server, self._ca_pem, {
            "client-certificate-data": base64.b64encode(admin.cert_pem).decode(),
            "client-key-data": base64.b64encode(admin.key_pem).decode(),
        })

        log.info("starting etcd and kube-apiserver on %s", self.server)
        self.etcd.start()
        wait_until(lambda: _http_ok(f"{etcd_url}/health"), timeout=_START_TIMEOUT, process=self.etcd,
                   what="healthy")
        self.apiserver.start()
        context = ssl.create_default_context(cafile=str(ca_crt))
        context.load_cert_chain(str(admin_crt), str(admin_key))
        wait_until(lambda: _http_ok(f"{self.server}/readyz", context), timeout=_START_TIMEOUT,
                   process=self.apiserver, what="ready")
        wait_until(lambda: _http_ok(f"{self.server}/api/v1/namespaces/default", context),
                   timeout=_START_TIMEOUT, process=self.apiserver, what="serving the default namespace")
        if self.with_controller_manager:
            self.controller_manager = ManagedProcess("kube-controller-manager", [
                str(bin_dir / "kube-controller-manager"), f"--kubeconfig={self.kubeconfig}",
                f"--authentication-kubeconfig={self.kubeconfig}", f"--authorization-kubeconfig={self.kubeconfig}",
                "--leader-elect=false", "--secure-port=0", f"--controllers={_CONTROLLERS}",
                f"--service-account-private-key-file={sa_key}", f"--root-ca-file={ca_crt}",
            ], log_path=self.workdir / "logs" / "kube-controller-manager.log")
            self.controller_manager.start()
            wait_until(lambda: _http_ok(f"{self.server}/api/v1/namespaces/default/serviceaccounts/default",
                                        context),
                       timeout=_START_TIMEOUT, process=self.controller_manager,
                       what="running (no default ServiceAccount yet)")

    def stop(self) -> None:
        for process in self.processes:
            process.stop()

    def install_crds(self, directory: Path) -> None:
        """Apply every CRD manifest in `directory` (server-side) and wait until each is Established."""
        manifests = sorted(directory.glob("*.yaml"))
        if not manifests:
            return
        for manifest in manifests:
            applied = self.kubectl("apply", "--server-side", "-f", str(manifest))
            if applied.returncode != 0:
                raise RuntimeError(f"applying {manifest} failed: {applied.stderr.strip()}")
        established = self.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")
        if established.returncode != 0:
            raise RuntimeError(f"CRDs not established: {established.stderr.strip()}")
        log.info("installed CRDs from %s", directory)

    def kubectl(self, *args: str, kubeconfig: Path | None = None, input_text: str | None = None,
                timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        argv = [str(gobuild.kubernetes_bin() / "kubectl"), f"--kubeconfig={kubeconfig or self.kubeconfig}", *args]
        return subprocess.run(argv, capture_output=True, text=True, input=input_text, timeout=timeout, check=False)

    def service_account_kubeconfig(self, namespace: str, name: str, path: Path,
                                   duration_seconds: int = 3600) -> Path:
        """Mint a token for a ServiceAccount (TokenRequest API) and write a kubeconfig that uses it."""
        result = self.kubectl("create", "token", name, "-n", namespace, f"--duration={duration_seconds}s")
        if result.returncode != 0:
            raise RuntimeError(f"cannot mint a token for {namespace}/{name}: {result.stderr.strip()}")
        return write_kubeconfig(path, self.server, self.ca_pem, {"token": result.stdout.strip()})

    def to_record(self) -> dict[str, Any]:
        return {"workdir": str(self.workdir), "apiserver_port": self.apiserver_port,
                "with_controller_manager": self.with_controller_manager,
                "processes": {p.name: p.to_record() for p in self.processes}}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> "ControlPlane":
        processes = {name: ManagedProcess.from_record(value) for name, value in record["processes"].items()}
        return cls(workdir=Path(record["workdir"]), apiserver_port=record["apiserver_port"],
                   with_controller_manager=record["with_controller_manager"], etcd=processes.get("etcd"),
                   apiserver=processes.get("kube-apiserver"),
                   controller_manager=processes.get("kube-controller-manager"))


def _http_ok(url: str, context: ssl.SSLContext | None = None) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2, context=context) as response:  # noqa: S310 - our own loopback URL
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError, ssl.SSLError):
        return False

