"""The redrive engine against an in-memory dead-letter queue and target: commits after acks, failures, resumes."""

import asyncio
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from rocketmq_retry.domain.redrive import QueueProgress, RedriveProgress, RedriveScope, RedriveState
from rocketmq_retry.domain.selection import Selector
from rocketmq_retry.reconcile.redrive import Redrive
from rocketmq_retry.remoting.codes import ResponseCode
from rocketmq_retry.remoting.errors import BrokerError, ConnectionFailed
from rocketmq_retry.remoting.message import MessageExt
from rocketmq_retry.remoting.producer import SendResult
from rocketmq_retry.remoting.pulling import PullResult, PullStatus
from rocketmq_retry.remoting.routing import MessageQueue
from rocketmq_retry.remoting.sending import Message, SendReceipt, SendStatus

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
GROUP = "payments"
TOPIC = f"%DLQ%{GROUP}"


def stored_at(offset: int) -> datetime:
    """Dead letters are stored a minute apart, offset 0 at NOW."""
    return NOW + timedelta(minutes=offset)


def dead_letter(broker: str, offset: int, origin: str | None = "orders") -> MessageExt:
    properties = {"UNIQ_KEY": f"{broker}-{offset}", "KEYS": f"k{offset}", "TAGS": "odd" if offset % 2 else "even"}
    if origin:
        properties["RETRY_TOPIC"] = origin
    return MessageExt(topic=TOPIC, body=f"{broker}/{offset}".encode(), properties=properties, queue_offset=offset,
                      store_timestamp=int(stored_at(offset).timestamp() * 1000))


class FakeDlq:
    """Queues of stored dead letters and the redrive group's committed offsets; every commit is recorded."""

    def __init__(self, stored: dict[str, int], *, no_origin: Sequence[tuple[str, int]] = ()) -> None:
        self.messages = {broker: [dead_letter(broker, o, None if (broker, o) in no_origin else "orders")
                                  for o in range(count)] for broker, count in stored.items()}
        self.committed: dict[str, int] = {}
        self.commits: list[tuple[str, int]] = []
        self.refuse = False

    async def pull(self, queue: MessageQueue, offset: int, *, max_messages: int = 32, suspend: float = 0.0,
                   commit_offset: int | None = None) -> PullResult:
        if self.refuse:
            raise BrokerError(ResponseCode.NO_PERMISSION, "the topic is not readable", 11, "broker")
        stored = self.messages[queue.broker_name]
        found = tuple(stored[offset:offset + max_messages])
        status = PullStatus.FOUND if found else PullStatus.NO_NEW_MSG
        return PullResult(status, offset + len(found), 0, len(stored), found)

    async def committed_offset(self, queue: MessageQueue) -> int | None:
        return self.committed.get(queue.broker_name)

    async def commit(self, queue: MessageQueue, offset: int) -> None:
        self.committed[queue.broker_name] = offset
        self.commits.append((queue.broker_name, offset))


class FakeTarget:
    """Records every send (as stored, before the answer); ids in `failing` are refused; `hook` runs after each."""

    def __init__(self, failing: Sequence[str] = ()) -> None:
        self.sent: list[tuple[str, str, bytes, str]] = []  # topic, id, body, keys
        self.headers: list[tuple[int | None, int | None, str | None]] = []  # reconsume times, limit, RETRY_TOPIC
        self.failing = set(failing)
        self.hook: Callable[[int], None] = lambda count: None

    async def send(self, message: Message, *, reconsume_times: int | None = None,
                   max_reconsume_times: int | None = None, msg_id: str | None = None) -> SendResult:
        assert msg_id is not None
        if msg_id in self.failing:
            raise ConnectionFailed("127.0.0.1:10911", "connect failed: ConnectionRefusedError(111)")
        self.sent.append((message.topic, msg_id, message.body, " ".join(message.keys)))
        self.headers.append((reconsume_times, max_reconsume_times, message.properties.get("RETRY_TOPIC")))
        self.hook(len(self.sent))
        await asyncio.sleep(0)  # the answer is on its way: a cancellation lands here, after the broker stored it
        queue = MessageQueue(message.topic, "broker-a", 0)
        return SendResult(msg_id, SendReceipt(SendStatus.SEND_OK, "offset-id", queue, len(self.sent), None), ())


def progress(stored: dict[str, int], *, max_messages: int | None = None, rate: int = 10000,
             scope: RedriveScope = RedriveScope.TOPIC, selector: Selector | None = None,
             dry_run: bool = False) -> RedriveProgress:
    queues = [QueueProgress(broker, 0, 0, count, 0) for broker, count in stored.items()]
    return RedriveProgress("r1", rate, NOW, max_messages=max_messages, scope=scope, selector=selector or Selector(),
                           dry_run=dry_run, queues=queues)


def engine(dlq: FakeDlq, target: FakeTarget, run: RedriveProgress) -> Redrive:
    return Redrive(dlq, target, GROUP, run, attempts=2, pause=0.0)


async def test_every_pending_message_goes_back_with_its_id_and_offsets_are_committed_after() -> None:
    stored = {"broker-a": 40, "broker-b": 3}
    dlq, target = FakeDlq(stored), FakeTarget()
    run = await engine(dlq, target, progress(stored)).run()
    assert (run.state, run.moved, run.duplicates, run.failed, run.remaining) == (RedriveState.SUCCEEDED, 43, 0, 0, 0)
    assert sorted(msg_id for _, msg_id, _, _ in target.sent) == sorted(
        m.msg_id for messages in dlq.messages.values() for m in messages)
    assert {topic for topic, _, _, _ in target.sent} == {"orders"}
    assert ("orders", "broker-a-7", b"broker-a/7", "k7") in target.sent
    assert dlq.committed == {"broker-a": 40, "broker-b": 3}
    assert dlq.commits == [("broker-a", 32), ("broker-b", 3), ("broker-a", 40)]  # one commit per batch


async def test_the_run_stops_at_the_end_it_was_started_with() -> None:
    dlq, target = FakeDlq({"broker-a": 10}), FakeTarget()
    run = progress({"broker-a": 6})  # four more dead letters arrived after the start
    assert (await engine(dlq, target, run).run()).moved == 6
    assert dlq.committed == {"broker-a": 6}


async def test_max_messages_caps_the_run() -> None:
    stored = {"broker-a": 20, "broker-b": 20}
    dlq, target = FakeDlq(stored), FakeTarget()
    run = await engine(dlq, target, progress(stored, max_messages=25)).run()
    assert (run.state, run.moved, len(target.sent), run.remaining) == (RedriveState.SUCCEEDED, 25, 25, 0)
    assert sum(dlq.committed.values()) == 25


async def test_a_message_that_cannot_be_sent_stops_its_queue_and_stays_pending() -> None:
    stored = {"broker-a": 10, "broker-b": 5}
    dlq, target = FakeDlq(stored), FakeTarget(failing=["broker-a-4"])
    run = await engine(dlq, target, progress(stored)).run()
    assert (run.state, run.moved, run.failed, run.remaining) == (RedriveState.FAILED, 9, 1, 6)
    assert dlq.committed == {"broker-a": 4, "broker-b": 5}  # never past the message that failed
    assert run.queues[0].blocked is not None
    assert "broker-a-4 at offset 4" in run.queues[0].blocked
    assert "connect failed" in (run.message or "")


async def test_a_message_without_origin_blocks_with_the_fix_in_the_message() -> None:
    stored = {"broker-a": 3}
    dlq, target = FakeDlq(stored, no_origin=[("broker-a", 1)]), FakeTarget()
    run = await engine(dlq, target, progress(stored)).run()
    assert (run.state, run.moved, run.failed) == (RedriveState.FAILED, 1, 1)
    assert "targetTopic" in (run.message or "")


async def test_an_unreadable_topic_fails_at_once() -> None:
    dlq, target = FakeDlq({"broker-a": 3}), FakeTarget()
    dlq.refuse = True
    run = await engine(dlq, target, progress({"broker-a": 3})).run()
    assert run.state is RedriveState.FAILED
    assert "pull failed" in (run.message or "")
    assert "NO_PERMISSION" in (run.message or "") or "not readable" in (run.message or "")


async def test_stop_cancels_gracefully_and_commits_what_was_acknowledged() -> None:
    stored = {"broker-a": 100}
    dlq, target = FakeDlq(stored), FakeTarget()
    redrive = engine(dlq, target, progress(stored))
    target.hook = lambda count: redrive.stop() if count == 5 else None
    run = await redrive.run()
    assert (run.state, run.moved, run.remaining) == (RedriveState.CANCELLED, 5, 95)
    assert dlq.committed == {"broker-a": 5}


async def test_an_abrupt_stop_resumes_at_least_once_and_counts_the_duplicates() -> None:
    stored = {"broker-a": 100, "broker-b": 50}
    dlq, target = FakeDlq(stored), FakeTarget()
    run = progress(stored)
    task = asyncio.create_task(engine(dlq, target, run).run())
    # Past broker-a's first commit (32) and inside broker-b's first batch: a crash while the 45th send is answered.
    target.hook = lambda count: task.cancel() if count == 45 else None
    await asyncio.gather(task, return_exceptions=True)
    assert task.cancelled()
    assert dlq.committed == {"broker-a": 32}
    acknowledged = sum(q.sent_offset for q in run.queues)
    assert acknowledged == 44  # the 45th was stored but never acknowledged
    target.hook = lambda count: None

    resumed = await engine(dlq, target, run).run()
    duplicates = acknowledged - 32  # acknowledged, not committed, so sent again
    assert (resumed.state, resumed.moved, resumed.duplicates) == (RedriveState.SUCCEEDED, 150, duplicates)
    delivered = Counter(msg_id for _, msg_id, _, _ in target.sent)
    assert len(delivered) == 150  # none lost
    assert sum(count - 1 for count in delivered.values()) == duplicates + 1  # plus the unacknowledged one


async def test_a_committed_offset_ahead_of_the_status_counts_as_moved() -> None:
    stored = {"broker-a": 10}
    dlq, target = FakeDlq(stored), FakeTarget()
    dlq.committed["broker-a"] = 6  # the previous process committed, then died before writing status
    run = await engine(dlq, target, progress(stored)).run()
    assert (run.moved, run.duplicates, len(target.sent)) == (10, 0, 4)


async def test_scope_group_sends_each_dead_letter_to_the_groups_retry_topic_as_a_first_retry() -> None:
    stored = {"broker-a": 5}
    dlq, target = FakeDlq(stored), FakeTarget()
    run = await engine(dlq, target, progress(stored, scope=RedriveScope.GROUP)).run()
    assert (run.state, run.moved) == (RedriveState.SUCCEEDED, 5)
    assert {topic for topic, _, _, _ in target.sent} == {"%RETRY%payments"}
    assert set(target.headers) == {(0, 1, "orders")}
    assert dlq.committed == {"broker-a": 5}


async def test_a_selector_moves_only_what_it_takes_and_commits_only_up_to_the_first_message_left_in_place() -> None:
    stored = {"broker-a": 10, "broker-b": 4}
    dlq, target = FakeDlq(stored), FakeTarget()
    window = Selector(stored_after=stored_at(2), stored_before=stored_at(6))  # offsets 2..5 on each queue
    run = await engine(dlq, target, progress(stored, selector=window)).run()
    moved = sorted(msg_id for _, msg_id, _, _ in target.sent)
    assert moved == sorted(f"{b}-{o}" for b in stored for o in range(2, 6) if o < stored[b])
    assert (run.state, run.moved, run.matched, run.skipped) == (RedriveState.SUCCEEDED, 6, 6, 8)
    assert "8 left in place by the selector" in (run.message or "")
    assert dlq.committed == {}  # offsets 0 and 1 stay pending, so nothing may be committed past them
    assert [q.first_unselected for q in run.queues] == [0, 0]
    assert [entry["msgId"] for entry in run.sample] == ["broker-a-2", "broker-a-3", "broker-a-4", "broker-a-5",
                                                        "broker-b-2", "broker-b-3"]


async def test_a_selector_that_takes_a_prefix_commits_it() -> None:
    stored = {"broker-a": 10}
    dlq, target = FakeDlq(stored), FakeTarget()
    run = await engine(dlq, target, progress(stored, selector=Selector(stored_before=stored_at(4)))).run()
    assert (run.moved, run.skipped) == (4, 6)
    assert dlq.committed == {"broker-a": 4}  # what a later run starts from: the six it left


async def test_tags_keys_and_ids_select_with_and_between_fields_and_or_within_one() -> None:
    stored = {"broker-a": 10}
    selector = Selector(tags=frozenset({"odd"}), keys=frozenset({"k1", "k2", "k3", "k7"}),
                        message_ids=frozenset({"BROKER-A-3", "BROKER-A-7", "BROKER-A-2"}))
    dlq, target = FakeDlq(stored), FakeTarget()
    await engine(dlq, target, progress(stored, selector=selector)).run()
    assert [msg_id for _, msg_id, _, _ in target.sent] == ["broker-a-3", "broker-a-7"]


async def test_a_dry_run_counts_what_the_run_then_moves_and_moves_and_commits_nothing() -> None:
    stored = {"broker-a": 40, "broker-b": 9}
    selector = Selector(tags=frozenset({"odd"}))
    dlq, target = FakeDlq(stored), FakeTarget()
    dry = await engine(dlq, target, progress(stored, selector=selector, dry_run=True, max_messages=22)).run()
    assert (dry.state, dry.moved, dry.matched, target.sent, dlq.commits) == (RedriveState.SUCCEEDED, 0, 22, [], [])
    assert "dry run: 22 message(s) selected, none moved" in (dry.message or "")
    assert len(dry.sample) == 20
    real = await engine(dlq, target, progress(stored, selector=selector, max_messages=22)).run()
    assert real.moved == len(target.sent) == dry.matched
    assert [entry["msgId"] for entry in real.sample] == [entry["msgId"] for entry in dry.sample]


async def test_a_selector_that_takes_nothing_succeeds_and_says_why() -> None:
    stored = {"broker-a": 3}
    dlq, target = FakeDlq(stored), FakeTarget()
    future = Selector(stored_after=datetime.now(UTC) + timedelta(days=1))
    run = await engine(dlq, target, progress(stored, selector=future)).run()
    assert (run.state, run.moved, target.sent) == (RedriveState.SUCCEEDED, 0, [])
    assert "none of the 3 pending dead letter(s) was selected" in (run.message or "")
    assert "is in the future" in (run.message or "")
    unknown = Selector(message_ids=frozenset({"F" * 32}))
    run = await engine(dlq, target, progress(stored, selector=unknown)).run()
    assert (run.state, run.moved) == (RedriveState.SUCCEEDED, 0)
    assert "1 of 1 message id(s) are not pending (" + "F" * 32 + ")" in (run.message or "")


async def test_an_abrupt_stop_of_a_selective_run_resumes_from_its_recorded_position() -> None:
    stored = {"broker-a": 100}
    dlq, target = FakeDlq(stored), FakeTarget()
    run = progress(stored, scope=RedriveScope.GROUP, selector=Selector(stored_after=stored_at(10)))
    task = asyncio.create_task(engine(dlq, target, run).run())
    target.hook = lambda count: task.cancel() if count == 45 else None
    await asyncio.gather(task, return_exceptions=True)
    assert task.cancelled()
    target.hook = lambda count: None
    resumed = await engine(dlq, target, run).run()
    delivered = Counter(msg_id for _, msg_id, _, _ in target.sent)
    assert set(delivered) == {f"broker-a-{offset}" for offset in range(10, 100)}  # every selected one, at least once
    assert sum(delivered.values()) == 91  # the one stored but unacknowledged when the run died, and no more
    assert (resumed.state, resumed.moved, resumed.duplicates, resumed.matched) == (RedriveState.SUCCEEDED, 90, 0, 90)
    assert dlq.committed == {}
