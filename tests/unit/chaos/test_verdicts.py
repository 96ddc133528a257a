"""The checker judges journals: it passes good runs and fails broken ones, naming why."""

from pathlib import Path

import pytest

from rocketmq_chaos.java_probes import resends_cleaned_messages
from rocketmq_chaos.journal import DeadLetter, Fault, HandBack, Journal, Receive, Send
from rocketmq_chaos.verdicts import (
    fault_window,
    judge_broadcast,
    judge_delivery,
    judge_ladder,
    judge_orderly,
    judge_overrun,
    percentile,
    tolerance_ms,
)

from .journals import LADDER, delivered, ladder_journal, send


def test_a_clean_run_passes_with_its_numbers() -> None:
    journal = Journal([send(1.0, "m1", "a"), send(2.0, "m2", "b"), *delivered("m1", "m2")])
    verdict = judge_delivery(journal)
    assert verdict.passed
    assert (verdict.sent, verdict.acknowledged, verdict.lost, verdict.duplicates) == (2, 2, (), 0)
    assert verdict.failover_window_s is None
    assert verdict.latency.count == 2


def test_a_lost_acknowledged_message_fails_the_run() -> None:
    journal = Journal([send(1.0, "m1", "a"), send(2.0, "m2", "b"), *delivered("m1")])
    verdict = judge_delivery(journal)
    assert not verdict.passed
    assert verdict.lost == ("m2",)
    assert "1 acknowledged message(s) never arrived, e.g. m2" in verdict.reasons


def test_failed_sends_fail_the_run_beyond_what_is_allowed() -> None:
    journal = Journal([send(1.0, "m1", "a"), send(2.0, "m2", "b", ok=False), *delivered("m1")])
    assert judge_delivery(journal).reasons == ("1 send(s) failed after all retries (allowed: 0)",)
    assert judge_delivery(journal, max_failed_sends=1).passed  # a failed send is not lost: it was never acked


def test_oneway_sends_that_vanish_are_counted_not_held_against_the_run() -> None:
    oneway = [Send(1.0, "m1", True, 0.001, mode="oneway"), Send(1.1, "m2", True, 0.001, mode="oneway"),
              Send(1.2, "m3", False, 0.001, error="connect refused", mode="oneway")]
    verdict = judge_delivery(Journal([*oneway, *delivered("m1")]), max_failed_sends=None)
    assert verdict.passed
    assert (verdict.acknowledged, verdict.unacknowledged, verdict.lost_unacknowledged) == (0, 2, ("m2",))
    assert verdict.failed_sends == 1


def test_an_acknowledged_async_send_that_vanishes_fails_the_run() -> None:
    journal = Journal([Send(1.0, "m1", True, 0.001, mode="async"), Send(1.1, "m2", False, 3.0, mode="async")])
    verdict = judge_delivery(journal, max_failed_sends=None)
    assert verdict.reasons == ("1 acknowledged message(s) never arrived, e.g. m1",)
    assert verdict.unacknowledged == 0


def test_duplicates_are_counted_not_failed() -> None:
    journal = Journal([send(1.0, "m1", "a"), *delivered("m1", "m1")])
    verdict = judge_delivery(journal)
    assert (verdict.passed, verdict.duplicates) == (True, 1)


def test_failover_window_runs_from_the_first_failed_attempt_to_the_next_ack_elsewhere() -> None:
    sends = [send(1.0, "m1", "a"), send(5.0, "m2", "b", failed=("a",)), send(6.0, "m3", "b")]
    journal = Journal([Fault(4.9, "kill", "a"), *sends, Fault(30.0, "restart", "a"), *delivered("m1", "m2", "m3")])
    verdict = judge_delivery(journal)
    assert verdict.failover_window_s == pytest.approx(0.003)
    assert verdict.failed_attempts == 1
    assert (verdict.latency_in_fault.count, verdict.latency_outside_fault.count) == (2, 1)
    assert fault_window(journal) is not None


def test_percentiles_use_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 50), percentile(values, 99), percentile([], 99)) == (50.0, 99.0, 0.0)


def test_a_ladder_kept_within_tolerance_passes() -> None:
    verdict = judge_ladder(ladder_journal([1400, 2000, 2100]), LADDER)
    assert verdict.passed, verdict.reasons
    assert [s.observed_ms for s in verdict.messages[0].steps] == [1400, 2000, 2100]


def test_a_ladder_off_by_one_step_fails() -> None:
    default_ladder = (10_000, 30_000, 60_000)  # RocketMQ's first three retries
    verdict = judge_ladder(ladder_journal([30_000, 60_000, 120_000]), default_ladder)  # each one level too late
    assert not verdict.passed
    assert "m1: retry 2 came 60000 ms after its hand-back, ladder says 30000 ms (tolerance 1500 ms)" in verdict.reasons
    assert not judge_ladder(ladder_journal([1000, 2000, 4100]), LADDER).passed  # one step 1.1 s late


def test_one_retry_too_many_or_too_few_fails() -> None:
    assert "m1: 4 retries, expected exactly 3" in judge_ladder(ladder_journal([1000] * 4), LADDER).reasons
    too_few = judge_ladder(ladder_journal([1000, 2000]), LADDER)
    assert "m1: retry 3 never arrived" in too_few.reasons


def test_the_dead_letter_must_arrive_exactly_once() -> None:
    assert "m1: 0 dead letters, expected exactly 1" in judge_ladder(
        ladder_journal([1000, 2000, 3000], dead_letters=0), LADDER).reasons
    assert "m1: 2 dead letters, expected exactly 1" in judge_ladder(
        ladder_journal([1000, 2000, 3000], dead_letters=2), LADDER).reasons


def test_after_a_kill_only_a_lost_message_fails_and_repeats_skips_and_extra_dead_letters_are_counted() -> None:
    repeated = ladder_journal([1000, 2000, 3000], dead_letters=2)
    repeated.record(Receive(30.0, "m1", "%RETRY%G", "a", 2, 29.0))  # retry 2 stored again by the restarted master
    repeated.record(Receive(31.0, "m1", "%RETRY%G", "a", 2, 29.0))  # ... and that copy read twice
    skipped = ladder_journal([1000, 2000], msg_id="m2")  # retry 3 never came, yet the message was dead-lettered
    lost = ladder_journal([1000], dead_letters=0, msg_id="m3")

    survived = judge_ladder(Journal([*repeated.events, *skipped.events]), LADDER, strict=False)
    assert survived.passed, survived.reasons
    assert (survived.lost, survived.extra_dead_letters, survived.repeated_retries, survived.reread_retries,
            survived.skipped_retries) == ((), 1, 1, 1, 1)

    assert [note.split(":")[0] for note in survived.explanations] == [
        "retries stored twice", "retries read twice", "dead-lettered twice"]
    assert judge_ladder(skipped, LADDER, strict=False).explanations == ()

    verdict = judge_ladder(Journal([*repeated.events, *skipped.events, *lost.events]), LADDER, strict=False)
    assert verdict.reasons == ("m3: never reached the dead-letter queue: lost",)
    assert verdict.lost == ("m3",)
    assert verdict.skipped_retries == 1  # a lost message's missing steps are its loss, not skips


def test_after_a_kill_retries_past_the_groups_limit_fail_the_run_and_are_explained() -> None:
    """An elected master that had not copied the group auto-creates it with 16 retries: the message climbs on."""
    climbed = ladder_journal([1000, 2000, 3000, 4000, 5000], msg_id="m1")  # 5 retries, the group says 3
    verdict = judge_ladder(climbed, LADDER, strict=False)
    assert verdict.reasons == ("m1: retried 2 time(s) past the group's limit of 3",)
    assert (verdict.beyond_limit, verdict.skipped_retries, verdict.lost) == (2, 0, ())
    assert any("retryMaxTimes 16" in note for note in verdict.explanations)
    assert judge_ladder(ladder_journal([1000, 2000, 3000]), LADDER, strict=False).beyond_limit == 0


def test_retries_under_a_new_id_are_strangers() -> None:
    journal = ladder_journal([1000, 2000, 3000])
    journal.record(Receive(20.0, "other-id", "%RETRY%G", "a", 1, 20.0))
    verdict = judge_ladder(journal, LADDER)
    assert verdict.strangers == 1
    assert not verdict.passed


def test_no_failed_message_is_no_verdict() -> None:
    assert not judge_ladder(Journal([]), LADDER).passed


def test_tolerance_is_a_second_or_five_percent() -> None:
    assert (tolerance_ms(1000), tolerance_ms(60_000)) == (1000, 3000)


def test_the_journal_round_trips_through_its_file(tmp_path: Path) -> None:
    journal = ladder_journal([1000, 2000, 3000])
    journal.record(send(1.0, "m1", "b", failed=("a",)))
    journal.record(Fault(0.5, "kill", "broker-a"))
    journal.write(tmp_path / "journal.jsonl")
    again = Journal.read(tmp_path / "journal.jsonl")
    assert sorted(again.events, key=repr) == sorted(journal.events, key=repr)


def test_after_a_broker_kill_only_reaching_the_dlq_counts() -> None:
    late_and_doubled = ladder_journal([1000, 6000, 3000], dead_letters=2)
    assert not judge_ladder(late_and_doubled, LADDER).passed
    assert judge_ladder(late_and_doubled, LADDER, strict=False).passed
    lost = judge_ladder(ladder_journal([1000, 2000, 3000], dead_letters=0), LADDER, strict=False)
    assert lost.reasons == ("m1: never reached the dead-letter queue: lost",)


def _deliveries(topic: str, times: list[float], *, stored_at: float = 1.0) -> Journal:
    return Journal([Receive(t, "m1", topic, "a", n, stored_at) for n, t in enumerate(times)])


def test_orderly_retries_must_be_in_place_and_about_a_second_apart() -> None:
    assert judge_orderly(_deliveries("T", [10.0, 11.0, 12.05, 13.1]), "T").passed
    assert judge_orderly(_deliveries("T", [10.0, 11.0, 15.0]), "T").reasons == (
        "redeliveries [1.0, 4.0] s apart, expected 0.5-3.0 s",)
    retried_elsewhere = _deliveries("T", [10.0, 11.0])
    retried_elsewhere.record(Receive(12.0, "m1", "%RETRY%G", "a", 2, 12.0))
    assert not judge_orderly(retried_elsewhere, "T").passed
    assert judge_orderly(_deliveries("T", [10.0]), "T").reasons == ("1 deliveries: no retry was seen",)


def test_an_orderly_consumer_with_a_limit_dead_letters_once_after_it() -> None:
    journal = _deliveries("T", [10.0, 11.0, 12.0, 13.0])
    journal.record(DeadLetter(20.0, "m1", "a", 3, 13.01))
    assert judge_orderly(journal, "T", max_reconsume_times=3).passed
    assert judge_orderly(journal, "T", max_reconsume_times=2).reasons == (
        "4 deliveries, expected 3: the first and 2 in place",)
    assert judge_orderly(journal, "T").reasons == ("1 dead letter(s), though the client sets no limit",)
    never_dead = _deliveries("T", [10.0, 11.0, 12.0, 13.0])
    assert judge_orderly(never_dead, "T", max_reconsume_times=3).reasons == (
        "0 dead letter(s) of [], expected exactly one of the message delivered",)
    delivered_after = _deliveries("T", [10.0, 11.0, 12.0, 13.0])
    delivered_after.record(DeadLetter(20.0, "m1", "a", 3, 11.5))
    assert judge_orderly(delivered_after, "T", max_reconsume_times=3).reasons == (
        "delivered again after it was dead-lettered",)


def test_broadcast_must_deliver_once_and_then_stay_quiet() -> None:
    assert judge_broadcast(_deliveries("T", [10.0]), "T", ended=16.0, quiet_s=5.0).passed
    assert not judge_broadcast(_deliveries("T", [10.0, 11.0]), "T", ended=16.0, quiet_s=5.0).passed
    assert not judge_broadcast(_deliveries("T", [10.0]), "T", ended=12.0, quiet_s=5.0).passed


def _overrun(*, cleaner_at: float | None = 125.0, ended_at: float | None = 145.0, late_copies: int = 1,
             dead_letters: int = 2) -> Journal:
    """One message first delivered at 10 s; the cleaner's retry stored at `cleaner_at`, the listener's end."""
    events: list[object] = [Receive(10.0, "m1", "T", "a", 0, 9.9)]
    if cleaner_at is not None:
        events.append(Receive(cleaner_at + 0.1, "m1", "%RETRY%G", "a", 1, cleaner_at))
    if ended_at is not None:
        events.append(HandBack(ended_at, "m1", 0))
        events += [Receive(ended_at + 1.1 + n, "m1", "%RETRY%G", "a", 1, ended_at + 1 + n) for n in range(late_copies)]
    events += [DeadLetter(200.0, "m1", "a", 2, 199.0)] * dead_letters
    return Journal(events)  # type: ignore[arg-type]


def _judged(journal: Journal, *, resent: bool) -> tuple[str, ...]:
    return judge_overrun(journal, consume_timeout_s=60, overrun_s=135, late_failure_resent=resent).reasons


def test_an_overrun_is_retried_by_the_cleaner_and_before_5_1_again_by_the_late_failure() -> None:
    verdict = judge_overrun(_overrun(), consume_timeout_s=60, overrun_s=135, late_failure_resent=True)
    assert verdict.passed, verdict.reasons
    assert (verdict.cleaner_retry_after_s, verdict.listener_ended_after_s, verdict.copies) == (115.0, 135.0, 2)
    assert _judged(_overrun(late_copies=0, dead_letters=1), resent=False) == ()


def test_an_overrun_judged_against_what_the_client_does_fails_otherwise() -> None:
    assert _judged(_overrun(cleaner_at=None), resent=True)[0] == (
        "0 retries while the listener still held the delivery, expected 1 (the consumeTimeout cleaner's)")
    assert _judged(_overrun(cleaner_at=40.0), resent=True) == (
        "the cleaner's retry came 30.0 s after the delivery, expected 60-125 s",)
    assert _judged(_overrun(late_copies=0, dead_letters=1), resent=True) == (
        "0 retries after the listener failed, expected 1 (a client before 5.1.0 sends it back again)",
        "1 dead letters, expected 2: one for each copy")
    assert _judged(_overrun(), resent=False) == (
        "1 retries after the listener failed, expected 0 (from 5.1.0 the client skips a message the cleaner took)",
        "2 dead letters, expected 1: one for each copy")
    assert "the listener never ended within the run" in _judged(_overrun(ended_at=None), resent=True)
    assert _judged(_overrun(ended_at=130.0, late_copies=0, dead_letters=1), resent=False) == (
        "the listener was cut short after 120.0 s of its 135 s hold",)
    two_messages = _overrun()
    two_messages.record(Receive(11.0, "m2", "T", "a", 0, 10.9))
    assert _judged(two_messages, resent=True)


def test_the_cleaned_message_check_came_with_5_1() -> None:
    assert [resends_cleaned_messages(v) for v in ("4.9.7", "5.0.0", "5.1.0", "5.5.0")] == [True, True, False, False]
