"""Status writes and Events behind the passes, so that a pass's slot is free for the next pass while the API server
takes them.

A broker that lost its store changes the status of every policy on it: at 10,000 policies that is 10,000 merge
patches, a minute on a small machine. Were they part of the pass, the pass that puts the groups back would wait for
them. So a pass hands its reports here and ends; the status memory takes each new status at once (the next pass
starts from what is being written), and writers patch `at_once` objects at a time, each object's writes in order,
the newest status of an object folded into one still waiting (merge patches compose). A refused write makes the
memory forget the object and hands it back to the loop to pass again.

Events come after statuses: they are posted, `at_once` at a time, only while no status write is waiting or under
way, stamped with the time their pass reported them. The status is what Ready means and what GitOps tools read; in a
burst the API server is the bottleneck, and an Event per new policy would take a third of its writes. So a burst's
Events follow its statuses rather than delay them. A refused Event is only logged: the status, which it repeats, is
what counts.
"""

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from rocketmq_retry.controller.records import PolicyRecord
from rocketmq_retry.controller.statuses import PolicyEvent, status_changed
from rocketmq_retry.domain.jsontypes import JsonObject

log = logging.getLogger(__name__)

Key = tuple[str, str]  # (kind, uid)


class StatusSink(Protocol):
    """Where status and Events go: the API server (controller/kubeapi.py), a recorder in tests."""

    async def patch_status(self, record: PolicyRecord, status: JsonObject) -> None: ...
    async def post_event(self, record: PolicyRecord, event: PolicyEvent) -> None: ...


class StatusMemory:
    """The status the operator last wrote per object (by uid).

    The operator is the only writer of status, so this is never older than the copy a watch delivers; passes start
    from it, so that a resync never rewrites a status, or re-posts an Event, the watch has not caught up with.
    """

    def __init__(self) -> None:
        self._written: dict[str, dict[str, Any]] = {}

    def current(self, record: PolicyRecord) -> PolicyRecord:
        written = self._written.get(record.uid)
        return record if written is None else replace(record, status=written)

    def remember(self, record: PolicyRecord, status: JsonObject) -> None:
        merged = {**record.status, **status}
        self._written[record.uid] = {key: value for key, value in merged.items() if value is not None}

    def forget(self, uid: str) -> None:
        self._written.pop(uid, None)


@dataclass
class _Waiting:
    sink: StatusSink
    record: PolicyRecord
    status: JsonObject


@dataclass(frozen=True)
class _Event:
    sink: StatusSink
    record: PolicyRecord  # only its identity: what an Event names
    event: PolicyEvent


class Publisher:
    def __init__(self, memory: StatusMemory, at_once: int, refused: Callable[[Key], None]) -> None:
        """`refused`: called with an object whose status write failed, for the loop to pass it again."""
        self._memory = memory
        self._at_once = at_once
        self._slots = asyncio.Semaphore(at_once)
        self._refused = refused
        self._waiting: dict[Key, _Waiting] = {}
        self._writing: dict[Key, asyncio.Task[None]] = {}
        self._progress = asyncio.Event()  # set each time a status write ends
        self._events: deque[_Event] = deque()
        self._posting: asyncio.Task[None] | None = None

    def submit(self, key: Key, sink: StatusSink, record: PolicyRecord, status: JsonObject,
               events: list[PolicyEvent]) -> None:
        """Publish a pass's report of `record` (whose status is the one the memory held when the pass began)."""
        if status_changed(record.status, status):
            self._memory.remember(record, status)
            waiting = self._waiting.get(key)
            if waiting is None:
                self._waiting[key] = _Waiting(sink, record, status)
            else:
                waiting.status = {**waiting.status, **status}
            if key not in self._writing:
                self._writing[key] = asyncio.create_task(self._write(key), name=f"status of {record.ref}")
        if events:
            now = datetime.now(UTC)
            identity = replace(record, spec=None, status={}, annotations={})
            self._events.extend(_Event(sink, identity, replace(event, at=event.at or now)) for event in events)
            if self._posting is None:
                self._posting = asyncio.create_task(self._post_events(), name="Events")

    def forget(self, key: Key) -> None:
        """The object is gone: drop the status writes that wait for it (a write under way finishes)."""
        self._waiting.pop(key, None)

    async def below(self, limit: int) -> None:
        """Until fewer than `limit` objects have status writes under way or waiting: the loop's backpressure. Without
        it, a burst runs pass after pass of a few objects each while the writes pile up, and the passes' fixed costs
        (decisions, broker reads) are paid again for every few objects."""
        while len(self._writing) >= limit:
            self._progress.clear()
            await self._progress.wait()

    def busy(self) -> list["asyncio.Task[None]"]:
        """The status writes under way or waiting for a slot, and the Events being posted."""
        return [*self._writing.values(), *([] if self._posting is None else [self._posting])]

    async def close(self) -> None:
        tasks = self.busy()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _write(self, key: Key) -> None:
        try:
            while (waiting := self._waiting.pop(key, None)) is not None:
                async with self._slots:
                    await self._patch(key, waiting)
        finally:
            del self._writing[key]
            self._progress.set()

    async def _patch(self, key: Key, waiting: _Waiting) -> None:
        record = waiting.record
        try:
            await waiting.sink.patch_status(record, waiting.status)
        except Exception as error:
            log.warning("[%s] cannot write the status: %s", record.ref, error)
            self._memory.forget(record.uid)
            self._waiting.pop(key, None)  # computed from a memory that was wrong: the next pass redoes it
            self._refused(key)

    async def _post_events(self) -> None:
        """Post the waiting Events, in the order they were reported, `at_once` at a time while no status waits."""
        try:
            while self._events:
                await self.below(1)
                batch = [self._events.popleft() for _ in range(min(self._at_once, len(self._events)))]
                await asyncio.gather(*(self._post(item) for item in batch))
        finally:
            self._posting = None

    @staticmethod
    async def _post(item: _Event) -> None:
        try:
            await item.sink.post_event(item.record, item.event)
        except Exception as error:
            log.warning("[%s] cannot post the %s Event: %s", item.record.ref, item.event.reason, error)
