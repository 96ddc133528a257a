"""Keys waiting to be reconciled, as client-go's work queue keeps them: each key is queued at most once and worked on
by one worker at a time; a key added while it is worked on is queued again when that work is done.

A burst of watch events for one object then costs one reconcile of its newest version, and no two workers ever
reconcile the same object at once.
"""

import asyncio
from collections import deque
from collections.abc import Hashable
from typing import Generic, TypeVar

Key = TypeVar("Key", bound=Hashable)


def retry_delay(retry: int) -> float:
    """Seconds before retry number `retry` + 1: doubling from 5 s, at most 5 minutes."""
    return float(min(5 * 2 ** min(retry, 6), 300))


class WorkQueue(Generic[Key]):
    def __init__(self) -> None:
        self._queue: deque[Key] = deque()
        self._queued: set[Key] = set()
        self._working: set[Key] = set()
        self._again: set[Key] = set()
        self._timers: dict[Key, asyncio.TimerHandle] = {}
        self._ready = asyncio.Event()

    def add(self, key: Key) -> None:
        """Queue `key` now (a pending delayed add of it is dropped: this one comes first)."""
        self._cancel_timer(key)
        if key in self._working:
            self._again.add(key)
        elif key not in self._queued:
            self._queued.add(key)
            self._queue.append(key)
            self._ready.set()

    def add_after(self, key: Key, delay: float) -> None:
        """Queue `key` in `delay` seconds, replacing an earlier delayed add of it."""
        self._cancel_timer(key)
        self._timers[key] = asyncio.get_running_loop().call_later(delay, self.add, key)

    def forget(self, key: Key) -> None:
        """Drop `key` wherever it waits (queued, delayed, or to be queued again); work under way finishes."""
        self._cancel_timer(key)
        self._again.discard(key)
        self._queued.discard(key)  # its place in the deque is skipped by `get`

    async def get(self) -> Key:
        """The next key, which the caller works on until it calls `done`."""
        while True:
            while not self._queue:
                self._ready.clear()
                await self._ready.wait()
            key = self._queue.popleft()
            if key in self._queued:
                self._queued.discard(key)
                self._working.add(key)
                return key

    def done(self, key: Key) -> None:
        self._working.discard(key)
        if key in self._again:
            self._again.discard(key)
            self.add(key)

    def _cancel_timer(self, key: Key) -> None:
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()
