"""The Kubernetes injector, run with its Job's ServiceAccount token against the real API server."""

from pathlib import Path
from typing import Any

import kubernetes
import pytest
import yaml

from rocketmq_chaos.injectors import TargetNotAllowed
from rocketmq_chaos.journal import Journal
from rocketmq_chaos.pods import ALLOW_ANNOTATION, ALLOWED, Mode, PodKiller
from tests.conftest import Kube

CHAOS_RBAC = Path(__file__).resolve().parents[2] / "chaos" / "manifests" / "rbac.yaml"
BROKERS = {"app": "rocketmq", "role": "broker"}


def _pods(core: Any, namespace: str) -> set[str]:
    return {p.metadata.name for p in core.list_namespaced_pod(namespace).items}


def _create_pods(core: Any, namespace: str) -> None:
    """Broker-like pods (never scheduled: the bed has no nodes) and one bystander with other labels."""
    for name, labels in [("broker-a-0", BROKERS), ("broker-b-0", BROKERS), ("broker-c-0", BROKERS),
                         ("namesrv-0", {"app": "rocketmq", "role": "namesrv"})]:
        core.create_namespaced_pod(namespace, {"metadata": {"name": name, "labels": labels},
                                               "spec": {"containers": [{"name": "c", "image": "none"}]}})


@pytest.fixture
def chaos_core(kube: Kube) -> tuple[Any, str, str]:
    """(CoreV1Api with the chaos Job's token, an opted-in namespace, a namespace that did not opt in)."""
    admin = kubernetes.client.CoreV1Api(kube.api)
    allowed, other = kube.new_namespace("chaos", {ALLOW_ANNOTATION: ALLOWED}), kube.new_namespace("chaos")
    for namespace in (allowed, other):
        _create_pods(admin, namespace)
    manifests = [doc for doc in yaml.safe_load_all(CHAOS_RBAC.read_text()) if doc]
    suffix = allowed[-8:]
    for doc in manifests:  # the shipped manifests name namespace `rocketmq`; point them at this test's one
        if doc["metadata"].get("namespace"):
            doc["metadata"]["namespace"] = allowed
        if doc["kind"] in ("ClusterRole", "ClusterRoleBinding"):
            doc["metadata"]["name"] += f"-{suffix}"
        if "roleRef" in doc and doc["roleRef"]["kind"] == "ClusterRole":
            doc["roleRef"]["name"] += f"-{suffix}"
        for subject in doc.get("subjects", []):
            subject["namespace"] = allowed
    applied = kube.plane.kubectl("apply", "--server-side", "-f", "-", input_text=yaml.safe_dump_all(manifests))
    assert applied.returncode == 0, applied.stderr
    token = kube.service_account_kubeconfig(allowed, "rocketmq-chaos")
    return kubernetes.client.CoreV1Api(kube.client_for(token)), allowed, other


def test_one_mode_deletes_exactly_one_selected_pod(chaos_core: tuple[Any, str, str], kube: Kube) -> None:
    core, namespace, _ = chaos_core
    journal = Journal()
    [deleted] = PodKiller(core, journal).kill(namespace, "app=rocketmq,role=broker", mode=Mode.ONE)
    admin = kubernetes.client.CoreV1Api(kube.api)
    assert _pods(admin, namespace) == {"broker-a-0", "broker-b-0", "broker-c-0", "namesrv-0"} - {deleted}
    assert [(f.action, f.target) for f in journal.events] == [("kill", f"{namespace}/{deleted}")]


def test_all_mode_spares_pods_outside_the_selector(chaos_core: tuple[Any, str, str], kube: Kube) -> None:
    core, namespace, _ = chaos_core
    deleted = PodKiller(core, Journal()).kill(namespace, "role=broker,app=rocketmq", mode=Mode.ALL)
    assert deleted == ["broker-a-0", "broker-b-0", "broker-c-0"]
    assert _pods(kubernetes.client.CoreV1Api(kube.api), namespace) == {"namesrv-0"}


def test_a_namespace_without_the_opt_in_is_refused(chaos_core: tuple[Any, str, str], kube: Kube) -> None:
    core, _, other = chaos_core
    with pytest.raises(TargetNotAllowed, match=f"namespace {other} is not annotated"):
        PodKiller(core, Journal()).kill(other, "app=rocketmq,role=broker", mode=Mode.ALL)
    assert len(_pods(kubernetes.client.CoreV1Api(kube.api), other)) == 4
    with pytest.raises(kubernetes.client.ApiException) as denied:  # and RBAC would not let it anyway
        core.delete_namespaced_pod("broker-a-0", other)
    assert denied.value.status == 403
