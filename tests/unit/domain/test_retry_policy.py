import pytest

from rocketmq_retry.domain.broker import DEFAULT_CUSTOMIZED_NEXT_MS
from rocketmq_retry.domain.jsontypes import JsonObject
from rocketmq_retry.domain.retry_policy import (
    StoredRetryPolicy,
    group_retry_policy_json,
    grpc_backoff,
    read_group_retry_policy,
    same_group_retry_policy,
)
from rocketmq_retry.domain.spec import Backoff, CustomizedBackoff, ExponentialBackoff


def test_json_spells_out_the_selected_sub_object() -> None:
    assert group_retry_policy_json(CustomizedBackoff((1_000, 2_000))) == {
        "type": "CUSTOMIZED", "customizedRetryPolicy": {"next": [1_000, 2_000]},
    }
    assert group_retry_policy_json(ExponentialBackoff(1_000, 60_000, 3)) == {
        "type": "EXPONENTIAL", "exponentialRetryPolicy": {"initial": 1_000, "max": 60_000, "multiplier": 3},
    }


@pytest.mark.parametrize("backoff", [CustomizedBackoff((5, 6, 7)), ExponentialBackoff(10, 20, 4)])
def test_grpc_backoff_reads_back_what_the_operator_writes(backoff: CustomizedBackoff | ExponentialBackoff) -> None:
    assert grpc_backoff(group_retry_policy_json(backoff)) == backoff


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, CustomizedBackoff(DEFAULT_CUSTOMIZED_NEXT_MS)),  # group without the field (never on 5.x, but safe)
        ({"type": "CUSTOMIZED"}, CustomizedBackoff(DEFAULT_CUSTOMIZED_NEXT_MS)),
        ({}, CustomizedBackoff(DEFAULT_CUSTOMIZED_NEXT_MS)),
        ({"type": "CUSTOMIZED", "customizedRetryPolicy": {}}, CustomizedBackoff(DEFAULT_CUSTOMIZED_NEXT_MS)),
        # GrpcClientSettingsManager gives gRPC clients a default *exponential* policy for a null sub-object.
        ({"type": "EXPONENTIAL"}, ExponentialBackoff(5_000, 7_200_000, 2)),
        ({"type": "EXPONENTIAL", "exponentialRetryPolicy": {"initial": 100}}, ExponentialBackoff(100, 7_200_000, 2)),
        ({"type": "EXPONENTIAL", "customizedRetryPolicy": {"next": [1]}}, ExponentialBackoff(5_000, 7_200_000, 2)),
    ],
)
def test_grpc_backoff_applies_the_proxy_defaults(raw: object, expected: object) -> None:
    assert grpc_backoff(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        {"type": "CUSTOMIZED", "customizedRetryPolicy": {"next": []}},
        {"type": "CUSTOMIZED", "customizedRetryPolicy": {"next": [1, "2"]}},
        {"type": "CUSTOMIZED", "customizedRetryPolicy": {"next": 5}},
        {"type": "EXPONENTIAL", "exponentialRetryPolicy": {"initial": True}},
    ],
)
def test_grpc_backoff_rejects_unreadable_policies(raw: JsonObject) -> None:
    with pytest.raises(ValueError, match="groupRetryPolicy"):
        grpc_backoff(raw)


def test_policies_compare_by_type_and_selected_sub_object() -> None:
    exponential: JsonObject = {"type": "EXPONENTIAL",
                               "exponentialRetryPolicy": {"initial": 1, "max": 2, "multiplier": 2}}
    stale_customized: JsonObject = {**exponential, "customizedRetryPolicy": {"next": [9]}}
    reordered: JsonObject = {"exponentialRetryPolicy": {"multiplier": 2, "max": 2, "initial": 1, "x": 0},
                             "type": "EXPONENTIAL"}
    assert same_group_retry_policy(stale_customized, exponential)
    assert same_group_retry_policy(reordered, exponential)
    assert not same_group_retry_policy({"type": "CUSTOMIZED"}, exponential)
    assert not same_group_retry_policy({"type": "EXPONENTIAL"}, exponential)
    assert not same_group_retry_policy(
        {"type": "EXPONENTIAL", "exponentialRetryPolicy": {"initial": 1, "max": 3, "multiplier": 2}}, exponential)


def test_explicit_default_ladder_differs_from_a_null_sub_object() -> None:
    # Semantically the same for gRPC clients, but the operator writes what the spec says and keeps it written.
    explicit = group_retry_policy_json(CustomizedBackoff(DEFAULT_CUSTOMIZED_NEXT_MS))
    assert not same_group_retry_policy({"type": "CUSTOMIZED"}, explicit)
    assert same_group_retry_policy({"type": "CUSTOMIZED"}, {"type": "CUSTOMIZED"})


def test_missing_policy_compares_by_value() -> None:
    assert not same_group_retry_policy(None, {"type": "CUSTOMIZED"})
    assert same_group_retry_policy(None, None)


# The one reader of a stored groupRetryPolicy: lenient, never raises, and says what is odd.

_DEFAULT_LADDER = CustomizedBackoff(DEFAULT_CUSTOMIZED_NEXT_MS)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, _DEFAULT_LADDER),
        ({"type": "CUSTOMIZED"}, _DEFAULT_LADDER),
        ({"type": None}, _DEFAULT_LADDER),
        ({"type": "CUSTOMIZED", "customizedRetryPolicy": None}, _DEFAULT_LADDER),
        ({"type": "CUSTOMIZED", "customizedRetryPolicy": {"next": None}}, _DEFAULT_LADDER),
        ({"type": "CUSTOMIZED", "customizedRetryPolicy": {"next": [7], "later": 1}, "x": {}}, CustomizedBackoff((7,))),
        ({"type": "EXPONENTIAL", "exponentialRetryPolicy": None}, ExponentialBackoff(5_000, 7_200_000, 2)),
        ({"type": "EXPONENTIAL", "exponentialRetryPolicy": {"max": None, "multiplier": 3}},
         ExponentialBackoff(5_000, 7_200_000, 3)),
    ],
)
def test_bodies_rocketmq_writes_read_without_a_problem(raw: object, expected: Backoff) -> None:
    assert read_group_retry_policy(raw) == StoredRetryPolicy(expected)


@pytest.mark.parametrize(
    ("raw", "backoff", "problem"),
    [
        # unknown or odd type: the proxy reads everything but EXPONENTIAL as CUSTOMIZED
        ({"type": "FIBONACCI"}, _DEFAULT_LADDER, "'FIBONACCI' is neither"),
        ({"type": "exponential", "customizedRetryPolicy": {"next": [3]}}, CustomizedBackoff((3,)), "'exponential'"),
        ({"type": 1}, _DEFAULT_LADDER, "type 1 is neither"),
        ({"type": ["EXPONENTIAL"]}, _DEFAULT_LADDER, "is neither"),
        # malformed JSON shapes
        ([], None, "not a JSON object"),
        ("CUSTOMIZED", None, "not a JSON object"),
        ({"type": "CUSTOMIZED", "customizedRetryPolicy": [1_000]}, None, "customizedRetryPolicy is not a JSON object"),
        ({"type": "EXPONENTIAL", "exponentialRetryPolicy": "5s"}, None, "exponentialRetryPolicy is not a JSON object"),
        # missing or empty fields clients cannot use
        ({"type": "CUSTOMIZED", "customizedRetryPolicy": {"next": []}}, None, "non-empty list"),
        # wrong types
        ({"customizedRetryPolicy": {"next": 5}}, None, "next is not"),
        ({"customizedRetryPolicy": {"next": [1, "2"]}}, None, "next is not"),
        ({"customizedRetryPolicy": {"next": [1, 2.5]}}, None, "next is not"),
        ({"customizedRetryPolicy": {"next": [True]}}, None, "next is not"),
        ({"customizedRetryPolicy": {"next": [1, None]}}, None, "next is not"),
        ({"type": "EXPONENTIAL", "exponentialRetryPolicy": {"initial": "1000"}}, None, "initial is not"),
        ({"type": "EXPONENTIAL", "exponentialRetryPolicy": {"max": 1.5}}, None, "max is not"),
        ({"type": "EXPONENTIAL", "exponentialRetryPolicy": {"multiplier": False}}, None, "multiplier is not"),
        # an unknown type with a malformed customized sub-object reports the sub-object
        ({"type": "LINEAR", "customizedRetryPolicy": {"next": {}}}, None, "next is not"),
    ],
)
def test_odd_bodies_are_read_with_a_problem_instead_of_raising(raw: object, backoff: object, problem: str) -> None:
    read = read_group_retry_policy(raw)
    assert read.backoff == backoff
    assert read.problem is not None
    assert problem in read.problem
    assert read.problem.startswith("groupRetryPolicy")


def test_grpc_backoff_raises_the_problem_only_when_no_backoff_follows() -> None:
    assert grpc_backoff({"type": "FIBONACCI"}) == _DEFAULT_LADDER
    with pytest.raises(ValueError, match="not a JSON object"):
        grpc_backoff([])
