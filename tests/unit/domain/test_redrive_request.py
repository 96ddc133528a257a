"""A redrive request as the spec states it: scope, selector and dry run, their errors, and changes to a started run."""

from datetime import UTC, datetime

import pytest

from rocketmq_retry.domain.dead_letters import RedriveSpec, parse_dead_letter_spec, rejection_condition
from rocketmq_retry.domain.redrive import RedriveProgress, RedriveScope
from rocketmq_retry.domain.selection import Selector
from rocketmq_retry.domain.spec import SpecError

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
ID = "7F00000100012A9F0000000000000001"


def request(**redrive: object) -> RedriveSpec:
    spec = parse_dead_letter_spec({"consumerGroup": "payments", "redrive": {"requestId": "r1", **redrive}})
    assert spec.redrive is not None
    return spec.redrive


def test_a_new_request_goes_to_the_failing_group_takes_everything_and_moves() -> None:
    assert (request().scope, request().selector, request().dry_run) == (RedriveScope.GROUP, Selector(), False)
    assert request().selector.everything


def test_scope_selector_and_dry_run_are_read() -> None:
    read = request(scope="Topic", dryRun=True, selector={
        "messageIds": [ID.lower()], "tags": ["created"], "keys": ["order-17"],
        "storedAfter": "2026-01-01T00:00:00Z", "storedBefore": "2026-01-02T00:00:00+01:00"})
    assert (read.scope, read.dry_run) == (RedriveScope.TOPIC, True)
    assert read.selector == Selector(frozenset({ID}), frozenset({"created"}), frozenset({"order-17"}),
                                     datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, 23, tzinfo=UTC))


@pytest.mark.parametrize(("redrive", "problem"), [
    ({"scope": "Everyone"}, "spec.redrive.scope: 'Everyone' is not a scope"),
    ({"dryRun": "yes"}, "spec.redrive.dryRun: must be a boolean"),
    ({"selector": {"messageIds": ["not-an-id"]}}, "spec.redrive.selector.messageIds[0]: 'not-an-id' is not a RocketMQ"),
    ({"selector": {"tags": "created"}}, "spec.redrive.selector.tags: must be a list"),
    ({"selector": {"keys": [""]}}, "spec.redrive.selector.keys: must be a list of non-empty strings"),
    ({"selector": {"storedAfter": "yesterday"}}, "spec.redrive.selector.storedAfter: 'yesterday' is not an RFC 3339"),
    ({"selector": {"storedAfter": "2026-01-02T00:00:00"}}, "storedAfter: '2026-01-02T00:00:00' is not an RFC 3339"),
    ({"selector": {"storedAfter": "2026-01-02T00:00:00Z", "storedBefore": "2026-01-02T00:00:00Z"}},
     "spec.redrive.selector.storedBefore: 2026-01-02T00:00:00Z is not after storedAfter"),
    ({"selector": {"tags": ["t"] * 101}}, "spec.redrive.selector.tags: 101 values; at most 100"),
])
def test_a_bad_request_is_refused_naming_the_field(redrive: dict[str, object], problem: str) -> None:
    with pytest.raises(SpecError) as refused:
        request(**redrive)
    assert problem in str(refused.value)


def test_every_selector_problem_is_reported_at_once() -> None:
    with pytest.raises(SpecError) as refused:
        request(scope="x", selector={"tags": 1, "storedBefore": "soon"})
    assert all(field in str(refused.value) for field in ("scope", "selector.tags", "selector.storedBefore"))


def run_of(spec: RedriveSpec) -> RedriveProgress:
    return spec.start(NOW)


def test_changing_a_started_run_is_refused_until_the_spec_is_back_or_names_a_new_run() -> None:
    started = run_of(request(selector={"tags": ["a"]}))
    assert rejection_condition(request(selector={"tags": ["a"]}), started) is None
    assert rejection_condition(request(selector={"tags": ["a"]}, cancel=True), started) is None  # cancel is no change
    for changed in (request(selector={"tags": ["b"]}), request(selector={"tags": ["a"]}, scope="Topic"),
                    request(selector={"tags": ["a"]}, rate=5), request(selector={"tags": ["a"]}, dryRun=True)):
        found = rejection_condition(changed, started)
        assert found is not None
        assert found[:2] == ("True", "RunChanged")
        assert "set a new requestId" in found[2]
    assert rejection_condition(RedriveSpec("r2", selector=Selector(tags=frozenset({"b"}))), started) is None


def test_a_run_recorded_before_scopes_is_not_taken_for_changed() -> None:
    legacy = run_of(request())
    legacy.scope = None
    assert rejection_condition(request(), legacy) is None
    assert rejection_condition(request(rate=7), legacy) is not None
