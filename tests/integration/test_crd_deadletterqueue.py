"""The DeadLetterQueue CRD as the real API server enforces it: valid objects pass, bad ones get a clear reason."""

import json
import uuid
from typing import Any

import kubernetes
import pytest
from kubernetes.client import ApiException

from tests.conftest import Kube

GROUP, VERSION, PLURAL = "rocketmq-retry.io", "v1alpha1", "deadletterqueues"


@pytest.fixture(scope="module")
def namespace(kube: Kube) -> str:
    return kube.new_namespace("crd-dlq")


def _dlq(spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "DeadLetterQueue",
            "metadata": {"name": f"dlq-{uuid.uuid4().hex[:8]}"}, "spec": spec}


def _create(kube: Kube, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
    return kube.create_object(namespace, PLURAL, body)


def test_a_full_object_is_accepted_and_read_back(kube: Kube, namespace: str) -> None:
    spec = {"cluster": {"nameServers": "127.0.0.1:9876", "brokerClusterName": "DefaultCluster"},
            "consumerGroup": "orders_consumer", "readable": True, "alertThreshold": 100,
            "redrive": {"requestId": "2026-05-01.first", "rate": 200, "maxMessages": 1000,
                        "targetTopic": "orders_replay", "cancel": False, "scope": "Topic", "dryRun": True,
                        "selector": {"messageIds": ["7F00000100012A9F0000000000000001"], "tags": ["created"],
                                     "keys": ["order-17"], "storedAfter": "2026-05-01T00:00:00Z",
                                     "storedBefore": "2026-05-02T00:00:00Z"}}}
    created = _create(kube, namespace, _dlq(spec))
    assert created["spec"] == {**spec, "expiryMargin": "12h"}


def test_defaults(kube: Kube, namespace: str) -> None:
    created = _create(kube, namespace, _dlq({"consumerGroup": "g", "redrive": {"requestId": "r1"}}))
    assert created["spec"] == {"consumerGroup": "g", "readable": False, "expiryMargin": "12h",
                               "redrive": {"requestId": "r1", "rate": 100, "cancel": False, "scope": "Group",
                                           "dryRun": False}}


def test_the_short_name_and_category_list_it(kube: Kube, namespace: str) -> None:
    _create(kube, namespace, _dlq({"consumerGroup": "listed"}))
    for name in ("dlq", "rocketmq"):
        listed = kube.plane.kubectl("get", name, "-n", namespace, "-o", "name")
        assert listed.returncode == 0, listed.stderr
        assert "deadletterqueue.rocketmq-retry.io/" in listed.stdout


@pytest.mark.parametrize(("spec", "reason"), [
    ({"consumerGroup": "bad group!"}, "spec.consumerGroup"),
    ({"consumerGroup": "g" * 113}, "spec.consumerGroup"),
    ({"consumerGroup": "g", "readable": "yes"}, "spec.readable"),
    ({"consumerGroup": "g", "alertThreshold": -1}, "spec.alertThreshold"),
    ({"consumerGroup": "g", "redrive": {"rate": 10}}, "spec.redrive.requestId"),
    ({"consumerGroup": "g", "redrive": {"requestId": "-r1"}}, "spec.redrive.requestId"),
    ({"consumerGroup": "g", "redrive": {"requestId": "r1", "rate": 0}}, "spec.redrive.rate"),
    ({"consumerGroup": "g", "redrive": {"requestId": "r1", "rate": 10001}}, "spec.redrive.rate"),
    ({"consumerGroup": "g", "redrive": {"requestId": "r1", "maxMessages": 0}}, "spec.redrive.maxMessages"),
    ({"consumerGroup": "g", "redrive": {"requestId": "r1", "targetTopic": "%DLQ%g"}},
     "targetTopic must not be a retry or dead-letter topic"),
    ({"consumerGroup": "g", "redrive": {"requestId": "r1", "targetTopic": "%RETRY%g"}},
     "targetTopic must not be a retry or dead-letter topic"),
    ({"consumerGroup": "g", "redrive": {"requestId": "r1", "targetTopic": "a topic"}}, "spec.redrive.targetTopic"),
    ({"consumerGroup": "g", "expiryMargin": "soon"}, "spec.expiryMargin"),
    ({"consumerGroup": "g", "redrive": {"requestId": "r1", "scope": "Everyone"}}, "spec.redrive.scope"),
    ({"consumerGroup": "g", "redrive": {"requestId": "r1", "selector": {"messageIds": ["42"]}}},
     "spec.redrive.selector.messageIds[0]"),
    ({"consumerGroup": "g", "redrive": {"requestId": "r1", "selector": {"storedAfter": "tomorrow"}}},
     "spec.redrive.selector.storedAfter"),
    ({"consumerGroup": "g", "redrive": {"requestId": "r1", "selector": {
        "storedAfter": "2026-05-02T00:00:00Z", "storedBefore": "2026-05-01T00:00:00Z"}}},
     "spec.redrive.selector.storedBefore must be after storedAfter"),
    ({"consumerGroup": "g", "cluster": {"nameServers": "no-port"}}, "spec.cluster.nameServers"),
    ({"consumerGroup": "g", "maxRetries": 3}, 'unknown field "spec.maxRetries"'),
], ids=["group-name", "group-too-long", "readable-not-bool", "negative-threshold", "no-request-id",
        "bad-request-id", "zero-rate", "rate-too-high", "zero-max-messages", "dlq-target", "retry-target",
        "bad-target", "bad-margin", "bad-scope", "bad-message-id", "bad-time", "empty-window", "bad-name-servers",
        "unknown-field"])
def test_invalid_objects_are_rejected_with_a_readable_reason(kube: Kube, namespace: str, spec: dict[str, Any],
                                                             reason: str) -> None:
    with pytest.raises(ApiException) as rejected:
        kube.create_object(namespace, PLURAL, _dlq(spec), field_validation="Strict")
    assert rejected.value.status in (400, 422)  # 400: strict decoding refuses unknown fields before validation
    assert reason in json.loads(rejected.value.body)["message"]


def test_consumer_group_is_immutable(kube: Kube, namespace: str) -> None:
    created = _create(kube, namespace, _dlq({"consumerGroup": "first_group"}))
    custom = kubernetes.client.CustomObjectsApi(kube.api)
    with pytest.raises(ApiException) as rejected:
        custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, created["metadata"]["name"],
                                              {"spec": {"consumerGroup": "second_group"}})
    assert rejected.value.status == 422
    assert "consumerGroup is immutable" in rejected.value.body
