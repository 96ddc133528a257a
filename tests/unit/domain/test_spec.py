from typing import Any

import pytest

from rocketmq_retry.domain.spec import (
    AclSecretRef,
    ClusterRef,
    CustomizedBackoff,
    DeletionPolicy,
    Endpoint,
    ExponentialBackoff,
    RetryPolicySpec,
    SpecError,
    parse_cluster,
    parse_name_servers,
    parse_spec,
)


def problems_of(raw: object) -> tuple[str, ...]:
    with pytest.raises(SpecError) as caught:
        parse_spec(raw)
    return caught.value.problems


def test_minimal_spec_leaves_everything_unspecified() -> None:
    assert parse_spec({"consumerGroup": "orders"}) == RetryPolicySpec(consumer_group="orders")


def test_full_spec() -> None:
    spec = parse_spec({
        "cluster": {
            "nameServers": "ns-0.rocketmq:9876;10.0.0.7:9876",
            "brokerClusterName": "DefaultCluster",
            "aclSecretRef": {"name": "rocketmq-acl", "secretKeyKey": "sk"},
        },
        "consumerGroup": "GID_orders|%x-1",
        "maxRetries": 3,
        "retryQueues": 2,
        "backoff": {"customized": {"delays": ["500ms", "10s", "1m30s"]}},
        "deletionPolicy": "Reset",
    })
    assert spec == RetryPolicySpec(
        consumer_group="GID_orders|%x-1",
        cluster=ClusterRef(
            (Endpoint("ns-0.rocketmq", 9876), Endpoint("10.0.0.7", 9876)),
            "DefaultCluster",
            AclSecretRef("rocketmq-acl", "accessKey", "sk"),
        ),
        max_retries=3,
        retry_queues=2,
        backoff=CustomizedBackoff((500, 10_000, 90_000)),
        deletion_policy=DeletionPolicy.RESET,
    )


def test_proxies_are_endpoints_outside_the_clusters_identity() -> None:
    cluster = parse_spec({"consumerGroup": "g", "cluster": {"nameServers": "ns:9876",
                                                            "proxies": "proxy-0:8080;proxy-1:8080"}}).cluster
    assert cluster is not None
    assert cluster.proxies == (Endpoint("proxy-0", 8080), Endpoint("proxy-1", 8080))
    assert cluster.key == "*@ns:9876"
    with pytest.raises(SpecError) as refused:
        parse_spec({"consumerGroup": "g", "cluster": {"nameServers": "ns:9876", "proxies": "proxy-0"}})
    assert refused.value.problems == (
        "spec.cluster.proxies: 'proxy-0' is not host:port (proxies are host:port pairs separated by ';')",)


def test_exponential_backoff_multiplier_defaults_to_rocketmq_default() -> None:
    spec = parse_spec({"consumerGroup": "g", "backoff": {"exponential": {"initial": "1s", "max": "1m"}}})
    assert spec.backoff == ExponentialBackoff(1_000, 60_000, 2)


def test_every_problem_is_reported_at_once() -> None:
    problems = problems_of({
        "consumerGroup": "bad group",
        "maxRetries": -1,
        "retryQueues": 0,
        "backoff": {"exponential": {"initial": "1m", "max": "1s", "multiplier": 0}},
        "deletionPolicy": "Delete",
    })
    assert [problem.split(":")[0] for problem in problems] == [
        "spec.consumerGroup", "spec.maxRetries", "spec.retryQueues", "spec.backoff.exponential.multiplier",
        "spec.deletionPolicy",
    ]
    assert "discards them" in problems[2]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ([], "spec: must be an object, not a list"),
        ({}, "spec.consumerGroup: is required"),
        ({"consumerGroup": 7}, "spec.consumerGroup: must be a string, not a number"),
        ({"consumerGroup": "x" * 121}, "at most 120 characters"),
        ({"consumerGroup": "g", "maxRetries": True}, "spec.maxRetries: must be an integer, not a boolean"),
        ({"consumerGroup": "g", "maxRetries": 1001}, "between 0 and 1000"),
        ({"consumerGroup": "g", "retryQueues": 65}, "between 1 and 64"),
        ({"consumerGroup": "g", "retryQueues": "2"}, "must be an integer, not a string"),
        ({"consumerGroup": "g", "backoff": {}}, "exactly one of customized or exponential"),
        ({"consumerGroup": "g", "backoff": {"customized": {"delays": ["1s"]}, "exponential": {}}}, "exactly one"),
        ({"consumerGroup": "g", "backoff": {"customized": {"delays": []}}}, "1 to 256 delays"),
        ({"consumerGroup": "g", "backoff": {"customized": {"delays": ["1s", "1d"]}}}, "delays[1]: '1d' is not"),
        ({"consumerGroup": "g", "backoff": {"customized": {"delays": [5]}}}, "must be a duration string"),
        ({"consumerGroup": "g", "backoff": {"customized": "1s"}}, "customized: must be an object"),
        ({"consumerGroup": "g", "backoff": {"exponential": {"initial": "1m", "max": "1s"}}}, "shorter than initial"),
        ({"consumerGroup": "g", "backoff": {"exponential": {"max": "1s"}}}, "initial: must be a duration string"),
        ({"consumerGroup": "g", "cluster": {"nameServers": "ns:0"}}, "'ns:0' is not host:port"),
        ({"consumerGroup": "g", "cluster": {"nameServers": "ns:9876;"}}, "'' is not host:port"),
        ({"consumerGroup": "g", "cluster": {}}, "nameServers: must be a string, not null"),
        ({"consumerGroup": "g", "cluster": {"nameServers": "a:1", "brokerClusterName": 1}}, "must be a string"),
        ({"consumerGroup": "g", "cluster": {"nameServers": "a:1", "aclSecretRef": {"name": "Bad_Name"}}},
         "is not a Secret name"),
        ({"consumerGroup": "g",
          "cluster": {"nameServers": "a:1", "aclSecretRef": {"name": "s", "accessKeyKey": "a/b"}}},
         "is not a Secret key"),
    ],
)
def test_malformed_specs_give_clear_problems(raw: Any, expected: str) -> None:
    assert expected in "; ".join(problems_of(raw))


def test_spec_error_message_joins_problems() -> None:
    error = SpecError(["a: x", "b: y"])
    assert str(error) == "a: x; b: y"


def test_parse_name_servers_keeps_order() -> None:
    assert parse_name_servers("b:2;a:1") == (Endpoint("b", 2), Endpoint("a", 1))
    assert str(Endpoint("a", 1)) == "a:1"


def test_cluster_key_ignores_order_and_duplicates() -> None:
    one = parse_cluster({"nameServers": "b:2;a:1;a:1", "brokerClusterName": "C"})
    other = parse_cluster({"nameServers": "a:1;b:2", "brokerClusterName": "C"})
    assert one.key == other.key == "C@a:1;b:2"
    assert parse_cluster({"nameServers": "a:1"}).key == "*@a:1"


def test_parse_cluster_reports_its_own_path() -> None:
    with pytest.raises(SpecError, match=r"^defaultCluster.nameServers: "):
        parse_cluster({"nameServers": "nope"}, "defaultCluster")
