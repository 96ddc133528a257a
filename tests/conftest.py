"""Session fixtures built on the product's own bed (rocketmq_lab.bed), so tests and demo share one path.

A test that needs a component which is missing builds or fails; nothing here skips.
"""

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes
import pytest

from rocketmq_lab import project
from rocketmq_lab.bed import versions
from rocketmq_lab.bed.kube import ControlPlane
from rocketmq_lab.bed.rocketmq import RocketMQCluster


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "rocketmq_versions(*versions): limit a test to these RocketMQ versions")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run every test that uses `rocketmq_cluster` on each bed version (or those its marker names)."""
    if "rocketmq_cluster" in metafunc.fixturenames:
        marker = metafunc.definition.get_closest_marker("rocketmq_versions")
        chosen = marker.args if marker else versions.ROCKETMQ_VERSIONS
        metafunc.parametrize("rocketmq_cluster", chosen, indirect=True, scope="session")


@pytest.fixture(scope="session")
def rocketmq_cluster(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
                     ) -> Iterator[RocketMQCluster]:
    """A name server and two master brokers of one RocketMQ version."""
    version: str = request.param
    with RocketMQCluster(version, tmp_path_factory.mktemp(f"rocketmq-{version}")).running() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def proxied_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RocketMQCluster]:
    """A name server, two masters and the gRPC proxy (cluster mode) of the newest RocketMQ."""
    with RocketMQCluster(versions.ROCKETMQ_5, tmp_path_factory.mktemp("proxied"), with_proxy=True).running() as cluster:
        yield cluster


@dataclass
class Kube:
    """A running control plane with an admin client; helpers mint ServiceAccount kubeconfigs."""

    plane: ControlPlane
    api: kubernetes.client.ApiClient
    workdir: Path

    @property
    def kubeconfig(self) -> Path:
        return self.plane.kubeconfig

    def service_account_kubeconfig(self, namespace: str, name: str) -> Path:
        return self.plane.service_account_kubeconfig(namespace, name, self.workdir / f"{namespace}-{name}.kubeconfig")

    def client_for(self, kubeconfig: Path) -> kubernetes.client.ApiClient:
        return kubernetes.config.new_client_from_config(config_file=str(kubeconfig))

    def new_namespace(self, prefix: str, annotations: dict[str, str] | None = None) -> str:
        """A namespace of its own for a test or module: `<prefix>-<random>`."""
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        kubernetes.client.CoreV1Api(self.api).create_namespace(
            {"metadata": {"name": name, "annotations": annotations or {}}})
        return name

    def create_object(self, namespace: str, plural: str, body: dict[str, Any], **options: Any) -> dict[str, Any]:
        """Create one of the project's custom objects as the admin (e.g. `field_validation="Strict"`)."""
        created: dict[str, Any] = kubernetes.client.CustomObjectsApi(self.api).create_namespaced_custom_object(
            "rocketmq-retry.io", "v1alpha1", namespace, plural, body, **options)
        return created


@pytest.fixture(scope="session")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kube]:
    """etcd + kube-apiserver (RBAC on) + kube-controller-manager, with the project's CRDs installed."""
    workdir = tmp_path_factory.mktemp("kubernetes")
    plane = ControlPlane(workdir)
    try:
        plane.start()
        plane.install_crds(project.checkout().crds)
        previous = os.environ.get("KUBECONFIG")
        os.environ["KUBECONFIG"] = str(plane.kubeconfig)
        try:
            yield Kube(plane, kubernetes.config.new_client_from_config(config_file=str(plane.kubeconfig)), workdir)
        finally:
            if previous is None:
                os.environ.pop("KUBECONFIG", None)
            else:
                os.environ["KUBECONFIG"] = previous
    finally:
        plane.stop()
