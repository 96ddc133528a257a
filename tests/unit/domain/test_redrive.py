"""The redrive's send schedule and progress bookkeeping."""

import itertools
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rocketmq_retry.domain.redrive import SAMPLE_SIZE, Pacer, QueueProgress, RedriveProgress, RedriveScope, RedriveState
from rocketmq_retry.domain.selection import Selector
from rocketmq_retry.remoting.message import MessageExt

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def send_times(pacer: Pacer, count: int, *, start: float = 100.0, cost: float = 0.0,
               stall_at: int | None = None, stall: float = 0.0) -> list[float]:
    """When each of `count` sends goes out, for a sender that waits as told and spends `cost` per send."""
    now, times = start, []
    for index in range(count):
        if index == stall_at:
            now += stall
        now += pacer.delay(now)
        times.append(now)
        now += cost
    return times


def test_sends_are_spaced_at_the_rate() -> None:
    times = send_times(Pacer(200), 1000)
    assert times[0] == 100.0
    assert times[-1] - times[0] == pytest.approx(999 / 200)


@given(rate=st.integers(1, 10000), burst=st.integers(1, 50), cost=st.floats(0, 0.01),
       stall_at=st.integers(0, 300), stall=st.floats(0, 5))
def test_no_window_of_one_second_exceeds_the_rate_plus_the_burst(rate: int, burst: int, cost: float, stall_at: int,
                                                                 stall: float) -> None:
    times = send_times(Pacer(rate, burst=burst), 300, cost=cost, stall_at=stall_at, stall=stall)
    first = 0
    for last, moment in enumerate(times):
        while times[first] <= moment - 1.0:
            first += 1
        assert last - first + 1 <= rate + burst


def test_a_stall_is_made_up_only_by_the_burst() -> None:
    times = send_times(Pacer(10, burst=3), 20, stall_at=10, stall=5.0)
    after = times[10:]
    back_to_back = sum(1 for a, b in itertools.pairwise(after) if b - a < 1e-9)
    assert back_to_back == 2  # three sends at once, then the rate again
    assert after[-1] - after[2] == pytest.approx(7 * 0.1)


def test_rate_and_burst_must_make_sense() -> None:
    with pytest.raises(ValueError, match="positive"):
        Pacer(0)
    with pytest.raises(ValueError, match="burst"):
        Pacer(1, burst=0)


def stored(offset: int, **properties: str) -> MessageExt:
    return MessageExt("%DLQ%g", b"", {"UNIQ_KEY": f"{offset:032X}", **properties}, queue_offset=offset,
                      store_timestamp=int(NOW.timestamp() * 1000) + offset * 1000)


def progress(*queues: QueueProgress, max_messages: int | None = None) -> RedriveProgress:
    return RedriveProgress("r1", 100, NOW, max_messages=max_messages, queues=list(queues))


def test_acknowledgements_count_moves_and_duplicates() -> None:
    queue = QueueProgress("broker-a", 0, start_offset=10, end_offset=20, sent_offset=15)
    run = progress(queue)
    assert run.acknowledged(queue, stored(12)) is True  # already delivered before an interruption
    assert run.acknowledged(queue, stored(15)) is False
    assert (run.moved, run.duplicates, queue.sent_offset, run.remaining) == (1, 1, 16, 4)


def test_remaining_honours_max_messages_and_success() -> None:
    a = QueueProgress("broker-a", 0, 0, 30, 0)
    b = QueueProgress("broker-b", 0, 5, 10, 5)
    run = progress(a, b, max_messages=12)
    assert run.remaining == 12
    for offset in range(10):
        run.acknowledged(a, stored(offset))
    assert (run.quota, run.remaining) == (2, 2)
    run.finish(RedriveState.SUCCEEDED, NOW)
    assert run.remaining == 0
    assert not run.active


def test_status_round_trip() -> None:
    run = progress(QueueProgress("broker-a", 0, 0, 30, 7, blocked="send failed", first_unselected=3),
                   max_messages=12)
    run.target_topic, run.rejected_request_id, run.failed = "replay", "r2", 1
    run.selector = Selector(message_ids=frozenset({"AB" * 16}), tags=frozenset({"t"}), stored_after=NOW)
    run.acknowledged(run.queues[0], stored(7, KEYS="k1 k2", TAGS="t"))
    run.finish(RedriveState.FAILED, NOW, "broker-a#0 stopped at offset 7")
    raw = run.to_json()
    assert raw["remaining"] == 11
    assert raw["selected"] == [{"msgId": f"{7:032X}", "storeTime": "2026-01-02T03:04:12Z", "broker": "broker-a",
                                "queueId": 0, "offset": 7, "keys": "k1 k2", "tags": "t"}]
    assert raw["finishTime"] == "2026-01-02T03:04:05Z"
    assert RedriveProgress.from_json(raw) == run


@pytest.mark.parametrize("raw", [{}, {"requestId": "r", "rate": "fast", "startTime": "2026-01-02T03:04:05Z",
                                       "state": "Running"}, {"requestId": "r", "rate": 1, "state": "Running"}, None])
def test_a_foreign_status_is_not_taken_for_a_run(raw: object) -> None:
    with pytest.raises(ValueError, match=r"redrive|integer"):
        RedriveProgress.from_json(raw)


def test_a_new_runs_stanza_deletes_what_the_last_run_left_in_a_merge_patch() -> None:
    fresh = progress(QueueProgress("broker-a", 0, 5, 30, 5)).to_json()
    assert {key for key, value in fresh.items() if value is None} == {
        "maxMessages", "targetTopic", "selector", "dryRun", "selected", "finishTime", "message",
        "rejectedRequestId"}
    assert progress(QueueProgress("broker-a", 0, 5, 30, 5), max_messages=10).planned == 10


def test_a_status_from_before_scopes_reads_as_a_run_to_the_topic() -> None:
    raw = progress(QueueProgress("broker-a", 0, 0, 3, 0)).to_json()
    del raw["scope"]
    legacy = RedriveProgress.from_json(raw)
    assert (legacy.scope, legacy.sends_to) == (None, RedriveScope.TOPIC)


def test_a_selective_run_commits_only_below_the_first_message_it_left_in_place() -> None:
    queue = QueueProgress("broker-a", 0, 0, 10, 0)
    run = progress(queue)
    run.selector = Selector(tags=frozenset({"wanted"}))
    for offset, tag in enumerate(["wanted", "wanted", "other", "wanted"]):
        message = stored(offset, TAGS=tag)
        if run.select(queue, message):
            run.acknowledged(queue, message)
    assert (run.moved, run.skipped, run.matched, queue.sent_offset, queue.commit_point) == (3, 1, 3, 4, 2)
    assert [entry["offset"] for entry in run.sample] == [0, 1, 3]
    assert run.sample[0] == {"msgId": f"{0:032X}", "storeTime": "2026-01-02T03:04:05Z", "broker": "broker-a",
                             "queueId": 0, "offset": 0, "tags": "wanted"}


def test_a_dry_run_counts_against_max_messages_and_lists_a_bounded_sample() -> None:
    queue = QueueProgress("broker-a", 0, 0, 100, 0)
    run = progress(queue, max_messages=30)
    run.dry_run = True
    for offset in range(30):
        run.counted(queue, stored(offset))
    assert (run.moved, run.matched, run.quota, len(run.sample), queue.sent_offset) == (0, 30, 0, SAMPLE_SIZE, 30)
