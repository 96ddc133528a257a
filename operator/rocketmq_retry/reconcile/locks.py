"""Per-group locks, so the handlers and the sweep never read-modify-write the same group at once.

Whole-config writes make a lost update possible when two passes interleave on one group; groups are independent, so
passes for different groups run concurrently. Locks are weakly held and vanish with their last user.
"""

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator, Iterable
from typing import TypeAlias

GroupKey = tuple[str, str]  # (ClusterRef.key, consumer group)


class GroupLocks:
    Holder: TypeAlias = contextlib.AbstractAsyncContextManager[None]

    def __init__(self) -> None:
        self._locks: weakref.WeakValueDictionary[GroupKey, asyncio.Lock] = weakref.WeakValueDictionary()

    @contextlib.asynccontextmanager
    async def hold(self, keys: Iterable[GroupKey]) -> AsyncIterator[None]:
        """Hold the locks of all `keys`, taken in sorted order so that two holders cannot deadlock."""
        locks = []
        for key in sorted(set(keys)):
            lock = self._locks.get(key)
            if lock is None:
                lock = self._locks[key] = asyncio.Lock()
            locks.append(lock)
        async with contextlib.AsyncExitStack() as stack:
            for lock in locks:
                await stack.enter_async_context(lock)
            yield
