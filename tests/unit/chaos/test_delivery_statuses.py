"""The checker on a SYNC_MASTER's answers: a message stored without its slave's copy must still arrive, and the copies
retryAnotherBrokerWhenNotStoreOK stores are counted as its duplicates; it fails runs that break either rule."""

from rich.console import Console

from rocketmq_chaos.journal import Attempt, Journal, Send, parse_lines
from rocketmq_chaos.report import summary
from rocketmq_chaos.verdicts import DeliveryVerdict, judge_delivery

from .journals import delivered, send

NOT_AVAILABLE = "SLAVE_NOT_AVAILABLE"


def answered(t: float, msg_id: str, *answers: tuple[str, str]) -> Send:
    """A sync send answered by each (broker, status) in turn; its result is the last answer's."""
    attempts = tuple(Attempt(broker, t, 0.001, status=status) for broker, status in answers)
    return Send(t, msg_id, True, 0.002 * len(answers), attempts, status=answers[-1][1])


def timed_out(t: float, msg_id: str) -> Send:
    """A send the client gave up on after 3 s: its broker was waiting on a slave that had died."""
    attempt = Attempt("b", t, 3.0, "no response to SEND_MESSAGE_V2 within 3 s")
    return Send(t, msg_id, False, 3.0, (attempt,), "send timeout 3.0 s spent")


def test_sends_stored_without_the_slave_pass_when_they_arrive_and_are_counted_by_status() -> None:
    journal = Journal([answered(1.0, "m1", ("a", "SEND_OK")), answered(2.0, "m2", ("b", NOT_AVAILABLE)),
                       answered(3.0, "m3", ("b", "FLUSH_SLAVE_TIMEOUT")), *delivered("m1", "m2", "m3")])
    verdict = judge_delivery(journal, max_duplicates=0)
    assert verdict.passed, verdict.reasons
    assert verdict.not_ok_sends == {"FLUSH_SLAVE_TIMEOUT": 1, NOT_AVAILABLE: 1}
    assert verdict.not_ok_attempts == verdict.not_ok_sends
    assert (verdict.acknowledged, verdict.not_ok_arrived, verdict.resent, verdict.duplicates) == (3, 2, 0, 0)


def test_a_message_acknowledged_slave_not_available_that_never_arrives_is_lost() -> None:
    journal = Journal([answered(1.0, "m1", ("a", "SEND_OK")), answered(2.0, "m2", ("b", NOT_AVAILABLE)),
                       *delivered("m1")])
    verdict = judge_delivery(journal)
    assert not verdict.passed
    assert verdict.lost == ("m2",)
    assert (verdict.not_ok_sends, verdict.not_ok_arrived) == ({NOT_AVAILABLE: 1}, 0)
    assert verdict.reasons == ("1 acknowledged message(s) never arrived, e.g. m2",)


def test_re_sends_after_a_not_ok_answer_are_counted_as_the_duplicates_they_cause() -> None:
    resent = answered(2.0, "m2", ("b", NOT_AVAILABLE), ("a", "SEND_OK"))
    journal = Journal([answered(1.0, "m1", ("a", "SEND_OK")), resent, *delivered("m1", "m2", "m2")])
    verdict = judge_delivery(journal)
    assert verdict.passed, verdict.reasons
    assert (verdict.resent, verdict.resend_duplicates, verdict.duplicates) == (1, 1, 1)
    assert verdict.not_ok_sends == {}  # the application got SEND_OK from the second broker
    assert verdict.not_ok_attempts == {NOT_AVAILABLE: 1}
    assert resent.stored_copies == 2


def test_duplicates_fail_a_run_whose_plan_expects_none() -> None:
    journal = Journal([answered(1.0, "m1", ("b", NOT_AVAILABLE), ("a", "SEND_OK")), *delivered("m1", "m1")])
    verdict = judge_delivery(journal, max_duplicates=0)
    assert not verdict.passed
    assert verdict.reasons == ("1 duplicate first deliveries (allowed: 0), e.g. m1",)
    assert judge_delivery(journal, max_duplicates=1).passed


def test_a_duplicate_without_a_re_send_is_not_put_on_retry_another_broker() -> None:
    """A client that timed out on a stored attempt and retried elsewhere stored two copies too; its attempts say so."""
    retried = Send(1.0, "m1", True, 3.1, (Attempt("b", 1.0, 3.0, "timeout"), Attempt("a", 4.0, 0.1, status="SEND_OK")),
                   status="SEND_OK")
    verdict = judge_delivery(Journal([retried, *delivered("m1", "m1")]))
    assert (verdict.duplicates, verdict.resent, verdict.resend_duplicates) == (1, 0, 0)


def test_a_failed_send_stored_all_the_same_is_allowed_only_when_the_plan_says_so() -> None:
    journal = Journal([answered(1.0, "m1", ("a", "SEND_OK")), timed_out(2.0, "m2"), *delivered("m1", "m2")])
    strict = judge_delivery(journal)
    assert strict.reasons == ("1 send(s) failed after all retries (allowed: 0)",)
    lenient = judge_delivery(journal, allow_failed_but_arrived=True)
    assert lenient.passed, lenient.reasons
    assert (lenient.failed_sends, lenient.failed_arrived, lenient.lost) == (1, 1, ())


def test_a_failed_send_that_never_arrived_still_fails_when_stored_failures_are_allowed() -> None:
    journal = Journal([timed_out(1.0, "m1"), timed_out(2.0, "m2"), *delivered("m2")])
    verdict = judge_delivery(journal, allow_failed_but_arrived=True)
    assert verdict.reasons == ("1 send(s) failed after all retries (allowed: 0; 1 more failed but arrived)",)


def test_journals_without_statuses_parse_and_count_no_status() -> None:
    old = ('{"kind":"send","t":1.5,"msg_id":"M1","ok":true,"latency":0.002,'
           '"attempts":[{"broker":"broker-a","started":1.5,"latency":0.002,"error":null}],"error":null,"mode":"sync"}')
    (event,) = parse_lines([old])
    assert isinstance(event, Send)
    assert (event.status, event.attempts[0].status, event.not_ok, event.stored_copies) == (None, None, False, 0)
    verdict = judge_delivery(Journal([event, *delivered("M1")]))
    assert verdict.passed
    assert (verdict.not_ok_sends, verdict.not_ok_attempts, verdict.resent) == ({}, {}, 0)


def test_the_official_probes_statuses_parse() -> None:
    line = ('{"kind":"send","t":1.5,"msg_id":"M1","ok":true,"latency":0.004,"attempts":['
            '{"broker":"broker-b","started":1.5,"latency":0.001,"error":null,"status":"SLAVE_NOT_AVAILABLE"},'
            '{"broker":"broker-a","started":1.501,"latency":0.002,"error":null,"status":"SEND_OK"}],'
            '"error":null,"mode":"sync","status":"SEND_OK"}')
    attempts = (Attempt("broker-b", 1.5, 0.001, status=NOT_AVAILABLE), Attempt("broker-a", 1.501, 0.002,
                                                                              status="SEND_OK"))
    assert list(parse_lines([line])) == [Send(1.5, "M1", True, 0.004, attempts, status="SEND_OK")]


def _summary_text(verdict: DeliveryVerdict) -> str:
    console = Console(record=True, width=300)
    console.print(summary({"run": verdict}))
    return console.export_text()


def test_the_summary_shows_the_statuses_only_when_there_were_any() -> None:
    plain = judge_delivery(Journal([send(1.0, "m1", "a"), *delivered("m1")]))
    degraded = judge_delivery(Journal([answered(1.0, "m1", ("b", NOT_AVAILABLE), ("a", "SEND_OK")),
                                       *delivered("m1", "m1")]))
    assert "not SEND_OK" not in _summary_text(plain)
    assert ("answers {'SLAVE_NOT_AVAILABLE': 1}; 1 re-sent to another broker, 1 duplicates of those"
            in _summary_text(degraded))
