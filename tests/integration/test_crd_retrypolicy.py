"""The RetryPolicy CRD as the real API server enforces it: valid objects pass, bad ones get a clear reason."""

import uuid
from typing import Any

import kubernetes
import pytest
from kubernetes.client import ApiException

from tests.conftest import Kube

GROUP, VERSION, PLURAL = "rocketmq-retry.io", "v1alpha1", "retrypolicies"


@pytest.fixture(scope="module")
def namespace(kube: Kube) -> str:
    name = f"crd-{uuid.uuid4().hex[:8]}"
    kubernetes.client.CoreV1Api(kube.api).create_namespace({"metadata": {"name": name}})
    return name


def _policy(spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "RetryPolicy",
            "metadata": {"name": f"rp-{uuid.uuid4().hex[:8]}"}, "spec": spec}


def _create(kube: Kube, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
    created: dict[str, Any] = kubernetes.client.CustomObjectsApi(kube.api).create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, body)
    return created


def test_a_full_policy_is_accepted_and_read_back(kube: Kube, namespace: str) -> None:
    spec = {"cluster": {"nameServers": "127.0.0.1:9876;127.0.0.2:9876", "brokerClusterName": "DefaultCluster"},
            "consumerGroup": "orders_consumer", "maxRetries": 3, "retryQueues": 2,
            "backoff": {"exponential": {"initial": "1s", "max": "1m", "multiplier": 2}}, "deletionPolicy": "Reset"}
    created = _create(kube, namespace, _policy(spec))
    assert created["spec"] == spec


def test_unset_fields_get_no_defaults(kube: Kube, namespace: str) -> None:
    created = _create(kube, namespace, _policy({"consumerGroup": "just_a_group"}))
    assert set(created["spec"]) == {"consumerGroup", "deletionPolicy"}
    assert created["spec"]["deletionPolicy"] == "Retain"


@pytest.mark.parametrize(("spec", "reason"), [
    ({"consumerGroup": "bad group!"}, "spec.consumerGroup"),
    ({"consumerGroup": "g", "maxRetries": -1}, "spec.maxRetries"),
    ({"consumerGroup": "g", "retryQueues": 0}, "silently discards"),
    ({"consumerGroup": "g", "backoff": {"customized": {"delays": ["1s"]},
                                         "exponential": {"initial": "1s", "max": "2s"}}}, "exactly one"),
    ({"consumerGroup": "g", "backoff": {"exponential": {"initial": "1m", "max": "1s"}}}, "must not be shorter"),
    ({"consumerGroup": "g", "backoff": {"customized": {"delays": ["soon"]}}}, "spec.backoff.customized.delays"),
    ({"consumerGroup": "g", "deletionPolicy": "Delete"}, "spec.deletionPolicy"),
], ids=["group-name", "negative-retries", "zero-retry-queues", "two-backoffs", "max-below-initial",
        "bad-duration", "unknown-deletion-policy"])
def test_invalid_policies_are_rejected_with_a_readable_reason(kube: Kube, namespace: str, spec: dict[str, Any],
                                                              reason: str) -> None:
    with pytest.raises(ApiException) as rejected:
        _create(kube, namespace, _policy(spec))
    assert rejected.value.status == 422
    assert reason in rejected.value.body


def test_consumer_group_is_immutable(kube: Kube, namespace: str) -> None:
    created = _create(kube, namespace, _policy({"consumerGroup": "first_group"}))
    custom = kubernetes.client.CustomObjectsApi(kube.api)
    with pytest.raises(ApiException) as rejected:
        custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, created["metadata"]["name"],
                                              {"spec": {"consumerGroup": "second_group"}})
    assert rejected.value.status == 422
    assert "consumerGroup is immutable" in rejected.value.body
