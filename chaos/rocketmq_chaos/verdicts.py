"""Verdicts over a journal, pure: were acknowledged messages lost, how long was failover, was the ladder kept.

Every verdict carries the numbers it was judged on and, when it fails, the reasons in words, so a report can
show why; the checker is tested to fail as well as to pass.
"""

import itertools
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Final

from .journal import SEND_OK, DeadLetter, Fault, HandBack, Journal, Receive, Send

FAULT_ACTIONS = frozenset({"kill", "pause", "stop", "wipe"})
RECOVERY_ACTIONS = frozenset({"restart", "resume", "start"})


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (0 < q <= 100); 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


@dataclass(frozen=True)
class Latency:
    count: int
    p50_ms: float
    p99_ms: float
    max_ms: float

    @classmethod
    def of(cls, seconds: Sequence[float]) -> "Latency":
        millis = [s * 1000 for s in seconds]
        return cls(len(millis), percentile(millis, 50), percentile(millis, 99), max(millis, default=0.0))


@dataclass(frozen=True)
class FaultWindow:
    start: float
    end: float | None  # None: not recovered before the journal ended

    def contains(self, t: float) -> bool:
        return self.start <= t and (self.end is None or t <= self.end)


def fault_window(journal: Journal) -> FaultWindow | None:
    """From the first injected fault to the first recovery after it."""
    faults: list[Fault] = sorted(journal.of(Fault), key=lambda f: f.t)
    start = next((f.t for f in faults if f.action in FAULT_ACTIONS), None)
    if start is None:
        return None
    return FaultWindow(start, next((f.t for f in faults if f.action in RECOVERY_ACTIONS and f.t >= start), None))


@dataclass(frozen=True)
class DeliveryVerdict:
    sent: int
    acknowledged: int
    failed_sends: int
    failed_attempts: int
    lost: tuple[str, ...]
    duplicates: int
    failover_window_s: float | None
    latency: Latency
    latency_in_fault: Latency
    latency_outside_fault: Latency
    max_failed_sends: int | None
    # Acknowledged by `store_lost_by` before it was back, and gone with its store (a replaced pod's emptyDir):
    # missing for a reason the run chose, so counted here and not in `lost`.
    lost_with_store: tuple[str, ...] = field(default=())
    store_lost_by: str | None = None
    # Oneway sends that returned (no broker acknowledges them) and those of them that never arrived: lost without
    # the application being told, which no verdict can hold against the run, so they are counted and shown.
    unacknowledged: int = 0
    lost_unacknowledged: tuple[str, ...] = field(default=())
    # Stored, but not as durably as asked (a SYNC_MASTER without its slave): acknowledged sends by the status the
    # application got, every answer by its status (a re-sent send's earlier ones too), and the acknowledged sends
    # with such a status whose message arrived (as every acknowledged one must).
    not_ok_sends: dict[str, int] = field(default_factory=dict)
    not_ok_attempts: dict[str, int] = field(default_factory=dict)
    not_ok_arrived: int = 0
    # retryAnotherBrokerWhenNotStoreOK at work: sends stored more than once by their answers (re-sent after a status
    # other than SEND_OK), and the duplicate first deliveries of their messages, part of `duplicates`.
    resent: int = 0
    resend_duplicates: int = 0
    max_duplicates: int | None = None
    failed_arrived: int = 0  # sends the application saw fail whose message was stored and arrived all the same
    reasons: tuple[str, ...] = field(default=())

    @property
    def passed(self) -> bool:
        return not self.reasons


def judge_delivery(journal: Journal, *, max_failed_sends: int | None = 0, store_lost_by: str | None = None,
                   max_duplicates: int | None = None, allow_failed_but_arrived: bool = False) -> DeliveryVerdict:
    """Acknowledged messages must all arrive (first deliveries); failed sends are allowed up to the expectation
    (None: counted and reported, never a failure). Oneway sends are never acknowledged: those that returned and
    did not arrive are counted in `lost_unacknowledged`, not held against the run.

    An acknowledged send is one the broker stored, whatever its status: SLAVE_NOT_AVAILABLE or FLUSH_SLAVE_TIMEOUT
    say the slave has no copy, not that the master has none, so such a message that never arrives is lost as well.
    Duplicate first deliveries are counted and held against the run only beyond `max_duplicates` (None: never).
    `allow_failed_but_arrived`: a failed send whose message arrived all the same (the client gave up on an answer
    the broker was still waiting to give, as a SYNC_MASTER waits its slaveTimeout on a slave that just died) is
    counted in `failed_arrived`, not against `max_failed_sends`.

    `store_lost_by`: the faulted broker came back without its store, so what it acknowledged until it was back (the
    fault window's recovery) cannot arrive; those messages are counted apart. Every other one must still arrive.
    """
    sends: list[Send] = journal.of(Send)
    firsts = Counter(r.msg_id for r in journal.of(Receive) if r.reconsume_times == 0)
    acknowledged = [s for s in sends if s.acknowledged]
    unacknowledged = [s for s in sends if s.ok and not s.acknowledged]
    window = fault_window(journal)
    missing = [s for s in acknowledged if s.msg_id not in firsts]
    with_store = tuple(sorted(s.msg_id for s in missing if _stored_on_lost_store(s, store_lost_by, window)))
    lost = tuple(sorted(s.msg_id for s in missing if s.msg_id not in with_store))
    failed = sum(not s.ok for s in sends)
    inside = [s.latency for s in sends if window is not None and window.contains(s.t)]
    outside = [s.latency for s in sends if window is None or not window.contains(s.t)]
    duplicates = sum(count - 1 for count in firsts.values())
    resent = [s for s in acknowledged if s.stored_copies > 1]
    failed_arrived = sum(not s.ok and s.msg_id in firsts for s in sends)
    held_failures = failed - failed_arrived if allow_failed_but_arrived else failed
    reasons = []
    if lost:
        reasons.append(f"{len(lost)} acknowledged message(s) never arrived, e.g. {lost[0]}")
    if max_failed_sends is not None and held_failures > max_failed_sends:
        arrived = f"; {failed_arrived} more failed but arrived" if allow_failed_but_arrived and failed_arrived else ""
        reasons.append(f"{held_failures} send(s) failed after all retries (allowed: {max_failed_sends}{arrived})")
    if max_duplicates is not None and duplicates > max_duplicates:
        reasons.append(f"{duplicates} duplicate first deliveries (allowed: {max_duplicates}), e.g. "
                       f"{min(msg_id for msg_id, count in firsts.items() if count > 1)}")
    return DeliveryVerdict(
        sent=len(sends), acknowledged=len(acknowledged), failed_sends=failed,
        failed_attempts=sum(a.error is not None for s in sends for a in s.attempts), lost=lost,
        duplicates=duplicates, failover_window_s=failover_window(sends),
        latency=Latency.of([s.latency for s in sends]), latency_in_fault=Latency.of(inside),
        latency_outside_fault=Latency.of(outside), max_failed_sends=max_failed_sends, lost_with_store=with_store,
        store_lost_by=store_lost_by, unacknowledged=len(unacknowledged),
        lost_unacknowledged=tuple(sorted(s.msg_id for s in unacknowledged if s.msg_id not in firsts)),
        not_ok_sends=_by_status(s.status for s in acknowledged if s.not_ok),
        not_ok_attempts=_by_status(a.status for s in sends for a in s.attempts),
        not_ok_arrived=sum(s.not_ok and s.msg_id in firsts for s in acknowledged), resent=len(resent),
        resend_duplicates=sum(max(0, firsts[s.msg_id] - 1) for s in resent), max_duplicates=max_duplicates,
        failed_arrived=failed_arrived, reasons=tuple(reasons))


def _by_status(statuses: Iterable[str | None]) -> dict[str, int]:
    """How many of each status other than SEND_OK, sorted by name."""
    return dict(sorted(Counter(status for status in statuses if status not in (None, SEND_OK)).items()))


def _stored_on_lost_store(send: Send, store_lost_by: str | None, window: FaultWindow | None) -> bool:
    """Acknowledged by the broker whose store was lost, before it was back from the fault."""
    if store_lost_by is None or window is None or send.broker != store_lost_by:
        return False
    return window.end is None or send.t + send.latency <= window.end


def failover_window(sends: Sequence[Send]) -> float | None:
    """Seconds from the first failed attempt to the first acknowledgement by another broker after it."""
    failures = sorted((a.started, a.broker) for s in sends for a in s.attempts if a.error is not None)
    if not failures:
        return None
    failed_at, failed_broker = failures[0]
    recovered = [s.t + s.latency for s in sends
                 if s.ok and s.broker != failed_broker and s.t + s.latency >= failed_at]
    return min(recovered) - failed_at if recovered else None


def tolerance_ms(expected_ms: float) -> float:
    """How far a redelivery may be from its ladder step: the broker's delay timers tick in whole seconds."""
    return max(1000.0, 0.05 * expected_ms)


@dataclass(frozen=True)
class Step:
    retry: int
    expected_ms: int
    observed_ms: int | None

    @property
    def on_time(self) -> bool:
        return self.observed_ms is not None and abs(self.observed_ms - self.expected_ms) <= tolerance_ms(
            self.expected_ms)


@dataclass(frozen=True)
class MessageLadder:
    msg_id: str
    steps: tuple[Step, ...]
    retries_seen: int  # distinct retries (reconsume times 1..n) delivered
    dead_letters: int
    reasons: tuple[str, ...]
    repeated_retries: int = 0  # a retry stored again: the broker delivered a step it had delivered before
    # Retries past the group's limit: a broker that took a hand-back did not hold the group's retryMaxTimes.
    beyond_limit: int = 0
    reread_retries: int = 0  # a stored retry read again: the consumer's hand-back of it failed, so it took it anew

    @property
    def passed(self) -> bool:
        return not self.reasons


@dataclass(frozen=True)
class LadderVerdict:
    expected_delays_ms: tuple[int, ...]
    messages: tuple[MessageLadder, ...]
    strangers: int  # retries of ids the probe never failed: the message id did not survive the retry
    reasons: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return not self.reasons

    @property
    def lost(self) -> tuple[str, ...]:
        """Failed messages that never reached the dead-letter queue."""
        return tuple(m.msg_id for m in self.messages if m.dead_letters == 0)

    @property
    def extra_dead_letters(self) -> int:
        """Dead letters beyond one per message: a message dead-lettered twice."""
        return sum(max(0, m.dead_letters - 1) for m in self.messages)

    @property
    def repeated_retries(self) -> int:
        return sum(m.repeated_retries for m in self.messages)

    @property
    def reread_retries(self) -> int:
        return sum(m.reread_retries for m in self.messages)

    @property
    def explanations(self) -> tuple[str, ...]:
        """What RocketMQ does that produces the counts a broker's death leaves, where the source says so."""
        notes = []
        if self.repeated_retries:
            notes.append("retries stored twice: a broker persists its delayed-delivery offsets every 10 s "
                         "(flushDelayOffsetInterval) and a slave copies them every 10 s, so a master restarted after "
                         "SIGKILL, or a promoted slave, delivers again the retries it delivered since (rocketmq#2357)")
        if self.reread_retries:
            notes.append("retries read twice: the consumer's hand-back went to a dead master and failed, so it read "
                         "the same retry again once the broker was back")
        if self.extra_dead_letters:
            notes.append("dead-lettered twice: a retry delivered twice climbs twice, so both copies reach the DLQ")
        if self.beyond_limit:
            notes.append("retried past the group's limit: a master that took a hand-back lacked the group and "
                         "auto-created it with retryMaxTimes 16 (autoCreateSubscriptionGroup, on a pull or "
                         "heartbeat) — an elected replica that had not copied the group yet (it copies every 10 s); "
                         "its old master, rejoining as its slave, then copies the 16 too. Nothing restores the "
                         "group's own setting but a new write to the master, which is what the operator does")
        return tuple(notes)

    @property
    def skipped_retries(self) -> int:
        """Ladder steps a message went past without being delivered (the retry was lost, the climb went on)."""
        return sum(len(self.expected_delays_ms) - (m.retries_seen - m.beyond_limit) for m in self.messages
                   if m.dead_letters)

    @property
    def beyond_limit(self) -> int:
        return sum(m.beyond_limit for m in self.messages)


def judge_ladder(journal: Journal, expected_delays_ms: Sequence[int], *, strict: bool = True) -> LadderVerdict:
    """Each failed message: retry n arrives `expected[n-1]` ms after hand-back n-1, exactly len(expected) times,
    then exactly one dead letter, under the same message id.

    Not `strict` (a broker was killed mid-ladder): only that every message reached the DLQ at least once; a
    restarted broker may deliver a step late, twice or not at all, and a message may be dead-lettered twice, which
    the verdict counts (`repeated_retries`, `reread_retries`, `skipped_retries`, `extra_dead_letters`) but does not
    hold against the run. A step is repeated when a second stored copy of it arrives (another store time), and
    re-read when the same stored copy is delivered again.
    """
    handed: dict[str, dict[int, float]] = defaultdict(dict)
    for hand_back in journal.of(HandBack):
        handed[hand_back.msg_id][hand_back.reconsume_times] = hand_back.t
    arrivals: dict[str, dict[int, float]] = defaultdict(dict)
    copies: dict[str, dict[int, set[float]]] = defaultdict(lambda: defaultdict(set))  # store times of each step
    reread: Counter[str] = Counter()
    strangers = 0
    for receive in journal.of(Receive):
        if receive.reconsume_times == 0:
            continue
        if receive.msg_id not in handed:
            strangers += 1
        stored = copies[receive.msg_id][receive.reconsume_times]
        reread[receive.msg_id] += receive.stored_at in stored
        stored.add(receive.stored_at)
        arrivals[receive.msg_id].setdefault(receive.reconsume_times, receive.stored_at)
    dead = Counter(d.msg_id for d in journal.of(DeadLetter))
    messages = tuple(replace(_judge_message(msg_id, handed[msg_id], arrivals[msg_id], dead[msg_id],
                                            expected_delays_ms, strict=strict),
                             repeated_retries=sum(len(times) - 1 for times in copies[msg_id].values()),
                             reread_retries=reread[msg_id])
                     for msg_id in sorted(handed))
    reasons = [f"{m.msg_id}: {reason}" for m in messages for reason in m.reasons]
    if not messages:
        reasons.append("no message was failed on purpose, so no ladder was observed")
    if strangers:
        reasons.append(f"{strangers} retried deliveries carry an id the probe never failed (the id changed)")
    return LadderVerdict(tuple(expected_delays_ms), messages, strangers, tuple(reasons))


def _judge_message(msg_id: str, handed: dict[int, float], arrivals: dict[int, float], dead_letters: int,
                   expected: Sequence[int], *, strict: bool) -> MessageLadder:
    steps = tuple(
        Step(retry, expected_ms, _elapsed_ms(handed.get(retry - 1), arrivals.get(retry)))
        for retry, expected_ms in enumerate(expected, start=1))
    beyond = sum(retry > len(expected) for retry in arrivals)
    if not strict:
        reasons = [] if dead_letters >= 1 else ["never reached the dead-letter queue: lost"]
        if beyond:
            reasons.append(f"retried {beyond} time(s) past the group's limit of {len(expected)}")
        return MessageLadder(msg_id, steps, len(arrivals), dead_letters, tuple(reasons), beyond_limit=beyond)
    reasons = [f"retry {s.retry} came {s.observed_ms} ms after its hand-back, ladder says {s.expected_ms} ms "
               f"(tolerance {tolerance_ms(s.expected_ms):.0f} ms)" if s.observed_ms is not None
               else f"retry {s.retry} never arrived" for s in steps if not s.on_time]
    if len(arrivals) != len(expected):
        reasons.append(f"{len(arrivals)} retries, expected exactly {len(expected)}")
    if dead_letters != 1:
        reasons.append(f"{dead_letters} dead letters, expected exactly 1")
    return MessageLadder(msg_id, steps, len(arrivals), dead_letters, tuple(reasons), beyond_limit=beyond)


def _elapsed_ms(handed_at: float | None, arrived_at: float | None) -> int | None:
    if handed_at is None or arrived_at is None:
        return None
    return round((arrived_at - handed_at) * 1000)


ORDERLY_GAP_S: Final = (0.5, 3.0)  # orderly consumers suspend a failing queue for 1 s (suspendCurrentQueueTimeMillis)


@dataclass(frozen=True)
class ConsumptionVerdict:
    """How a consumer that fails every delivery saw one message: the redeliveries, and why they are wrong."""

    deliveries: int
    gaps_s: tuple[float, ...]
    reasons: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return not self.reasons


def judge_orderly(journal: Journal, topic: str, *, max_reconsume_times: int | None = None) -> ConsumptionVerdict:
    """An orderly consumer retries in place: the same stored copy from `topic` again and again, about 1 s apart,
    with reconsumeTimes counting up by one; nothing goes through the retry topic.

    With the client's `max_reconsume_times` finite, the delivery with reconsumeTimes equal to it is the last: its
    failure sends the message to the DLQ, once (ConsumeMessageOrderlyService.checkReconsumeTimes). Without it (the
    default, Integer.MAX_VALUE for orderly clients) nothing is ever dead-lettered.
    """
    deliveries = sorted(journal.of(Receive), key=lambda r: r.t)
    dead: list[DeadLetter] = journal.of(DeadLetter)
    gaps = tuple(round(later.t - earlier.t, 3) for earlier, later in itertools.pairwise(deliveries))
    reasons = []
    if len(deliveries) < 2:
        reasons.append(f"{len(deliveries)} deliveries: no retry was seen")
    if [r.reconsume_times for r in deliveries] != list(range(len(deliveries))):
        reasons.append(f"reconsumeTimes {[r.reconsume_times for r in deliveries]} do not count up from 0")
    if {r.topic for r in deliveries} - {topic}:
        reasons.append("redelivered through another topic (a send-back), not in place")
    if len({(r.msg_id, r.stored_at) for r in deliveries}) > 1:
        reasons.append("more than one stored copy: the message was sent back")
    low, high = ORDERLY_GAP_S
    if any(not low <= gap <= high for gap in gaps):
        reasons.append(f"redeliveries {list(gaps)} s apart, expected {low}-{high} s")
    if max_reconsume_times is None:
        if dead:
            reasons.append(f"{len(dead)} dead letter(s), though the client sets no limit")
    else:
        if len(deliveries) != max_reconsume_times + 1:
            reasons.append(f"{len(deliveries)} deliveries, expected {max_reconsume_times + 1}: the first and "
                           f"{max_reconsume_times} in place")
        if [d.msg_id for d in dead] != [r.msg_id for r in deliveries[:1]]:
            reasons.append(f"{len(dead)} dead letter(s) of {sorted({d.msg_id for d in dead})}, expected exactly one "
                           f"of the message delivered")
        elif deliveries[-1].t > dead[0].stored_at + ORDERLY_GAP_S[0]:
            reasons.append("delivered again after it was dead-lettered")
    return ConsumptionVerdict(len(deliveries), gaps, tuple(reasons))


def judge_broadcast(journal: Journal, topic: str, *, ended: float, quiet_s: float) -> ConsumptionVerdict:
    """A broadcasting consumer drops a failed message: one delivery, then nothing for at least `quiet_s`."""
    deliveries = sorted(journal.of(Receive), key=lambda r: r.t)
    reasons = []
    if [(r.topic, r.reconsume_times) for r in deliveries] != [(topic, 0)]:
        reasons.append(f"{len(deliveries)} deliveries, expected exactly one first delivery and no retry")
    elif ended - deliveries[0].t < quiet_s:
        reasons.append(f"the run ended {ended - deliveries[0].t:.1f} s after the delivery, too soon to see no retry")
    return ConsumptionVerdict(len(deliveries), (), tuple(reasons))


OVERRUN_SLACK_S: Final = 0.5  # the listener's sleep against the journal's clock
CLEANER_SLACK_S: Final = 5.0  # the cleaner's send-back, the broker's level-3 delay and its timer's tick


@dataclass(frozen=True)
class OverrunVerdict:
    """How one message whose first delivery held the listener beyond consumeTimeout was retried; times in seconds
    after that delivery."""

    cleaner_retry_after_s: float | None  # the retry stored while the listener still ran
    listener_ended_after_s: float | None
    copies: int  # retries with reconsumeTimes 1: each starts a climb of its own
    dead_letters: int
    reasons: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return not self.reasons


def judge_overrun(journal: Journal, *, consume_timeout_s: float, overrun_s: float,
                  late_failure_resent: bool) -> OverrunVerdict:
    """The concurrent push consumer's consumeTimeout, as the client implements it.

    A cleaner runs every consumeTimeout from the consumer's start (ConsumeMessageConcurrentlyService.start) and sends
    back, at delay level 3 whatever the retry count, a message whose delivery began more than consumeTimeout ago
    (ProcessQueue.cleanExpiredMsg), while its listener still runs: the first retry comes between consumeTimeout and
    twice that after the delivery. When the listener then fails, a client before 5.1.0 sends the message back again
    (`late_failure_resent`: processConsumeResult does not look whether the cleaner took it), so two copies climb to
    the DLQ; from 5.1.0 it skips a message no longer in its process queue (rocketmq#5481), and one copy does.
    The listener must have held the delivery its whole `overrun_s`: cut short, its late failure was not seen.
    """
    receives = sorted(journal.of(Receive), key=lambda r: r.t)
    firsts = [r for r in receives if r.reconsume_times == 0]
    if len({r.msg_id for r in receives}) != 1 or len(firsts) != 1:
        return OverrunVerdict(None, None, 0, len(journal.of(DeadLetter)), (
            f"expected one message delivered once first, saw {len(firsts)} first deliveries of "
            f"{len({r.msg_id for r in receives})} message(s)",))
    delivered = firsts[0].t
    ends = [h.t for h in journal.of(HandBack) if h.reconsume_times == 0]
    ended = ends[0] if ends else None
    retries = sorted(r.stored_at for r in receives if r.reconsume_times == 1)
    early = [at for at in retries if ended is None or at < ended]
    late = [at for at in retries if ended is not None and at >= ended]
    dead = len(journal.of(DeadLetter))
    low, high = consume_timeout_s, 2 * consume_timeout_s + CLEANER_SLACK_S
    expected_late = 1 if late_failure_resent else 0
    why_late = ("a client before 5.1.0 sends it back again" if late_failure_resent else
                "from 5.1.0 the client skips a message the cleaner took")
    reasons = []
    if len(early) != 1:
        reasons.append(f"{len(early)} retries while the listener still held the delivery, expected 1 (the "
                       f"consumeTimeout cleaner's)")
    elif not low <= early[0] - delivered <= high:
        reasons.append(f"the cleaner's retry came {early[0] - delivered:.1f} s after the delivery, expected "
                       f"{low:g}-{high:g} s")
    if ended is None:
        reasons.append("the listener never ended within the run")
    elif ended - delivered < overrun_s - OVERRUN_SLACK_S:
        reasons.append(f"the listener was cut short after {ended - delivered:.1f} s of its {overrun_s:g} s hold")
    elif len(late) != expected_late:
        reasons.append(f"{len(late)} retries after the listener failed, expected {expected_late} ({why_late})")
    if dead != 1 + expected_late:
        reasons.append(f"{dead} dead letters, expected {1 + expected_late}: one for each copy")
    return OverrunVerdict(early[0] - delivered if early else None, None if ended is None else ended - delivered,
                          len(retries), dead, tuple(reasons))
