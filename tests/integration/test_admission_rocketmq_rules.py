"""RocketMQ's own naming rules, refused by the real API server at admission (issue 13).

Each rule comes from the apache/rocketmq sources, read at tag rocketmq-all-4.9.7 and on develop (5.3.4-SNAPSHOT,
September 2025; the mirror had no 5.5.0 tag):

* name-server ports: remoting/src/main/java/org/apache/rocketmq/remoting/common/RemotingHelper.java,
  string2SocketAddress, builds ``new InetSocketAddress(host, Integer.parseInt(port))``, which throws above 65535;
  nothing is reachable on port 0.
* consumer groups: client/src/main/java/org/apache/rocketmq/client/Validators.java, checkGroup (blank, the
  ``^[%|a-zA-Z0-9_-]+$`` character rule, 255 characters in 4.9.7 and GROUP_MAX_LENGTH = 120 on develop);
  common/src/main/java/org/apache/rocketmq/common/MixAll.java, isSysConsumerGroup (the CID_RMQ_SYS_ prefix, which
  proxy/.../grpc/v2/common/GrpcValidator.validateConsumerGroup refuses) and PREDEFINE_GROUP_SET / isPredefinedGroup.
* redrive targets: common/src/main/java/org/apache/rocketmq/common/topic/TopicValidator.java,
  isNotAllowedSendTopic (brokers answer NO_PERMISSION in AbstractSendMessageProcessor.msgCheck) and isSystemTopic
  (SYSTEM_TOPIC_SET plus the rmq_sys_ prefix; the 5.x proxy refuses them), besides the 127-character limit.

Every refusal must name the field in the API server's message, and objects that follow the rules stay accepted.
"""

import json
import uuid
from typing import Any

import pytest
from kubernetes.client import ApiException

from tests.conftest import Kube

GROUP, VERSION = "rocketmq-retry.io", "v1alpha1"
KINDS = {"retrypolicies": "RetryPolicy", "deadletterqueues": "DeadLetterQueue"}

# MixAll.PREDEFINE_GROUP_SET on develop (the same constants exist in 4.9.7's MixAll); CID_RMQ_SYS_TRANS is covered by
# the CID_RMQ_SYS_ prefix rule.
PREDEFINED_GROUPS = ["DEFAULT_CONSUMER", "DEFAULT_PRODUCER", "TOOLS_CONSUMER", "SCHEDULE_CONSUMER",
                     "FILTERSRV_CONSUMER", "__MONITOR_CONSUMER", "CLIENT_INNER_PRODUCER", "SELF_TEST_P_GROUP",
                     "SELF_TEST_C_GROUP", "CID_ONS-HTTP-PROXY", "CID_ONSAPI_PERMISSION", "CID_ONSAPI_OWNER",
                     "CID_ONSAPI_PULL"]
# TopicValidator.NOT_ALLOWED_SEND_TOPIC_SET (identical in 4.9.7 and develop).
NOT_ALLOWED_SEND_TOPICS = ["SCHEDULE_TOPIC_XXXX", "RMQ_SYS_TRANS_HALF_TOPIC", "RMQ_SYS_TRANS_OP_HALF_TOPIC",
                           "TRANS_CHECK_MAX_TIME_TOPIC", "SELF_TEST_TOPIC", "OFFSET_MOVED_EVENT"]
# The rest of TopicValidator.SYSTEM_TOPIC_SET (CHECKPOINT_TOPIC from 5.2.0) and the rmq_sys_ prefix.
OTHER_SYSTEM_TOPICS = ["TBW102", "BenchmarkTest", "RMQ_SYS_TRACE_TOPIC", "CHECKPOINT_TOPIC", "rmq_sys_anything"]


@pytest.fixture(scope="module")
def namespace(kube: Kube) -> str:
    return kube.new_namespace("admission")


def _body(plural: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": KINDS[plural],
            "metadata": {"name": f"adm-{uuid.uuid4().hex[:8]}"}, "spec": spec}


def _refusal(kube: Kube, namespace: str, plural: str, spec: dict[str, Any]) -> str:
    """Create the object, expect the API server to refuse it, and return its message."""
    with pytest.raises(ApiException) as rejected:
        kube.create_object(namespace, plural, _body(plural, spec), field_validation="Strict")
    assert rejected.value.status == 422, rejected.value.body
    message = json.loads(rejected.value.body)["message"]
    assert isinstance(message, str)
    return message


# --- name-server ports -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("plural", KINDS)
@pytest.mark.parametrize("name_servers", ["ns:0", "ns:65536", "ns:99999", "ns-0.rocketmq:9876;ns-1.rocketmq:70000",
                                          "a:00000"])
def test_a_name_server_port_outside_1_to_65535_is_refused(kube: Kube, namespace: str, plural: str,
                                                          name_servers: str) -> None:
    message = _refusal(kube, namespace, plural, {"consumerGroup": "orders", "cluster": {"nameServers": name_servers}})
    assert "spec.cluster.nameServers: every port must be between 1 and 65535" in message, message


@pytest.mark.parametrize("plural", KINDS)
def test_name_server_ports_at_the_edges_are_accepted(kube: Kube, namespace: str, plural: str) -> None:
    spec = {"consumerGroup": "orders", "cluster": {"nameServers": "a:1;b.rocketmq.svc:65535;10.0.0.7:09876"}}
    assert kube.create_object(namespace, plural, _body(plural, spec))["spec"]["cluster"] == spec["cluster"]


# --- consumer groups ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("plural", KINDS)
@pytest.mark.parametrize("group", ["CID_RMQ_SYS_TRANS", "CID_RMQ_SYS_mine"])
def test_cid_rmq_sys_groups_are_refused(kube: Kube, namespace: str, plural: str, group: str) -> None:
    message = _refusal(kube, namespace, plural, {"consumerGroup": group})
    assert "spec.consumerGroup: RocketMQ reserves CID_RMQ_SYS_ groups for itself" in message, message


@pytest.mark.parametrize("plural", KINDS)
@pytest.mark.parametrize("group", PREDEFINED_GROUPS)
def test_predefined_groups_are_refused(kube: Kube, namespace: str, plural: str, group: str) -> None:
    message = _refusal(kube, namespace, plural, {"consumerGroup": group})
    assert "spec.consumerGroup: RocketMQ predefines this group for its own tools and clients" in message, message


@pytest.mark.parametrize("plural", KINDS)
@pytest.mark.parametrize("group", ["orders.v2", "orders group", "заказы", "orders/eu", ""])
def test_groups_the_official_clients_refuse_are_refused(kube: Kube, namespace: str, plural: str, group: str) -> None:
    """Validators.checkGroup: blank, or characters outside ^[%|a-zA-Z0-9_-]+$."""
    assert "spec.consumerGroup" in _refusal(kube, namespace, plural, {"consumerGroup": group})


@pytest.mark.parametrize(("plural", "limit"), [("retrypolicies", 120), ("deadletterqueues", 112)])
def test_groups_longer_than_the_brokers_allow_are_refused(kube: Kube, namespace: str, plural: str,
                                                          limit: int) -> None:
    """Validators/TopicValidator GROUP_MAX_LENGTH = 120 on 5.x (the DLQ leaves room for its -redrive group)."""
    assert "spec.consumerGroup" in _refusal(kube, namespace, plural, {"consumerGroup": "g" * (limit + 1)})
    created = kube.create_object(namespace, plural, _body(plural, {"consumerGroup": "g" * limit}))
    assert created["spec"]["consumerGroup"] == "g" * limit


@pytest.mark.parametrize("plural", KINDS)
@pytest.mark.parametrize("group", ["CID_orders", "orders_CID_RMQ_SYS_", "cid_rmq_sys_orders", "TOOLS_CONSUMER_2",
                                   "default_consumer", "%|orders-1_a", "ns%orders"])
def test_groups_near_the_reserved_ones_are_accepted(kube: Kube, namespace: str, plural: str, group: str) -> None:
    """The reserved names are exact and case-sensitive (String.equals / startsWith), so look-alikes stay valid."""
    assert kube.create_object(namespace, plural, _body(plural, {"consumerGroup": group}))["spec"]["consumerGroup"] \
        == group


# --- redrive targets ---------------------------------------------------------------------------------------------

def _redrive_to(topic: str) -> dict[str, Any]:
    return {"consumerGroup": "orders", "redrive": {"requestId": "r1", "targetTopic": topic}}


@pytest.mark.parametrize("topic", NOT_ALLOWED_SEND_TOPICS)
def test_redrive_to_a_topic_brokers_refuse_sends_to_is_refused(kube: Kube, namespace: str, topic: str) -> None:
    message = _refusal(kube, namespace, "deadletterqueues", _redrive_to(topic))
    assert "spec.redrive.targetTopic: brokers refuse sends to this RocketMQ system topic" in message, message


@pytest.mark.parametrize("topic", OTHER_SYSTEM_TOPICS)
def test_redrive_to_another_system_topic_is_refused(kube: Kube, namespace: str, topic: str) -> None:
    message = _refusal(kube, namespace, "deadletterqueues", _redrive_to(topic))
    assert "spec.redrive.targetTopic: RocketMQ reserves this system topic for itself" in message, message


@pytest.mark.parametrize("topic", ["%RETRY%orders", "%DLQ%orders"])
def test_redrive_to_a_retry_or_dead_letter_topic_is_refused(kube: Kube, namespace: str, topic: str) -> None:
    message = _refusal(kube, namespace, "deadletterqueues", _redrive_to(topic))
    assert "spec.redrive.targetTopic must not be a retry or dead-letter topic" in message, message


@pytest.mark.parametrize("topic", ["orders.replay", "orders replay", "t" * 128, ""])
def test_redrive_to_a_topic_the_clients_refuse_is_refused(kube: Kube, namespace: str, topic: str) -> None:
    """Validators.checkTopic / TopicValidator.validateTopic: blank, bad characters, longer than 127."""
    assert "spec.redrive.targetTopic" in _refusal(kube, namespace, "deadletterqueues", _redrive_to(topic))


@pytest.mark.parametrize("topic", ["orders_replay", "t" * 127, "SCHEDULE_TOPIC_XXXX_orders", "RMQ_SYS_orders",
                                   "rmq_SYS_orders", "tbw102", "%LMQ%orders"])
def test_redrive_to_an_ordinary_topic_is_accepted(kube: Kube, namespace: str, topic: str) -> None:
    created = kube.create_object(namespace, "deadletterqueues", _body("deadletterqueues", _redrive_to(topic)))
    assert created["spec"]["redrive"]["targetTopic"] == topic


def test_a_full_retry_policy_and_dead_letter_queue_are_still_accepted(kube: Kube, namespace: str) -> None:
    cluster = {"nameServers": "rocketmq-namesrv-0.rocketmq:9876;rocketmq-namesrv-1.rocketmq:9876",
               "brokerClusterName": "DefaultCluster"}
    policy = {"cluster": cluster, "consumerGroup": "orders_consumer", "maxRetries": 3, "retryQueues": 2,
              "backoff": {"customized": {"delays": ["1s", "10s"]}}, "deletionPolicy": "Reset"}
    assert kube.create_object(namespace, "retrypolicies", _body("retrypolicies", policy))["spec"] == policy
    dead_letters = {"cluster": cluster, "consumerGroup": "orders_consumer", "readable": True, "alertThreshold": 10,
                    "expiryMargin": "6h",
                    "redrive": {"requestId": "r1", "rate": 50, "targetTopic": "orders", "cancel": False,
                                "scope": "Topic", "dryRun": True,
                                "selector": {"tags": ["created"], "storedBefore": "2026-05-01T00:00:00Z"}}}
    assert kube.create_object(namespace, "deadletterqueues",
                              _body("deadletterqueues", dead_letters))["spec"] == dead_letters
