"""The Kubernetes bed: a real API server with RBAC, service-account tokens and a controller manager."""

import uuid
from collections.abc import Callable

import kubernetes
import pytest
from kubernetes.client import ApiException

from rocketmq_lab.bed.processes import wait_until
from tests.conftest import Kube

WIDGETS = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.bed.example.com"},
    "spec": {
        "group": "bed.example.com", "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
        "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
            "type": "object",
            "properties": {"spec": {"type": "object", "properties": {"size": {"type": "integer", "minimum": 1}}}},
        }}}],
    },
}


def _namespace(kube: Kube) -> str:
    name = f"bed-{uuid.uuid4().hex[:8]}"
    kubernetes.client.CoreV1Api(kube.api).create_namespace({"metadata": {"name": name}})
    return name


def test_custom_resource_round_trips_through_a_crd(kube: Kube) -> None:
    extensions = kubernetes.client.ApiextensionsV1Api(kube.api)
    extensions.create_custom_resource_definition(WIDGETS)
    wait_until(lambda: any(c.type == "Established" and c.status == "True"
                           for c in extensions.read_custom_resource_definition(WIDGETS["metadata"]["name"])
                           .status.conditions or []),
               timeout=30, what="Established")
    namespace = _namespace(kube)
    custom = kubernetes.client.CustomObjectsApi(kube.api)
    body = {"apiVersion": "bed.example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": 3}}
    wait_until(lambda: _try_create(custom, namespace, body), timeout=30, what="served by discovery")
    read = custom.get_namespaced_custom_object("bed.example.com", "v1", namespace, "widgets", "w")
    assert read["spec"] == {"size": 3}
    with pytest.raises(ApiException) as rejected:
        custom.create_namespaced_custom_object("bed.example.com", "v1", namespace, "widgets",
                                               {**body, "metadata": {"name": "bad"}, "spec": {"size": 0}})
    assert rejected.value.status == 422


def _try_create(custom: kubernetes.client.CustomObjectsApi, namespace: str, body: dict[str, object]) -> bool:
    try:
        custom.create_namespaced_custom_object("bed.example.com", "v1", namespace, "widgets", body)
    except ApiException as error:
        if error.status == 404:
            return False
        raise
    return True


def test_rbac_is_enforced_for_a_fresh_service_account(kube: Kube) -> None:
    namespace = _namespace(kube)
    kubernetes.client.CoreV1Api(kube.api).create_namespaced_service_account(namespace, {"metadata": {"name": "nobody"}})
    as_nobody = kubernetes.client.CoreV1Api(kube.client_for(kube.service_account_kubeconfig(namespace, "nobody")))
    with pytest.raises(ApiException) as forbidden:
        as_nobody.list_namespaced_secret(namespace)
    assert forbidden.value.status == 403
    assert kubernetes.client.VersionApi(as_nobody.api_client).get_code().git_version == "v1.36.3"


def test_controller_manager_finishes_namespace_deletion_and_creates_default_accounts(kube: Kube) -> None:
    core = kubernetes.client.CoreV1Api(kube.api)
    namespace = _namespace(kube)
    wait_until(lambda: _exists(lambda: core.read_namespaced_service_account("default", namespace)), timeout=60,
               what="default ServiceAccount created")
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "doomed"}})
    core.delete_namespace(namespace)
    wait_until(lambda: not _exists(lambda: core.read_namespace(namespace)), timeout=90, what="namespace deleted")


def _exists(read: Callable[[], object]) -> bool:
    try:
        read()
    except ApiException as error:
        if error.status == 404:
            return False
        raise
    return True
