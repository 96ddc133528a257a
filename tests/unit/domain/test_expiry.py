"""DeadLettersExpiring: the earliest removal of a pending dead letter against the margin, and fileReservedTime."""

from datetime import UTC, datetime, timedelta

import pytest

from rocketmq_retry.domain.dead_letters import (
    BrokerBacklog,
    DeadLetterBrokerState,
    DeadLetterQueueSpec,
    parse_dead_letter_spec,
)
from rocketmq_retry.domain.expiry import DEFAULT_EXPIRY_MARGIN_MS, Retention, expiry_condition, file_reserved_hours
from rocketmq_retry.domain.spec import SpecError

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
MARGIN = 12 * 3_600_000


def stored(hours_ago: float, *, kept: int, broker: str = "a") -> Retention:
    """A master whose oldest pending dead letter was stored `hours_ago` and whose files are kept `kept` hours."""
    return Retention(broker, NOW - timedelta(hours=hours_ago), kept)


@pytest.mark.parametrize(("retentions", "expected"), [
    ([stored(1, kept=72)], ("False", "OutsideMargin")),  # 71 h left
    ([stored(60, kept=72)], ("True", "WithinMargin")),  # exactly 12 h left: within
    ([stored(59.99, kept=72)], ("False", "OutsideMargin")),  # 36 s more than the margin
    ([stored(1, kept=1)], ("True", "WithinMargin")),  # due now
    ([stored(80, kept=72)], ("True", "WithinMargin")),  # past: any clean-up may take it
    ([stored(1, kept=72), stored(0, kept=2, broker="b")], ("True", "WithinMargin")),  # the younger but shorter-kept
    ([Retention("a"), Retention("b")], ("False", "NoPendingDeadLetters")),
    ([stored(1, kept=72), Retention("b", unknown="timed out")], ("Unknown", "ExpiryIncomplete")),
    ([stored(70, kept=72), Retention("b", unknown="timed out")], ("True", "WithinMargin")),  # known is enough
    ([Retention("a"), Retention("b", unknown="fileReservedTime is unknown")], ("Unknown", "ExpiryIncomplete")),
    ([], ("Unknown", "ExpiryUnknown")),
])
def test_the_earliest_removal_against_the_margin(retentions: list[Retention], expected: tuple[str, str]) -> None:
    assert expiry_condition(MARGIN, retentions, NOW)[:2] == expected


def test_a_queue_that_could_not_be_read_is_unknown_whatever_the_brokers_say() -> None:
    found = expiry_condition(MARGIN, [stored(70, kept=72)], NOW, error="name servers down")
    assert found == ("Unknown", "ExpiryUnknown", "the dead-letter queue could not be read: name servers down")


def test_messages_say_when_where_and_how_long_in_whole_hours() -> None:
    within = expiry_condition(MARGIN, [stored(62.5, kept=72, broker="broker-b")], NOW)[2]
    assert within.startswith("the oldest pending dead letter on broker-b may be removed from 2026-01-02T12:34:05Z "
                             "on, in 9 h or more, within expiryMargin 12h (fileReservedTime 72 h after its store time)")
    assert "lower bound" in within
    assert "in less than 1 h" in expiry_condition(MARGIN, [stored(71.5, kept=72)], NOW)[2]
    assert "any time now" in expiry_condition(MARGIN, [stored(73, kept=72)], NOW)[2]
    outside = expiry_condition(MARGIN, [stored(1, kept=72)], NOW)[2]
    assert outside == ("the earliest known removal is 2026-01-05T02:04:05Z on a, beyond expiryMargin 12h (the oldest "
                       "pending dead letter there, fileReservedTime 72 h after its store time)")
    unknown = expiry_condition(MARGIN, [stored(1, kept=72), Retention("b", unknown="timed out")], NOW)[2]
    assert unknown == ("cannot tell when dead letters may be removed on b: timed out; the earliest known removal is "
                       "2026-01-05T02:04:05Z on a, beyond expiryMargin 12h")


def test_a_message_stays_the_same_within_the_hour() -> None:
    """The status is written only when it changes: the message must not move with every read."""
    retention = [stored(62.5, kept=72)]
    assert expiry_condition(MARGIN, retention, NOW) == expiry_condition(MARGIN, retention, NOW + timedelta(minutes=20))


def broker(state: DeadLetterBrokerState, depth: int, *, oldest: datetime | None = NOW, hours: int | None = 72,
           message: str | None = None) -> BrokerBacklog:
    return BrokerBacklog("a", "a:10911", state, 6, 1, depth, depth, oldest, message=message, file_reserved_hours=hours)


READABLE, FAILED = DeadLetterBrokerState.READABLE, DeadLetterBrokerState.FAILED


@pytest.mark.parametrize(("backlog", "expected"), [
    (broker(READABLE, 3), Retention("a", NOW, 72)),
    (broker(READABLE, 0, oldest=None), Retention("a")),
    (broker(DeadLetterBrokerState.ABSENT, 0, oldest=None, hours=None), Retention("a")),
    (broker(FAILED, 0, oldest=None, message="a: no answer within 5 s"),
     Retention("a", unknown="a: no answer within 5 s")),
    (broker(READABLE, 3, hours=None, message="a (a:1) broker config: refused"),
     Retention("a", unknown="a (a:1) broker config: refused")),
    (broker(READABLE, 3, oldest=None), Retention(
        "a", unknown="the store time of the oldest pending dead letter could not be read")),
])
def test_each_master_tells_its_removal_or_why_it_cannot(backlog: BrokerBacklog, expected: Retention) -> None:
    assert backlog.retention == expected


def test_a_write_only_topic_cannot_tell_and_says_how_to_fix_it() -> None:
    unknown = broker(DeadLetterBrokerState.NOT_READABLE, 3, oldest=None).retention.unknown
    assert unknown is not None
    assert "readable: true" in unknown


@pytest.mark.parametrize(("config", "hours"), [({"fileReservedTime": "72"}, 72), ({"fileReservedTime": " 1 "}, 1)])
def test_file_reserved_hours_from_the_broker_config(config: dict[str, str], hours: int) -> None:
    assert file_reserved_hours(config) == hours


@pytest.mark.parametrize(("config", "problem"), [
    ({}, "the broker config has no fileReservedTime"),
    ({"fileReservedTime": "72h"}, "fileReservedTime '72h' is not a whole number of hours"),
])
def test_an_unusable_file_reserved_time_says_why(config: dict[str, str], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        file_reserved_hours(config)


def test_the_margin_is_a_spec_duration_with_a_12h_default() -> None:
    assert DEFAULT_EXPIRY_MARGIN_MS == 12 * 3_600_000
    assert parse_dead_letter_spec({"consumerGroup": "g"}).expiry_margin_ms == DEFAULT_EXPIRY_MARGIN_MS
    assert parse_dead_letter_spec({"consumerGroup": "g", "expiryMargin": "1h30m"}) == DeadLetterQueueSpec(
        "g", expiry_margin_ms=5_400_000)
    assert parse_dead_letter_spec({"consumerGroup": "g", "expiryMargin": "0s"}).expiry_margin_ms == 0


@pytest.mark.parametrize(("margin", "problem"), [
    ("12", "spec.expiryMargin: '12' is not a duration"),
    ("1d", "spec.expiryMargin: '1d' is not a duration"),
    (12, "spec.expiryMargin: must be a duration string, not"),
])
def test_an_invalid_margin_names_the_field(margin: object, problem: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_dead_letter_spec({"consumerGroup": "g", "expiryMargin": margin})
    assert caught.value.problems[0].startswith(problem)
