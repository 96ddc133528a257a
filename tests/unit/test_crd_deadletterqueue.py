"""Offline checks of the DeadLetterQueue CRD beyond the shared ones: names, columns, CEL, agreement with the domain."""

import re

import pytest

from rocketmq_retry.domain.dead_letters import (
    DEFAULT_RATE,
    DLQ_GROUP_MAX_LENGTH,
    RATE_LIMIT,
    REQUEST_ID_MAX_LENGTH,
    REQUEST_ID_PATTERN,
    TOPIC_MAX_LENGTH,
    TOPIC_PATTERN,
    DeadLetterBrokerState,
    parse_dead_letter_spec,
)
from rocketmq_retry.domain.durations import DURATION_PATTERN
from rocketmq_retry.domain.expiry import DEFAULT_EXPIRY_MARGIN, DEFAULT_EXPIRY_MARGIN_MS
from rocketmq_retry.domain.redrive import RedriveState
from rocketmq_retry.domain.spec import GROUP_PATTERN, SpecError
from tests.unit.test_crd_schema import CRDS, RP_NODES, load, nodes, schema_of

DLQ = load(CRDS / "deadletterqueues.rocketmq-retry.io.yaml")
NODES = dict(nodes(schema_of(DLQ)))


def test_names_and_columns() -> None:
    names = DLQ["spec"]["names"]
    assert (names["kind"], names["plural"], names["shortNames"]) == ("DeadLetterQueue", "deadletterqueues", ["dlq"])
    (version,) = DLQ["spec"]["versions"]
    assert [column["name"] for column in version["additionalPrinterColumns"]] == [
        "Group", "Depth", "Ready", "Backlog High", "Last Redrive", "Moved", "Age"]


def test_cluster_has_the_retry_policy_shape() -> None:
    def shape(node: object) -> object:
        """The schema without descriptions, which may name the kind."""
        if isinstance(node, dict):
            return {key: shape(value) for key, value in node.items() if key != "description"}
        return node

    assert shape(NODES[".spec.cluster"]) == shape(RP_NODES[".spec.cluster"])


def test_cel_rules_are_in_place() -> None:
    def rules(path: str) -> list[str]:
        return [rule["rule"] for rule in NODES[path].get("x-kubernetes-validations", [])]

    assert rules(".spec.consumerGroup") == rules_of_retry_policy(".spec.consumerGroup")
    assert rules(".spec.cluster.nameServers") == rules_of_retry_policy(".spec.cluster.nameServers")
    assert rules(".spec.redrive.targetTopic") == [
        "!self.startsWith('%RETRY%') && !self.startsWith('%DLQ%')",
        "!(self in [" + ", ".join(f"'{topic}'" for topic in NOT_ALLOWED_SEND_TOPICS) + "])",
        "!(self in [" + ", ".join(f"'{topic}'" for topic in OTHER_SYSTEM_TOPICS) + "]) && !self.startsWith('rmq_sys_')",
    ]


def rules_of_retry_policy(path: str) -> list[str]:
    return [rule["rule"] for rule in RP_NODES[path].get("x-kubernetes-validations", [])]


# apache/rocketmq common/src/main/java/org/apache/rocketmq/common/topic/TopicValidator.java (rocketmq-all-4.9.7 and
# develop, 5.3.4-SNAPSHOT): NOT_ALLOWED_SEND_TOPIC_SET, which brokers refuse sends to (NO_PERMISSION), and the rest of
# SYSTEM_TOPIC_SET (CHECKPOINT_TOPIC since 5.2.0), which isSystemTopic extends with the rmq_sys_ prefix.
NOT_ALLOWED_SEND_TOPICS = ["SCHEDULE_TOPIC_XXXX", "RMQ_SYS_TRANS_HALF_TOPIC", "RMQ_SYS_TRANS_OP_HALF_TOPIC",
                           "TRANS_CHECK_MAX_TIME_TOPIC", "SELF_TEST_TOPIC", "OFFSET_MOVED_EVENT"]
OTHER_SYSTEM_TOPICS = ["TBW102", "BenchmarkTest", "RMQ_SYS_TRACE_TOPIC", "CHECKPOINT_TOPIC"]


def test_the_system_topics_are_valid_names_refused_only_by_the_rules() -> None:
    for topic in [*NOT_ALLOWED_SEND_TOPICS, *OTHER_SYSTEM_TOPICS, "rmq_sys_x"]:
        assert re.fullmatch(TOPIC_PATTERN, topic), topic
        assert len(topic) <= TOPIC_MAX_LENGTH, topic


def test_bounds_agree_with_the_domain() -> None:
    group = NODES[".spec.consumerGroup"]
    assert (group["pattern"], group["maxLength"]) == (GROUP_PATTERN, DLQ_GROUP_MAX_LENGTH)
    rate = NODES[".spec.redrive.rate"]
    assert (rate["minimum"], rate["maximum"], rate["default"]) == (1, RATE_LIMIT, DEFAULT_RATE)
    request = NODES[".spec.redrive.requestId"]
    assert (request["pattern"], request["maxLength"]) == (REQUEST_ID_PATTERN, REQUEST_ID_MAX_LENGTH)
    topic = NODES[".spec.redrive.targetTopic"]
    assert (topic["pattern"], topic["maxLength"]) == (TOPIC_PATTERN, TOPIC_MAX_LENGTH)
    assert NODES[".spec.alertThreshold"]["minimum"] == 0
    assert NODES[".spec.redrive.maxMessages"]["minimum"] == 1
    assert NODES[".status.brokers[].state"]["enum"] == [state.value for state in DeadLetterBrokerState]
    assert NODES[".status.redrive.state"]["enum"] == [state.value for state in RedriveState]


def test_the_expiry_margin_is_a_duration_with_the_domain_default() -> None:
    margin = NODES[".spec.expiryMargin"]
    assert (margin["type"], margin["pattern"], margin["default"]) == ("string", DURATION_PATTERN, DEFAULT_EXPIRY_MARGIN)
    assert parse_dead_letter_spec({"consumerGroup": "g", "expiryMargin": margin["default"]}).expiry_margin_ms \
        == DEFAULT_EXPIRY_MARGIN_MS
    for path in (".status.earliestRemovalTime", ".status.brokers[].earliestRemovalTime"):
        assert NODES[path]["format"] == "date-time", path
    assert NODES[".status.brokers[].fileReservedHours"]["type"] == "integer"


@pytest.mark.parametrize("text", ["r1", "2026-05-01.retry_2", "a", "-r", "r-", "r 1", "r/1", "x" * 64])
def test_request_id_pattern(text: str) -> None:
    try:
        parse_dead_letter_spec({"consumerGroup": "g", "redrive": {"requestId": text}})
        accepted = True
    except SpecError:
        accepted = False
    schema = bool(re.fullmatch(REQUEST_ID_PATTERN, text)) and len(text) <= REQUEST_ID_MAX_LENGTH
    assert accepted == schema
