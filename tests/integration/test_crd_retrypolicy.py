"""The RetryPolicy CRD as the real API server enforces it: valid objects pass, bad ones get a clear reason."""

import json
import uuid
from typing import Any

import kubernetes
import pytest
from kubernetes.client import ApiException

from tests.conftest import Kube

GROUP, VERSION, PLURAL = "rocketmq-retry.io", "v1alpha1", "retrypolicies"


@pytest.fixture(scope="module")
def namespace(kube: Kube) -> str:
    return kube.new_namespace("crd")


def _policy(spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "RetryPolicy",
            "metadata": {"name": f"rp-{uuid.uuid4().hex[:8]}"}, "spec": spec}


def _create(kube: Kube, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
    return kube.create_object(namespace, PLURAL, body)


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


G = {"consumerGroup": "g"}
EXPONENTIAL = {"initial": "1s", "max": "1m"}
INVALID = {  # name -> (spec, what the API server's message must contain)
    "group-missing": ({"maxRetries": 1}, "spec.consumerGroup: Required value"),
    "group-name": ({"consumerGroup": "bad group!"}, "spec.consumerGroup"),
    "group-empty": ({"consumerGroup": ""}, "spec.consumerGroup"),
    "group-too-long": ({"consumerGroup": "g" * 121}, "spec.consumerGroup"),
    "group-dot": ({"consumerGroup": "orders.v2"}, "spec.consumerGroup"),
    "negative-retries": ({**G, "maxRetries": -1}, "spec.maxRetries"),
    "too-many-retries": ({**G, "maxRetries": 1001}, "spec.maxRetries"),
    "retries-as-text": ({**G, "maxRetries": "three"}, "spec.maxRetries"),
    "zero-retry-queues": ({**G, "retryQueues": 0}, "silently discards"),
    "too-many-retry-queues": ({**G, "retryQueues": 65}, "spec.retryQueues"),
    "two-backoffs": ({**G, "backoff": {"customized": {"delays": ["1s"]}, "exponential": EXPONENTIAL}},
                     "exactly one"),
    "empty-backoff": ({**G, "backoff": {}}, "exactly one"),
    "max-below-initial": ({**G, "backoff": {"exponential": {"initial": "1m", "max": "1s"}}}, "must not be shorter"),
    "exponential-without-max": ({**G, "backoff": {"exponential": {"initial": "1s"}}},
                                "spec.backoff.exponential.max: Required value"),
    "bad-duration": ({**G, "backoff": {"customized": {"delays": ["soon"]}}}, "spec.backoff.customized.delays"),
    "duration-with-space": ({**G, "backoff": {"customized": {"delays": ["1 s"]}}},
                            "spec.backoff.customized.delays"),
    "no-delays": ({**G, "backoff": {"customized": {"delays": []}}}, "spec.backoff.customized.delays"),
    "bad-initial": ({**G, "backoff": {"exponential": {"initial": "1d", "max": "2d"}}},
                    "spec.backoff.exponential.initial"),
    "multiplier-zero": ({**G, "backoff": {"exponential": {**EXPONENTIAL, "multiplier": 0}}},
                        "spec.backoff.exponential.multiplier"),
    "unknown-deletion-policy": ({**G, "deletionPolicy": "Delete"}, "spec.deletionPolicy"),
    "cluster-without-name-servers": ({**G, "cluster": {"brokerClusterName": "c"}},
                                     "spec.cluster.nameServers: Required value"),
    "name-server-without-port": ({**G, "cluster": {"nameServers": "namesrv"}}, "spec.cluster.nameServers"),
    "name-servers-comma-separated": ({**G, "cluster": {"nameServers": "a:9876,b:9876"}},
                                     "spec.cluster.nameServers"),
    "empty-broker-cluster": ({**G, "cluster": {"nameServers": "a:9876", "brokerClusterName": ""}},
                             "spec.cluster.brokerClusterName"),
    "secret-name": ({**G, "cluster": {"nameServers": "a:9876", "aclSecretRef": {"name": "Not_A_Secret"}}},
                    "spec.cluster.aclSecretRef.name"),
    "secret-without-name": ({**G, "cluster": {"nameServers": "a:9876", "aclSecretRef": {}}},
                            "spec.cluster.aclSecretRef.name: Required value"),
    "unknown-field": ({**G, "maxRetrys": 3}, 'unknown field "spec.maxRetrys"'),
    "unknown-nested-field": ({**G, "backoff": {"exponential": {**EXPONENTIAL, "jitter": True}}},
                             'unknown field "spec.backoff.exponential.jitter"'),
}


@pytest.mark.parametrize(("spec", "reason"), INVALID.values(), ids=INVALID.keys())
def test_invalid_policies_are_rejected_with_a_readable_reason(kube: Kube, namespace: str, spec: dict[str, Any],
                                                              reason: str) -> None:
    """Strict field validation, as `kubectl apply` uses by default, so misspelt fields are errors, not dropped."""
    with pytest.raises(ApiException) as rejected:
        kube.create_object(namespace, PLURAL, _policy(spec), field_validation="Strict")
    assert rejected.value.status in (400, 422)
    message = json.loads(rejected.value.body)["message"]
    assert reason in message, message


def test_there_are_at_least_25_rejected_shapes() -> None:
    assert len(INVALID) >= 25


def test_consumer_group_is_immutable(kube: Kube, namespace: str) -> None:
    created = _create(kube, namespace, _policy({"consumerGroup": "first_group"}))
    custom = kubernetes.client.CustomObjectsApi(kube.api)
    with pytest.raises(ApiException) as rejected:
        custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, created["metadata"]["name"],
                                              {"spec": {"consumerGroup": "second_group"}})
    assert rejected.value.status == 422
    assert "consumerGroup is immutable" in rejected.value.body
