"""Offline checks of the CRDs: structure, descriptions, printer columns, CEL rules, and agreement with the domain.

The API server's own validation of these schemas is exercised by the integration tests against a real kube-apiserver.
"""

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kopf._cogs.structs import references  # kopf's own selectors of its peering resources

from rocketmq_retry.controller import peering
from rocketmq_retry.domain.durations import DURATION_PATTERN, parse_duration
from rocketmq_retry.domain.ladder import ClientProtocol, LadderSource
from rocketmq_retry.domain.spec import (
    GROUP_MAX_LENGTH,
    GROUP_PATTERN,
    MAX_CUSTOMIZED_DELAYS,
    MAX_RETRIES_LIMIT,
    MULTIPLIER_LIMIT,
    RETRY_QUEUES_LIMIT,
    DeletionPolicy,
    parse_name_servers,
)
from rocketmq_retry.domain.status import BrokerState

CRDS = Path(__file__).resolve().parents[2] / "crds"
ALL_CRDS = sorted(CRDS.glob("*.rocketmq-retry.io.yaml"))  # the API; crds/ also ships kopf's peering CRDs


class _NoDuplicateKeys(yaml.SafeLoader):
    """YAML as the API server reads it would keep one of two equal keys silently; a CRD must not have any."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        keys = [self.construct_object(key, deep=deep) for key, _ in node.value]
        repeated = sorted({str(key) for key in keys if keys.count(key) > 1})
        if repeated:
            raise yaml.constructor.ConstructorError(None, None, f"repeated keys {repeated}", node.start_mark)
        return super().construct_mapping(node, deep=deep)


def load(path: Path) -> dict[str, Any]:
    document = yaml.load(path.read_text(), Loader=_NoDuplicateKeys)  # noqa: S506 - a SafeLoader subclass
    assert isinstance(document, dict)
    return document


def schema_of(crd: dict[str, Any]) -> dict[str, Any]:
    (version,) = crd["spec"]["versions"]
    schema = version["schema"]["openAPIV3Schema"]
    assert isinstance(schema, dict)
    return schema


def nodes(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema node below the root with its dotted path (list items get `[]`)."""
    for name, child in schema.get("properties", {}).items():
        yield f"{path}.{name}", child
        yield from nodes(child, f"{path}.{name}")
    if "items" in schema:
        yield f"{path}[]", schema["items"]
        yield from nodes(schema["items"], f"{path}[]")


def resolve(schema: dict[str, Any], json_path: str) -> dict[str, Any]:
    """The schema node a printer-column JSONPath (with optional [?(...)] filters) points at."""
    node = schema
    for step in re.sub(r"\[\?\(.*?\)\]", "[]", json_path).strip(".").split("."):
        name, is_list = step.removesuffix("[]"), step.endswith("[]")
        node = node["properties"][name]
        if is_list:
            assert node["type"] == "array", json_path
            node = node["items"]
    return node


RETRY_POLICY = load(CRDS / "retrypolicies.rocketmq-retry.io.yaml")
RP_SCHEMA = schema_of(RETRY_POLICY)
RP_NODES = dict(nodes(RP_SCHEMA))


@pytest.mark.parametrize("path", ALL_CRDS, ids=lambda path: path.name)
def test_every_node_is_typed_and_described(path: Path) -> None:
    schema = schema_of(load(path))
    # The API server rejects anything but `type` under the root `metadata` (it is described by ObjectMeta).
    assert schema["properties"]["metadata"] == {"type": "object"}
    undescribed = [name for name, node in nodes(schema)
                   if not node.get("description", "").strip() and name != ".metadata"]
    untyped = [name for name, node in nodes(schema) if "type" not in node]
    assert (undescribed, untyped) == ([], [])
    assert schema["description"].strip()


@pytest.mark.parametrize("path", ALL_CRDS, ids=lambda path: path.name)
def test_identity_and_subresources(path: Path) -> None:
    crd = load(path)
    spec = crd["spec"]
    assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
    assert spec["group"] == "rocketmq-retry.io"
    assert crd["metadata"]["name"] == f"{spec['names']['plural']}.{spec['group']}"
    assert spec["scope"] == "Namespaced"
    assert spec["names"]["categories"] == ["rocketmq"]
    (version,) = spec["versions"]
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    assert version["subresources"] == {"status": {}}


@pytest.mark.parametrize("path", ALL_CRDS, ids=lambda path: path.name)
def test_printer_columns_resolve_to_schema_paths(path: Path) -> None:
    crd = load(path)
    (version,) = crd["spec"]["versions"]
    schema = schema_of(crd)
    for column in version["additionalPrinterColumns"]:
        if column["jsonPath"] == ".metadata.creationTimestamp":
            continue
        node = resolve(schema, column["jsonPath"])
        assert node["type"] == column["type"], column["name"]


@pytest.mark.parametrize("path", ALL_CRDS, ids=lambda path: path.name)
def test_unknown_fields_are_kept_only_in_kopfs_bookkeeping(path: Path) -> None:
    def kept(node: object, where: str) -> list[str]:
        if isinstance(node, dict):
            here = [where] if node.get("x-kubernetes-preserve-unknown-fields") else []
            return here + [found for key, value in node.items() for found in kept(value, f"{where}.{key}")]
        if isinstance(node, list):
            return [found for item in node for found in kept(item, where)]
        return []

    status = schema_of(load(path))["properties"]["status"]
    assert kept(schema_of(load(path)), "") == [".properties.status.properties.kopf"]
    assert status["properties"]["kopf"]["type"] == "object"


@pytest.mark.parametrize("path", ALL_CRDS, ids=lambda path: path.name)
def test_conditions_have_the_metav1_shape(path: Path) -> None:
    conditions = schema_of(load(path))["properties"]["status"]["properties"]["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    item = conditions["items"]
    assert set(item["required"]) == {"type", "status", "lastTransitionTime", "reason", "message"}
    assert item["properties"]["status"]["enum"] == ["True", "False", "Unknown"]


def test_retry_policy_names_and_columns() -> None:
    names = RETRY_POLICY["spec"]["names"]
    assert (names["kind"], names["plural"], names["shortNames"]) == ("RetryPolicy", "retrypolicies", ["rp"])
    (version,) = RETRY_POLICY["spec"]["versions"]
    assert [column["name"] for column in version["additionalPrinterColumns"]] == [
        "Group", "Max Retries", "Synced", "Ready", "Reason", "Age"]


def test_cel_rules_are_in_place() -> None:
    def rules(path: str) -> list[str]:
        return [rule["rule"] for rule in RP_NODES[path].get("x-kubernetes-validations", [])]

    assert rules(".spec.consumerGroup") == ["self == oldSelf", *RESERVED_GROUP_RULES]
    assert rules(".spec.cluster.nameServers") == [NAME_SERVER_PORT_RULE]
    assert rules(".spec.retryQueues") == ["self >= 1"]
    assert rules(".spec.backoff") == ["has(self.customized) != has(self.exponential)"]
    assert rules(".spec.backoff.exponential") == ["duration(self.max) >= duration(self.initial)"]
    messages = [rule["message"] for node in RP_NODES.values() for rule in node.get("x-kubernetes-validations", [])]
    assert all(message.strip() for message in messages)
    assert "silently discards" in RP_NODES[".spec.retryQueues"]["x-kubernetes-validations"][0]["message"]


def test_unspecified_is_not_default() -> None:
    for path in (".spec.maxRetries", ".spec.retryQueues", ".spec.backoff", ".spec.cluster"):
        assert "default" not in RP_NODES[path], path
    assert RP_SCHEMA["properties"]["spec"]["required"] == ["consumerGroup"]


def test_bounds_agree_with_the_domain() -> None:
    group = RP_NODES[".spec.consumerGroup"]
    assert (group["pattern"], group["maxLength"]) == (GROUP_PATTERN, GROUP_MAX_LENGTH)
    assert (RP_NODES[".spec.maxRetries"]["minimum"], RP_NODES[".spec.maxRetries"]["maximum"]) == (0, MAX_RETRIES_LIMIT)
    assert RP_NODES[".spec.retryQueues"]["maximum"] == RETRY_QUEUES_LIMIT
    assert RP_NODES[".spec.backoff.customized.delays"]["maxItems"] == MAX_CUSTOMIZED_DELAYS
    multiplier = RP_NODES[".spec.backoff.exponential.multiplier"]
    assert (multiplier["minimum"], multiplier["maximum"], multiplier["default"]) == (1, MULTIPLIER_LIMIT, 2)
    for path in (".spec.backoff.customized.delays[]", ".spec.backoff.exponential.initial",
                 ".spec.backoff.exponential.max"):
        assert RP_NODES[path]["pattern"] == DURATION_PATTERN, path
    assert RP_NODES[".spec.deletionPolicy"]["enum"] == [policy.value for policy in DeletionPolicy]
    assert RP_NODES[".spec.deletionPolicy"]["default"] == DeletionPolicy.RETAIN.value
    assert RP_NODES[".status.brokers[].state"]["enum"] == [state.value for state in BrokerState]
    assert RP_NODES[".status.ladders[].client"]["enum"] == [client.value for client in ClientProtocol]
    assert RP_NODES[".status.ladders[].source"]["enum"] == [source.value for source in LadderSource]
    assert RP_NODES[".status.ladders[].delaysMillis"]["maxItems"] == MAX_RETRIES_LIMIT + 1


def accepts(parse: Callable[[str], object], text: str) -> bool:
    try:
        parse(text)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("text", ["500ms", "10s", "1m30s", "2h", "0s", "1h0m5s250ms", "1d", "1.5s", "s", "1s1m",
                                  "5mss", "100000h"])
def test_duration_pattern_accepts_what_the_domain_parses(text: str) -> None:
    assert bool(re.fullmatch(DURATION_PATTERN, text)) == accepts(parse_duration, text)


@pytest.mark.parametrize("text", ["ns:9876", "ns-0.rocketmq.svc:9876;10.0.0.7:9876", "a:1;b", "a:1;", ":9876",
                                  "-a:1", "a b:1", "a:123456", "a:0", "a:00000", "a:1", "a:00080", "a:65535",
                                  "a:65536", "a:65540", "a:65600", "a:66000", "a:70000", "a:99999", "a:09999",
                                  "a:9876;b:0", "a:0;b:9876", "a:65536;b:1", "a:6553;b:65535"])
def test_name_server_pattern_and_port_rule_agree_with_the_domain(text: str) -> None:
    """The pattern bounds the shape, the CEL rule the port range (1-65535, as RocketMQ's InetSocketAddress needs).

    CEL's matches() is an unanchored RE2 search; this expression means the same in Python's re.
    """
    node = RP_NODES[".spec.cluster.nameServers"]
    port_rule = node["x-kubernetes-validations"][0]["rule"]
    bad_port = re.fullmatch(r"!self\.matches\('(.*)'\)", port_rule)
    assert bad_port is not None
    admitted = bool(re.fullmatch(node["pattern"], text)) and not re.search(bad_port.group(1), text)
    assert admitted == accepts(parse_name_servers, text)


# RocketMQ's own names (apache/rocketmq at rocketmq-all-4.9.7 and develop, 5.3.4-SNAPSHOT; see the CRD comments):
# MixAll.isSysConsumerGroup is the CID_RMQ_SYS_ prefix; MixAll.PREDEFINE_GROUP_SET (develop) lists these groups,
# plus CID_RMQ_SYS_TRANS, which the prefix covers.
PREDEFINED_GROUPS = ["DEFAULT_CONSUMER", "DEFAULT_PRODUCER", "TOOLS_CONSUMER", "SCHEDULE_CONSUMER",
                     "FILTERSRV_CONSUMER", "__MONITOR_CONSUMER", "CLIENT_INNER_PRODUCER", "SELF_TEST_P_GROUP",
                     "SELF_TEST_C_GROUP", "CID_ONS-HTTP-PROXY", "CID_ONSAPI_PERMISSION", "CID_ONSAPI_OWNER",
                     "CID_ONSAPI_PULL"]
NAME_SERVER_PORT_RULE = ("!self.matches(':0*(0|[7-9][0-9]{4}|6[6-9][0-9]{3}|65[6-9][0-9]{2}|655[4-9][0-9]|6553[6-9])"
                         "(;|$)')")
RESERVED_GROUP_RULES = ["!self.startsWith('CID_RMQ_SYS_')",
                        "!(self in [" + ", ".join(f"'{group}'" for group in PREDEFINED_GROUPS) + "])"]


def quoted_names(rule: str) -> set[str]:
    """The string literals of a CEL rule."""
    return set(re.findall(r"'([^']*)'", rule))


def test_the_reserved_groups_are_rocketmqs() -> None:
    """Every predefined group is a valid name (so only the CEL rule refuses it) and is listed exactly once."""
    rules = [rule["rule"] for rule in RP_NODES[".spec.consumerGroup"]["x-kubernetes-validations"]]
    assert quoted_names(rules[2]) == set(PREDEFINED_GROUPS)
    assert all(re.fullmatch(GROUP_PATTERN, group) for group in PREDEFINED_GROUPS)
    assert quoted_names(rules[1]) == {"CID_RMQ_SYS_"}


@pytest.mark.parametrize("path", ALL_CRDS, ids=lambda path: path.name)
def test_rocketmq_rule_messages_name_their_field(path: Path) -> None:
    """The API server prints a rule's message as is, so each RocketMQ rule's message starts with its field."""
    found = dict(nodes(schema_of(load(path))))
    for field in (".spec.consumerGroup", ".spec.cluster.nameServers", ".spec.redrive.targetTopic"):
        if field not in found:
            continue
        for rule in found[field]["x-kubernetes-validations"]:
            if rule["rule"] != "self == oldSelf":
                assert rule["message"].startswith(f"spec{field.removeprefix('.spec')}"), rule["message"]


@pytest.mark.parametrize(("selector", "ours"), [(references.CLUSTER_PEERINGS_K, peering.CLUSTER_PEERINGS),
                                               (references.NAMESPACED_PEERINGS_K, peering.NAMESPACED_PEERINGS)],
                         ids=["cluster", "namespaced"])
def test_the_shipped_peering_crds_serve_what_kopf_and_the_sweep_look_up(selector: references.Selector,
                                                                        ours: str) -> None:
    assert (selector.group, selector.version, selector.any_name) == (peering.PEERING_GROUP, peering.PEERING_VERSION,
                                                                     ours)
    crd = load(CRDS / f"{ours}.{selector.group}.yaml")
    (version,) = crd["spec"]["versions"]
    assert (crd["spec"]["group"], version["name"], crd["spec"]["names"]["plural"]) == (
        selector.group, selector.version, ours)
    assert crd["spec"]["scope"] == ("Cluster" if selector is references.CLUSTER_PEERINGS_K else "Namespaced")
    # kopf keeps the peers in the status of the object itself, so it must not be pruned
    assert version["schema"]["openAPIV3Schema"]["properties"]["status"]["x-kubernetes-preserve-unknown-fields"]
