"""The GitOps examples: what Argo CD and Flux would deploy from examples/, built by kubectl's Kustomize and applied
to the real API server, and the Argo CD component that installs the health check."""

import os
from pathlib import Path
from typing import Any

import yaml

from rocketmq_lab.bed.helm import manifests
from tests.conftest import Kube
from tests.gitops import HEALTH_LUA, REPO

EXAMPLES = REPO / "examples"


def _kustomize(kube: Kube, directory: Path) -> list[dict[str, Any]]:
    built = kube.plane.kubectl("kustomize", str(directory))
    assert built.returncode == 0, built.stderr
    return manifests(built.stdout)


def test_argocd_and_flux_point_at_the_kustomization_of_the_examples() -> None:
    application = yaml.safe_load((EXAMPLES / "argocd" / "application.yaml").read_text())
    flux = {doc["kind"]: doc for doc in yaml.safe_load_all((EXAMPLES / "flux" / "sync.yaml").read_text())}
    assert application["spec"]["source"]["path"] == "examples"
    assert flux["Kustomization"]["spec"]["path"] == "./examples"
    assert flux["Kustomization"]["spec"]["sourceRef"]["name"] == flux["GitRepository"]["metadata"]["name"]
    assert flux["GitRepository"]["spec"]["url"] == application["spec"]["source"]["repoURL"]
    assert (EXAMPLES / "kustomization.yaml").is_file()


def test_the_examples_build_and_apply_with_strict_validation(kube: Kube) -> None:
    objects = _kustomize(kube, EXAMPLES)
    assert {(o["kind"], o["metadata"].get("namespace")) for o in objects} == {
        ("Namespace", None), ("RetryPolicy", "rocketmq-retry-examples")}
    rendered = yaml.safe_dump_all(objects)
    applied = kube.plane.kubectl("apply", "--server-side", "--field-manager=gitops-test", "--validate=strict",
                                 "-f", "-", input_text=rendered)
    try:
        assert applied.returncode == 0, applied.stderr
    finally:
        kube.plane.kubectl("delete", "--ignore-not-found", "--wait=false", "-f", "-", input_text=rendered)


def test_the_argocd_component_merges_the_health_check_into_argocd_cm(kube: Kube, tmp_path: Path) -> None:
    # As Argo CD's own Kustomize install: its install.yaml names no namespace, the kustomization sets it.
    (tmp_path / "install.yaml").write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "argocd-cm"},
        "data": {"url": "https://argocd.example.com"}}))
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "namespace": "argocd",
        "resources": ["install.yaml"], "components": [os.path.relpath(EXAMPLES / "argocd", tmp_path)]}))
    [config] = _kustomize(kube, tmp_path)
    assert config["metadata"] == {"name": "argocd-cm", "namespace": "argocd"}
    script = HEALTH_LUA.read_text()
    assert config["data"] == {"url": "https://argocd.example.com",
                              "resource.customizations.health.rocketmq-retry.io_RetryPolicy": script,
                              "resource.customizations.health.rocketmq-retry.io_DeadLetterQueue": script}
