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

    assert rules(".spec.consumerGroup") == ["self == oldSelf"]
    assert rules(".spec.redrive.targetTopic") == ["!self.startsWith('%RETRY%') && !self.startsWith('%DLQ%')"]


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


@pytest.mark.parametrize("text", ["r1", "2026-05-01.retry_2", "a", "-r", "r-", "r 1", "r/1", "x" * 64])
def test_request_id_pattern(text: str) -> None:
    try:
        parse_dead_letter_spec({"consumerGroup": "g", "redrive": {"requestId": text}})
        accepted = True
    except SpecError:
        accepted = False
    schema = bool(re.fullmatch(REQUEST_ID_PATTERN, text)) and len(text) <= REQUEST_ID_MAX_LENGTH
    assert accepted == schema
