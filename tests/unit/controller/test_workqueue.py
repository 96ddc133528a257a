"""The work queue: one queued entry and one worker per key, delayed adds, and forgetting."""

import asyncio

import pytest

from rocketmq_retry.controller.workqueue import WorkQueue, retry_delay


async def _next(queue: WorkQueue[str]) -> str | None:
    """The next key, or None when nothing is queued within a moment."""
    try:
        return await asyncio.wait_for(queue.get(), timeout=0.05)
    except TimeoutError:
        return None


async def test_a_key_added_twice_is_queued_once_in_order_of_first_add() -> None:
    queue: WorkQueue[str] = WorkQueue()
    for key in ("a", "b", "a"):
        queue.add(key)
    assert [await _next(queue), await _next(queue), await _next(queue)] == ["a", "b", None]


async def test_a_key_added_while_worked_on_is_queued_again_only_when_done() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("a")
    assert await _next(queue) == "a"
    queue.add("a")
    assert await _next(queue) is None  # never handed to a second worker while the first works on it
    queue.done("a")
    assert await _next(queue) == "a"
    queue.done("a")
    assert await _next(queue) is None


async def test_a_waiting_worker_wakes_on_add() -> None:
    queue: WorkQueue[str] = WorkQueue()
    waiting = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    queue.add("a")
    assert await asyncio.wait_for(waiting, timeout=1) == "a"


async def test_a_delayed_add_comes_later_and_an_add_now_replaces_it() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add_after("a", 0.2)
    assert await _next(queue) is None
    assert await asyncio.wait_for(queue.get(), timeout=1) == "a"
    queue.done("a")

    queue.add_after("b", 0.1)
    queue.add("b")
    assert await _next(queue) == "b"
    queue.done("b")
    await asyncio.sleep(0.15)
    assert await _next(queue) is None  # the delayed add was dropped, not added a second time


async def test_forget_drops_a_key_wherever_it_waits() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("queued")
    queue.add_after("delayed", 0.05)
    queue.add("working")
    queue.add("kept")
    queue.forget("queued")
    assert await _next(queue) == "working"
    queue.add("working")  # to be queued again when done
    for key in ("delayed", "working"):
        queue.forget(key)
    queue.done("working")
    await asyncio.sleep(0.1)
    assert [await _next(queue), await _next(queue)] == ["kept", None]
    queue.add("queued")  # a forgotten key can come back
    assert await _next(queue) == "queued"


@pytest.mark.parametrize(("retry", "seconds"), [(0, 5), (1, 10), (2, 20), (5, 160), (6, 300), (50, 300)])
def test_retry_delays_double_up_to_five_minutes(retry: int, seconds: float) -> None:
    assert retry_delay(retry) == seconds
