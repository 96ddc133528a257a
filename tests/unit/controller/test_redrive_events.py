"""The Events a redrive's status changes raise: what a run set out to do, and a change to a started run refused."""

from datetime import UTC, datetime

from rocketmq_retry.controller.dead_letters import dead_letter_events
from rocketmq_retry.domain.dead_letters import parse_dead_letter_spec, rejection_condition
from rocketmq_retry.domain.redrive import QueueProgress
from rocketmq_retry.domain.selection import Selector

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def started(**redrive: object) -> dict[str, object]:
    spec = parse_dead_letter_spec({"consumerGroup": "g", "redrive": {"requestId": "r1", **redrive}})
    assert spec.redrive is not None
    run = spec.redrive.start(NOW)
    run.queues = [QueueProgress("broker-a", 0, 10, 40, 10)]
    return {"redrive": run.to_json()}


def messages(status: dict[str, object]) -> dict[str, str]:
    return {event.reason: event.message for event in dead_letter_events({}, status, [], "%DLQ%g")}


def test_a_started_run_says_where_it_sends_what_it_takes_and_how_fast() -> None:
    assert messages(started(rate=50))["RedriveStarted"] == (
        "redrive r1 to the failing group alone started: 30 message(s) pending at up to 50/s")
    assert messages(started(scope="Topic", selector={"tags": ["a", "b"]}))["RedriveStarted"] == (
        "redrive r1 to the topic started: 30 message(s) pending, taking tags a, b at up to 100/s")
    assert messages(started(dryRun=True, maxMessages=5))["RedriveStarted"] == (
        "dry run r1 started: 5 message(s) pending")


def test_a_change_to_a_started_run_raises_redrive_rejected() -> None:
    spec = parse_dead_letter_spec({"consumerGroup": "g", "redrive": {"requestId": "r1"}})
    assert spec.redrive is not None
    run = spec.redrive.start(NOW)
    run.selector = Selector(tags=frozenset({"a"}))
    found = rejection_condition(spec.redrive, run)
    assert found is not None
    status = {"conditions": [{"type": "RedriveRejected", "status": found[0], "reason": found[1],
                              "message": found[2]}]}
    assert "started with other parameters" in messages(status)["RedriveRejected"]
