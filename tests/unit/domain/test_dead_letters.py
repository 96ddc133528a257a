"""DeadLetterQueue spec parsing, the one-run-at-a-time redrive rule, and the status stanza."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from rocketmq_retry.domain.conditions import Outcome, Reason
from rocketmq_retry.domain.dead_letters import (
    Backlog,
    BrokerBacklog,
    DeadLetterBrokerState,
    DeadLetterQueueSpec,
    DeadLetterView,
    RedriveAction,
    RedrivePlan,
    RedriveSpec,
    backlog_condition,
    backlog_outcome,
    dead_letter_status,
    parse_dead_letter_spec,
    plan_redrive,
)
from rocketmq_retry.domain.redrive import RedriveProgress, RedriveState
from rocketmq_retry.domain.spec import ClusterRef, Endpoint, SpecError

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
READABLE = DeadLetterBrokerState.READABLE


def problems_of(raw: object) -> tuple[str, ...]:
    with pytest.raises(SpecError) as caught:
        parse_dead_letter_spec(raw)
    return caught.value.problems


def test_minimal_and_full_specs() -> None:
    assert parse_dead_letter_spec({"consumerGroup": "orders"}) == DeadLetterQueueSpec("orders")
    spec = parse_dead_letter_spec({
        "cluster": {"nameServers": "ns:9876"}, "consumerGroup": "orders", "readable": True, "alertThreshold": 0,
        "redrive": {"requestId": "r-1", "rate": 200, "maxMessages": 10, "targetTopic": "orders_replay",
                    "cancel": False}})
    assert spec == DeadLetterQueueSpec("orders", ClusterRef((Endpoint("ns", 9876),)), True, 0,
                                       RedriveSpec("r-1", 200, 10, "orders_replay", False))
    assert spec.redrive_group == "orders-redrive"
    assert parse_dead_letter_spec({"consumerGroup": "g", "redrive": {"requestId": "r"}}).redrive == RedriveSpec("r")


def test_every_problem_is_reported_at_once() -> None:
    problems = problems_of({"consumerGroup": "g" * 113, "readable": "yes", "alertThreshold": -1,
                            "redrive": {"requestId": "-x", "rate": 0, "maxMessages": 0, "targetTopic": "%DLQ%g",
                                        "cancel": 1}})
    assert [problem.split(":")[0] for problem in problems] == [
        "spec.consumerGroup", "spec.readable", "spec.alertThreshold", "spec.redrive.requestId", "spec.redrive.rate",
        "spec.redrive.maxMessages", "spec.redrive.targetTopic", "spec.redrive.cancel"]
    assert "at most 112 characters" in problems[0]
    assert "retry or dead-letter topic" in problems[6]


@pytest.mark.parametrize(("raw", "path"), [
    (None, "spec"), ({}, "spec.consumerGroup"), ({"consumerGroup": "g", "redrive": {}}, "spec.redrive.requestId"),
    ({"consumerGroup": "g", "redrive": {"requestId": "r", "rate": 10001}}, "spec.redrive.rate"),
    ({"consumerGroup": "g", "redrive": {"requestId": "r", "targetTopic": "a b"}}, "spec.redrive.targetTopic"),
    ({"consumerGroup": "g", "cluster": {"nameServers": "nope"}}, "spec.cluster.nameServers"),
])
def test_invalid_specs_name_the_field(raw: Any, path: str) -> None:
    assert problems_of(raw)[0].startswith(f"{path}:")


def run(request_id: str = "r1", state: RedriveState = RedriveState.RUNNING,
        rejected: str | None = None) -> RedriveProgress:
    return RedriveProgress(request_id, 100, NOW, state=state, rejected_request_id=rejected)


@pytest.mark.parametrize(("request_", "last", "alive", "plan"), [
    (None, None, False, RedrivePlan(RedriveAction.NONE)),
    (RedriveSpec("r1"), None, False, RedrivePlan(RedriveAction.START)),
    (RedriveSpec("r1", cancel=True), None, False, RedrivePlan(RedriveAction.SKIP)),
    (RedriveSpec("r1"), run(), True, RedrivePlan(RedriveAction.NONE)),
    (RedriveSpec("r1"), run(), False, RedrivePlan(RedriveAction.RESUME)),
    (RedriveSpec("r1", cancel=True), run(), True, RedrivePlan(RedriveAction.CANCEL)),
    (RedriveSpec("r1", cancel=True), run(), False, RedrivePlan(RedriveAction.CANCEL)),
    (None, run(), True, RedrivePlan(RedriveAction.CANCEL)),
    (RedriveSpec("r2"), run(), True, RedrivePlan(RedriveAction.NONE, reject="r2")),
    (RedriveSpec("r2", cancel=True), run(), True, RedrivePlan(RedriveAction.NONE, reject="r2")),
    (RedriveSpec("r2"), run(), False, RedrivePlan(RedriveAction.RESUME, reject="r2")),
    (RedriveSpec("r2"), run(rejected="r2"), True, RedrivePlan(RedriveAction.NONE)),
    (RedriveSpec("r1"), run(state=RedriveState.SUCCEEDED), False, RedrivePlan(RedriveAction.NONE)),
    (RedriveSpec("r2"), run(state=RedriveState.SUCCEEDED, rejected="r2"), False, RedrivePlan(RedriveAction.NONE)),
    (RedriveSpec("r3"), run(state=RedriveState.FAILED, rejected="r2"), False, RedrivePlan(RedriveAction.START)),
    (RedriveSpec("r3"), run(state=RedriveState.CANCELLED), False, RedrivePlan(RedriveAction.START)),
], ids=["nothing", "new", "new-cancelled", "running", "resume-after-restart", "cancel", "cancel-after-restart",
        "stanza-removed", "second-refused", "second-cancelled-refused", "refused-and-resumed", "refused-once",
        "done", "refused-never-starts", "another-after-refusal", "after-cancel"])
def test_plan_redrive(request_: RedriveSpec | None, last: RedriveProgress | None, alive: bool,
                      plan: RedrivePlan) -> None:
    assert plan_redrive(request_, last, alive=alive) == plan


def broker(name: str, depth: int, *, state: DeadLetterBrokerState = READABLE, oldest: datetime | None = None,
           message: str | None = None, hours: int | None = None) -> BrokerBacklog:
    return BrokerBacklog(name, f"{name}:10911", state, 6, 1, depth, depth + 5, oldest, message=message,
                         file_reserved_hours=hours)


FAILED_B = broker("b", 0, state=DeadLetterBrokerState.FAILED, message="timed out")


@pytest.mark.parametrize(("backlog", "expected"), [
    (Backlog((broker("a", 3), broker("b", 4))), ("False", "WithinThreshold")),
    (Backlog((broker("a", 3), broker("b", 8))), ("True", "AboveThreshold")),
    (Backlog((broker("a", 11), FAILED_B)), ("True", "AboveThreshold")),
    (Backlog((broker("a", 3), FAILED_B)), ("Unknown", "DepthIncomplete")),
    (Backlog((), error="name servers down"), ("Unknown", "DepthUnknown")),
])
def test_backlog_high_flips_above_the_threshold(backlog: Backlog, expected: tuple[str, str]) -> None:
    found = backlog_condition(10, backlog)
    assert found is not None
    assert found[:2] == expected
    assert backlog_condition(None, backlog) is None


def test_threshold_zero_alerts_on_the_first_dead_letter() -> None:
    assert backlog_condition(0, Backlog((broker("a", 0),)))[:2] == ("False", "WithinThreshold")
    assert backlog_condition(0, Backlog((broker("a", 1),)))[:2] == ("True", "AboveThreshold")


def test_ready_outcomes() -> None:
    assert backlog_outcome(Backlog((broker("a", 1), broker("b", 2))), readable=True) == Outcome(
        Reason.SYNCED, "dead-letter queue readable and read on all 2 master brokers, 3 dead letter(s) pending")
    assert backlog_outcome(Backlog((broker("a", 1), FAILED_B)), readable=False).reason is Reason.PARTIALLY_APPLIED
    assert backlog_outcome(Backlog((FAILED_B,)), readable=False).reason is Reason.BROKER_UNREACHABLE
    assert backlog_outcome(Backlog(()), readable=False).reason is Reason.BROKER_UNREACHABLE


def view(backlog: Backlog | None, redrive: RedriveProgress | None = None, threshold: int | None = 10,
         request: RedriveSpec | None = None) -> DeadLetterView:
    spec = DeadLetterQueueSpec("orders", alert_threshold=threshold, redrive=request)
    outcome = backlog_outcome(backlog, readable=False) if backlog else Outcome(Reason.INVALID_SPEC, "bad")
    return DeadLetterView(outcome, spec, "%DLQ%orders", backlog, redrive)


def test_status_carries_depth_per_broker_and_in_total() -> None:
    oldest = NOW - timedelta(hours=1)
    backlog = Backlog((broker("a", 3, oldest=oldest, hours=72), broker("b", 8, oldest=NOW, hours=24)))
    status = dead_letter_status(view(backlog), {}, 2, NOW)
    assert (status["depth"], status["storedMessages"], status["oldestDeadLetterTime"]) == (
        11, 21, "2026-01-02T02:04:05Z")
    assert status["earliestRemovalTime"] == "2026-01-03T03:04:05Z"  # b's: younger, but kept a shorter time
    assert (status["topic"], status["redriveGroup"], status["observedGeneration"]) == (
        "%DLQ%orders", "orders-redrive", 2)
    assert status["brokers"][0] == {"name": "a", "address": "a:10911", "state": "Readable", "perm": 6, "queues": 1,
                                    "depth": 3, "storedMessages": 8, "oldestDeadLetterTime": "2026-01-02T02:04:05Z",
                                    "fileReservedHours": 72, "earliestRemovalTime": "2026-01-05T02:04:05Z"}
    types = {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}
    assert types == {"Ready": ("True", "Synced"), "BacklogHigh": ("True", "AboveThreshold"),
                     "DeadLettersExpiring": ("False", "OutsideMargin")}


def test_backlog_high_keeps_its_transition_time_and_goes_with_the_threshold() -> None:
    first = dead_letter_status(view(Backlog((broker("a", 30),))), {}, 1, NOW)
    later = dead_letter_status(view(Backlog((broker("a", 40),))), first, 1, NOW + timedelta(minutes=1))
    high = next(c for c in later["conditions"] if c["type"] == "BacklogHigh")
    assert high["lastTransitionTime"] == "2026-01-02T03:04:05Z"
    gone = dead_letter_status(view(Backlog((broker("a", 40),)), threshold=None), later, 2, NOW)
    assert [c["type"] for c in gone["conditions"]] == ["Ready", "DeadLettersExpiring"]


def test_unreadable_brokers_keep_the_last_depth_and_say_why() -> None:
    status = dead_letter_status(view(Backlog((), error="cannot list the cluster's masters: refused")), {}, 1, NOW)
    assert "depth" not in status
    assert "brokers" not in status
    types = {c["type"]: c["reason"] for c in status["conditions"]}
    assert types == {"Ready": "BrokerUnreachable", "Reconciling": "BrokerUnreachable", "BacklogHigh": "DepthUnknown",
                     "DeadLettersExpiring": "ExpiryUnknown"}


def test_a_refused_request_is_a_condition_while_the_spec_names_it() -> None:
    active = run(rejected="r2")
    status = dead_letter_status(view(Backlog((broker("a", 1),)), active, request=RedriveSpec("r2")), {}, 1, NOW)
    refused = next(c for c in status["conditions"] if c["type"] == "RedriveRejected")
    assert refused["status"] == "True"
    assert "r1 was active" in refused["message"]
    assert status["redrive"]["rejectedRequestId"] == "r2"
    again = dead_letter_status(view(Backlog((broker("a", 1),)), active, request=RedriveSpec("r3")), status, 1, NOW)
    assert "RedriveRejected" not in [c["type"] for c in again["conditions"]]
