from datetime import UTC, datetime

import pytest

from rocketmq_retry.domain.conflicts import Claim, resolve_ownership
from rocketmq_retry.domain.timestamps import format_timestamp, parse_timestamp

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
T1 = datetime(2024, 5, 1, 12, 1, tzinfo=UTC)


def claim(namespace: str, name: str, created: datetime, group: str = "g", cluster: str = "*@ns:9876") -> Claim:
    return Claim(namespace, name, created, cluster, group)


def test_oldest_policy_owns_the_group() -> None:
    old, new = claim("b", "old", T0), claim("a", "new", T1)
    result = resolve_ownership([new, old])
    assert result["b/old"].owns
    assert result["b/old"].conflict_with is None
    assert not result["a/new"].owns
    assert result["a/new"].conflict_with == "b/old"


def test_ties_go_to_the_smaller_namespace_and_name() -> None:
    result = resolve_ownership([claim("b", "x", T0), claim("a", "z", T0), claim("a", "y", T0)])
    assert [ref for ref, ownership in result.items() if ownership.owns] == ["a/y"]
    assert {ownership.conflict_with for ownership in result.values()} == {None, "a/y"}


def test_other_groups_and_clusters_do_not_conflict() -> None:
    result = resolve_ownership([claim("a", "one", T0), claim("a", "two", T1, group="h"),
                                claim("a", "three", T1, cluster="C@other:9876")])
    assert all(ownership.owns for ownership in result.values())


def test_no_claims() -> None:
    assert resolve_ownership([]) == {}


def test_timestamps_round_trip_in_kubernetes_form() -> None:
    assert parse_timestamp("2024-05-01T12:00:00Z") == T0
    assert parse_timestamp("2024-05-01T14:00:00+02:00") == T0
    assert format_timestamp(T0) == "2024-05-01T12:00:00Z"
    assert format_timestamp(datetime(2024, 5, 1, 12, 0, 0, 999_999, tzinfo=UTC)) == "2024-05-01T12:00:00Z"


def test_naive_timestamps_are_rejected() -> None:
    with pytest.raises(ValueError, match="time zone"):
        parse_timestamp("2024-05-01T12:00:00")
    with pytest.raises(ValueError, match="naive"):
        format_timestamp(datetime(2024, 5, 1))
