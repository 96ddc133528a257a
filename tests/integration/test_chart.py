"""The Helm chart, rendered by Helm built from its Go module and applied to the real API server."""

import uuid
from typing import Any

import kubernetes
import pytest
import yaml

from rocketmq_lab import project
from rocketmq_lab.bed.helm import helm, manifests, render
from tests.conftest import Kube


def _by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def test_chart_lints_clean() -> None:
    linted = helm("lint", "--strict", str(project.checkout().chart))
    assert linted.returncode == 0, linted.stdout + linted.stderr


def test_chart_ships_exactly_the_repository_crds() -> None:
    rendered = render(release="rro", namespace="default", include_crds=True)
    assert rendered.returncode == 0, rendered.stderr
    shipped = _by_kind(manifests(rendered.stdout), "CustomResourceDefinition")
    assert shipped == [yaml.safe_load(path.read_text()) for path in sorted(project.checkout().crds.glob("*.yaml"))]


@pytest.mark.parametrize("custom", [False, True], ids=["defaults", "custom-values"])
def test_rendered_chart_applies_with_strict_field_validation(kube: Kube, custom: bool) -> None:
    namespace = kube.new_namespace("chart")
    release = f"rro-{uuid.uuid4().hex[:6]}"
    values = {"watchNamespaces": [namespace], "defaultCluster": {"nameServers": "127.0.0.1:9876;127.0.0.2:9876",
                                                                  "brokerClusterName": "prod"},
              "logLevel": "debug", "metrics": {"port": 0}, "serviceAccount": {"name": "operator"}} if custom else {}
    rendered = render(release=release, namespace=namespace, values=values)
    assert rendered.returncode == 0, rendered.stderr
    objects = manifests(rendered.stdout)

    [deployment] = _by_kind(objects, "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"]}
    [role] = _by_kind(objects, "ClusterRole")
    resources = {resource for rule in role["rules"] for resource in rule["resources"]}
    if custom:
        assert container["args"][:3] == ["--verbose", "operator", "run"]
        assert f"--namespace={namespace}" in container["args"]
        assert env["ROCKETMQ_RETRY_DEFAULT_NAMESRV"] == "127.0.0.1:9876;127.0.0.2:9876"
        assert not {"namespaces", "customresourcedefinitions"} & resources  # a namespaced operator observes neither
        assert not _by_kind(objects, "Service")
        assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == "operator"
    else:
        assert "--all-namespaces" in container["args"]
        assert "ROCKETMQ_RETRY_DEFAULT_NAMESRV" not in env
        assert "namespaces" in resources
        assert _by_kind(objects, "Service")
    assert container["securityContext"]["readOnlyRootFilesystem"] is True

    applied = kube.plane.kubectl("apply", "--server-side", "--field-manager=chart-test", "--validate=strict",
                                 "-f", "-", input_text=rendered.stdout)
    try:
        assert applied.returncode == 0, applied.stderr
        apps = kubernetes.client.AppsV1Api(kube.api)
        assert apps.read_namespaced_deployment(deployment["metadata"]["name"], namespace).spec.replicas == 1
    finally:
        kube.plane.kubectl("delete", "--ignore-not-found", "-f", "-", input_text=rendered.stdout)


@pytest.mark.parametrize(("values", "complaint"), [
    ({"metrics": {"port": 70000}}, "/metrics/port"),
    ({"logLevel": "trace"}, "/logLevel"),
    ({"watchNamespaces": ["Not_A_Namespace"]}, "/watchNamespaces/0"),
    ({"defaultCluster": {"nameServers": "no-port-here"}}, "/defaultCluster/nameServers"),
    ({"sweepIntervalSeconds": 0}, "/sweepIntervalSeconds"),
    ({"replicas": 0}, "/replicas"),
    ({"replicas": 2, "peeringLifetimeSeconds": 5}, "/peeringLifetimeSeconds"),
    ({"replica": 2}, "replica"),
], ids=["port-range", "log-level", "namespace-name", "name-servers", "sweep-interval", "replicas", "peering-lifetime",
        "unknown-key"])
def test_values_that_break_the_schema_are_rejected(values: dict[str, Any], complaint: str) -> None:
    rendered = render(release="rro", namespace="default", values=values)
    assert rendered.returncode != 0
    assert complaint in rendered.stderr, rendered.stderr


@pytest.mark.parametrize("namespaced", [True, False], ids=["namespaced", "cluster-wide"])
def test_replicas_run_in_a_kopf_peering_that_applies(kube: Kube, namespaced: bool) -> None:
    namespace = kube.new_namespace("chart")
    release = f"rro-{uuid.uuid4().hex[:6]}"
    values: dict[str, Any] = {"replicas": 2, "peeringLifetimeSeconds": 20}
    if namespaced:
        values["watchNamespaces"] = [namespace]
    rendered = render(release=release, namespace=namespace, values=values)
    assert rendered.returncode == 0, rendered.stderr
    objects = manifests(rendered.stdout)

    [deployment] = _by_kind(objects, "Deployment")
    name = deployment["metadata"]["name"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert (deployment["spec"]["replicas"], deployment["spec"]["strategy"]["type"]) == (2, "RollingUpdate")
    assert container["args"][-3:] == [f"--peering={name}", "--priority=random", "--peering-lifetime=20"]
    assert {"name": "POD_ID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}} in container["env"]
    [peering] = _by_kind(objects, "KopfPeering" if namespaced else "ClusterKopfPeering")
    assert peering["metadata"]["name"] == name
    assert peering["metadata"].get("namespace") == (namespace if namespaced else None)
    [role] = _by_kind(objects, "ClusterRole")
    [rule] = [rule for rule in role["rules"] if rule["apiGroups"] == ["kopf.dev"]]
    assert rule == {"apiGroups": ["kopf.dev"], "resources": ["kopfpeerings" if namespaced else "clusterkopfpeerings"],
                    "verbs": ["get", "list", "watch", "patch"]}

    applied = kube.plane.kubectl("apply", "--server-side", "--field-manager=chart-test", "--validate=strict",
                                 "-f", "-", input_text=rendered.stdout)
    try:
        assert applied.returncode == 0, applied.stderr
    finally:
        kube.plane.kubectl("delete", "--ignore-not-found", "-f", "-", input_text=rendered.stdout)


def test_a_single_replica_has_no_peering() -> None:
    rendered = render(release="rro", namespace="default")
    assert rendered.returncode == 0, rendered.stderr
    objects = manifests(rendered.stdout)
    [deployment] = _by_kind(objects, "Deployment")
    assert deployment["spec"]["strategy"]["type"] == "Recreate"
    assert not any("peering" in arg for arg in deployment["spec"]["template"]["spec"]["containers"][0]["args"])
    assert not [o for o in objects if o["apiVersion"].startswith("kopf.dev/")]
    [role] = _by_kind(objects, "ClusterRole")
    assert all("kopf.dev" not in rule["apiGroups"] for rule in role["rules"])


def test_monitoring_objects_render_on_request() -> None:
    assert not [o for o in manifests(render(release="rro", namespace="default").stdout)
                if o["apiVersion"].startswith("monitoring.coreos.com")]
    rendered = render(release="rro", namespace="default", values={"metrics": {
        "serviceMonitor": {"enabled": True}, "prometheusRule": {"enabled": True, "backlogFor": "2m"}}})
    assert rendered.returncode == 0, rendered.stderr
    [monitor] = _by_kind(manifests(rendered.stdout), "ServiceMonitor")
    [service] = _by_kind(manifests(rendered.stdout), "Service")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"]
    [rule] = _by_kind(manifests(rendered.stdout), "PrometheusRule")
    alerts = {r["alert"]: r for group in rule["spec"]["groups"] for r in group["rules"]}
    assert alerts["RocketMQDeadLetterBacklogHigh"]["expr"] == "rocketmq_retry_dead_letter_backlogs_high > 0"
    assert alerts["RocketMQDeadLetterBacklogHigh"]["for"] == "2m"
    assert "{{ $labels.cluster }}" in alerts["RocketMQDeadLetterBacklogHigh"]["annotations"]["summary"]
