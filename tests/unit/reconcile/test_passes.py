"""The pass queue: one pass at a time, later calls folded into the next pass, each caller gets its own results."""

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from rocketmq_retry.domain.effective import effective_view
from rocketmq_retry.domain.spec import parse_spec
from rocketmq_retry.reconcile.apply import Intent, Mode, PolicyResult
from rocketmq_retry.reconcile.passes import PassQueue, Results

NOW = datetime(2026, 1, 2, tzinfo=UTC)


def intent(key: str) -> Intent:
    return Intent(key, parse_spec({"cluster": {"nameServers": "127.0.0.1:9876"}, "consumerGroup": key}), Mode.APPLY)


class Recorder:
    """A pass runner that records each pass; `held`: passes wait until `gate` is set."""

    def __init__(self, *, held: bool = False) -> None:
        self.passes: list[tuple[list[str], datetime]] = []
        self.fresh: list[bool] = []
        self.gate = asyncio.Event()
        if not held:
            self.gate.set()
        self.fail: Exception | None = None

    async def __call__(self, intents: Sequence[Intent], now: datetime, fresh: bool) -> Results:
        self.passes.append(([i.key for i in intents], now))
        self.fresh.append(fresh)
        await self.gate.wait()
        if self.fail is not None:
            raise self.fail
        return {i.key: PolicyResult((), effective_view(i.spec, ()), error=f"pass {len(self.passes)}")
                for i in intents}


async def test_calls_made_while_a_pass_runs_share_the_next_pass_and_get_their_own_results() -> None:
    runner = Recorder(held=True)
    queue = PassQueue(runner, "c")
    first = asyncio.create_task(queue.run([intent("a")], NOW, fresh=False))
    await asyncio.sleep(0)
    later = [asyncio.create_task(queue.run([intent(k)], NOW + timedelta(seconds=n), fresh=k == "c"))
             for n, k in enumerate(["b", "c", "d"])]
    await asyncio.sleep(0)
    runner.gate.set()

    assert (await first).keys() == {"a"}
    answers = await asyncio.gather(*later)

    assert runner.passes == [(["a"], NOW), (["b", "c", "d"], NOW + timedelta(seconds=2))]
    assert runner.fresh == [False, True]  # one caller asking for fresh reads makes its whole pass fresh
    assert [list(answer) for answer in answers] == [["b"], ["c"], ["d"]]
    assert answers[0]["b"].error == "pass 2"


async def test_a_failed_pass_fails_its_callers_only_and_the_queue_goes_on() -> None:
    runner = Recorder()
    runner.fail = RuntimeError("boom")
    queue = PassQueue(runner, "c")

    with pytest.raises(RuntimeError, match="boom"):
        await queue.run([intent("a")], NOW, fresh=False)
    runner.fail = None

    assert (await queue.run([intent("b")], NOW, fresh=False))["b"].error == "pass 2"


async def test_a_cancelled_caller_leaves_the_others_their_results() -> None:
    runner = Recorder(held=True)
    queue = PassQueue(runner, "c")
    gone = asyncio.create_task(queue.run([intent("a")], NOW, fresh=False))
    kept = asyncio.create_task(queue.run([intent("b")], NOW, fresh=False))
    await asyncio.sleep(0)
    gone.cancel()
    runner.gate.set()

    assert (await kept).keys() == {"b"}
    assert gone.cancelled()
    assert runner.passes == [(["a", "b"], NOW)]


async def test_a_window_gathers_calls_that_arrive_just_after_the_first_into_its_pass() -> None:
    runner = Recorder()
    queue = PassQueue(runner, "c", window=0.05)

    async def late(key: str) -> Results:
        await asyncio.sleep(0.01)
        return await queue.run([intent(key)], NOW, fresh=False)

    await asyncio.gather(queue.run([intent("a")], NOW, fresh=False), late("b"), late("c"))

    assert runner.passes == [(["a", "b", "c"], NOW)]


async def test_stopping_the_queue_cancels_every_waiting_caller() -> None:
    runner = Recorder(held=True)
    queue = PassQueue(runner, "c")
    running = asyncio.create_task(queue.run([intent("a")], NOW, fresh=False))
    await asyncio.sleep(0)
    waiting = asyncio.create_task(queue.run([intent("b")], NOW, fresh=False))
    await asyncio.sleep(0)
    worker = next(t for t in asyncio.all_tasks() if t.get_name() == "reconcile passes of c")

    worker.cancel()

    for caller in (running, waiting):
        with pytest.raises(asyncio.CancelledError):
            await caller
