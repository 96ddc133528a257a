"""The operator's one control loop: every object of every kind goes through it, in passes per cluster.

Why passes per cluster: a policy's work is a read of every master's whole group table and a write of what differs.
Done per object, a burst of a thousand policies reads each table a thousand times; done per cluster, the objects that
are waiting when a pass starts share one read per master and one batched write per broker. So the loop keeps, like
client-go's work queue, a set of keys waiting (each at most once) and a set in flight (each in one pass at a time),
and, like the batching loop of Strimzi's topic operator, takes everything waiting for a cluster into that cluster's
next pass. One pass per cluster and kind runs at a time, so two passes never read-modify-write the same group, with
no lock per group.

What starts a pass: a watch event that changed an object's spec or management annotations (its own status writes
come back as events too, and change neither), a retry after a retryable outcome (with backoff), the periodic resync of
a kind (the drift sweep of RetryPolicy, the dead-letter reads of DeadLetterQueue), a master that appeared (a broker
back with an empty store), a finalizer, and a kind's own wake-up (a redrive that ended). Resyncs and master changes
mark the pass fresh: it must read the brokers anew rather than reuse a recent read.

What a kind brings (`Kind`): how to find an object and which cluster it targets, and `run_pass`, which does the
kind's broker work for a batch and returns each object's status, Events and whether to retry. The loop owns the
rest: the queue, batching, backoff, the status the operator last wrote (so a resync never rewrites a status the watch
has not caught up with), publishing behind the passes (controller/publisher.py), and the leadership gate (with kopf
peering, a replica that does not lead runs no pass; kopf itself stops delivering events to it).
"""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from rocketmq_retry.controller.config import OperatorConfig
from rocketmq_retry.controller.publisher import Publisher, StatusMemory, StatusSink
from rocketmq_retry.controller.records import ClaimKey, PolicyRecord
from rocketmq_retry.controller.statuses import PolicyEvent
from rocketmq_retry.domain.jsontypes import JsonObject
from rocketmq_retry.domain.management import Management, management

log = logging.getLogger(__name__)

NO_CLUSTER = ""  # the pass of objects whose spec names no usable cluster: they get a status, and no broker call
Slot = tuple[str, str]  # (kind, cluster key): what one pass covers
Leadership = Callable[[Collection[str]], Awaitable[bool]]  # namespaces a pass would touch -> this replica leads


class Timer(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    """Time as the loop sees it: asyncio's in the operator, a clock the test moves by hand in unit tests."""

    def now(self) -> datetime: ...
    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        return asyncio.get_running_loop().call_later(delay, callback)


@dataclass(frozen=True)
class Job:
    """One object's share of a pass: its newest version with the status the operator last wrote."""

    record: PolicyRecord
    finalizing: bool = False  # its finalizer runs: undo what the object did rather than apply it


@dataclass(frozen=True)
class Report:
    """What a pass concluded for one object: the status to write, the Events to post, and whether to try again."""

    status: JsonObject
    events: Sequence[PolicyEvent] = ()
    retry: bool = False  # the outcome may clear by itself: pass the object again, with backoff
    requeue_after: float | None = None  # pass the object again after this many seconds (work under way to follow)


@dataclass(frozen=True)
class Finalized:
    done: bool  # False: what the finalizer must undo could not be undone everywhere, and should be retried
    message: str


class Kind(Protocol):
    """One kind of object on the loop (controller/policies.py, controller/dead_letters.py)."""

    name: str
    sink: StatusSink
    resync_interval: float  # seconds between fresh passes over every object of the kind

    def claim(self, record: PolicyRecord) -> ClaimKey | None:
        """The (cluster key, consumer group) the object claims, the key of the kind's kopf index; None when its spec
        names none that can be used."""
        ...

    def claimants(self, claim: ClaimKey | None) -> Iterable[PolicyRecord]:
        """The objects that claim `claim`, in their newest versions as kopf indexed them."""
        ...

    async def run_pass(self, cluster: str, jobs: Sequence[Job], now: datetime, *,
                       fresh: bool) -> Mapping[str, Report | Finalized]:
        """Each job's outcome, by uid: a Finalized for a finalizing job, a Report for the others. Failures of
        brokers belong in the reports; an exception fails the whole pass, which is retried with backoff."""
        ...

    def forget(self, uid: str) -> None:
        """The object is gone, or this replica no longer leads: drop what the kind keeps of it (a running redrive
        stops abruptly, as a crash would, and the leader resumes it from its status)."""
        ...


@dataclass(frozen=True)
class _Seen:
    """What the loop keeps of an object between events: enough to tell a new spec from its own status write coming
    back, and the claim under which the kind's index holds the object (one copy of each object in memory, kopf's)."""

    generation: int
    management: Management
    claim: ClaimKey | None

    @property
    def cluster(self) -> str:
        return NO_CLUSTER if self.claim is None else self.claim[0]


@dataclass
class _Waiting:
    """The objects waiting for the next pass of a slot."""

    uids: dict[str, bool] = field(default_factory=dict)  # uid -> finalizing
    fresh: bool = False
    timer: Timer | None = None  # the batch window of a pass about to start


class ControlLoop:
    def __init__(self, config: OperatorConfig, kinds: Sequence[Kind], memory: StatusMemory, *,
                 clock: Clock | None = None, leads: Leadership | None = None) -> None:
        self._config = config
        self._kinds = {kind.name: kind for kind in kinds}
        self._memory = memory
        self._clock = clock or SystemClock()
        self._leads = leads  # None: standalone, always leads
        self._seen: dict[tuple[str, str], _Seen] = {}  # (kind, uid)
        self._waiting: dict[Slot, _Waiting] = {}
        self._passes: dict[Slot, asyncio.Task[None]] = {}
        self._in_flight: set[tuple[str, str]] = set()
        self._again: dict[tuple[str, str], tuple[bool, bool]] = {}  # added while in flight -> (finalizing, fresh)
        self._retries: dict[tuple[str, str], int] = {}
        self._timers: dict[tuple[str, str], Timer] = {}
        self._finalizers: dict[tuple[str, str], list[asyncio.Future[Finalized]]] = {}
        self._resync_timers: dict[str, Timer] = {}
        self._following = False
        self._publisher = Publisher(memory, config.statuses_at_once, self._retry)

    # --- what comes in -------------------------------------------------------------------------------------------

    def observe(self, kind: str, record: PolicyRecord) -> None:
        """A watch event (or the listing at start): queued when the object is new to this process, or its spec or
        management annotations changed."""
        key = (kind, record.uid)
        if record.deleting:  # its finalizer, if the kind has one, does what is left
            if key not in self._finalizers:
                self._drop(key)
            return
        seen = self._seen_now(kind, record)
        earlier = self._seen.get(key)
        self._seen[key] = seen
        if earlier is None or (earlier.generation, earlier.management) != (seen.generation, seen.management):
            self._retries.pop(key, None)
            self._add(key)

    def gone(self, kind: str, record: PolicyRecord) -> None:
        """The object was deleted: forget it, and queue the others that claim the same group, one of which may now
        own it."""
        owner = self._kinds[kind]
        self._drop((kind, record.uid))
        self._publisher.forget((kind, record.uid))
        self._memory.forget(record.uid)
        owner.forget(record.uid)
        claim = owner.claim(record)
        for rival in owner.claimants(claim) if claim is not None else ():
            if rival.uid != record.uid:
                self._add((kind, rival.uid))

    def wake(self, kind: str, uid: str) -> None:
        """A kind's own reason to look at an object again (a redrive ended)."""
        if (kind, uid) in self._seen:
            self._add((kind, uid))

    def resync(self, kind: str, clusters: Collection[str] | None = None) -> None:
        """A fresh pass over every object of `kind` (or those of the `clusters` keys)."""
        for (of_kind, uid), seen in list(self._seen.items()):
            if of_kind == kind and (clusters is None or seen.cluster in clusters):
                self._add((kind, uid), fresh=True)

    async def finalize(self, kind: str, record: PolicyRecord) -> Finalized:
        """Run the object's finalizer in the next pass of its cluster, after any pass it is in now."""
        key = (kind, record.uid)
        self._seen[key] = self._seen_now(kind, record)
        answer: asyncio.Future[Finalized] = asyncio.get_running_loop().create_future()
        self._finalizers.setdefault(key, []).append(answer)
        self._add(key, finalizing=True, fresh=True)
        return await answer

    # --- running -------------------------------------------------------------------------------------------------

    def busy(self) -> list["asyncio.Task[None]"]:
        """The passes under way (one per slot at most) and the status writes behind them."""
        return [*self._passes.values(), *self._publisher.busy()]

    async def run(self) -> None:
        """Resync every kind at its interval until cancelled; then stop every pass (as a crash would)."""
        for kind in self._kinds.values():
            self._schedule_resync(kind)
        try:
            await asyncio.Event().wait()
        finally:
            for timer in [*self._resync_timers.values(), *self._timers.values(),
                          *(w.timer for w in self._waiting.values() if w.timer is not None)]:
                timer.cancel()
            passes = list(self._passes.values())
            for task in passes:
                task.cancel()
            await asyncio.gather(*passes, return_exceptions=True)
            await self._publisher.close()

    def _schedule_resync(self, kind: Kind) -> None:
        def resync() -> None:
            self.resync(kind.name)
            self._schedule_resync(kind)

        self._resync_timers[kind.name] = self._clock.call_later(kind.resync_interval, resync)

    def _add(self, key: tuple[str, str], *, finalizing: bool = False, fresh: bool = False) -> None:
        self._cancel_timer(key)
        if key in self._in_flight:
            was_finalizing, was_fresh = self._again.get(key, (False, False))
            self._again[key] = (was_finalizing or finalizing, was_fresh or fresh)
            return
        seen = self._seen.get(key)
        if seen is None:
            return
        slot = (key[0], seen.cluster)
        waiting = self._waiting.setdefault(slot, _Waiting())
        waiting.uids[key[1]] = waiting.uids.get(key[1], False) or finalizing
        waiting.fresh = waiting.fresh or fresh
        if slot not in self._passes:
            self._start_soon(slot, waiting)

    def _start_soon(self, slot: Slot, waiting: _Waiting) -> None:
        """Start the slot's next pass after the batch window, unless it is already about to start."""
        if waiting.timer is None:
            waiting.timer = self._clock.call_later(self._config.batch_window, lambda: self._start(slot))

    def _start(self, slot: Slot) -> None:
        waiting = self._waiting.pop(slot, None)
        if waiting is None or not waiting.uids:
            return
        self._passes[slot] = asyncio.create_task(self._pass(slot, waiting), name=f"pass of {slot[0]} on {slot[1]!r}")

    def _seen_now(self, kind: str, record: PolicyRecord) -> _Seen:
        return _Seen(record.generation, management(record.annotations), self._kinds[kind].claim(record))

    def _drop(self, key: tuple[str, str]) -> None:
        seen = self._seen.pop(key, None)
        self._retries.pop(key, None)
        self._again.pop(key, None)
        self._cancel_timer(key)
        if seen is not None:
            waiting = self._waiting.get((key[0], seen.cluster))
            if waiting is not None:
                waiting.uids.pop(key[1], None)

    async def _pass(self, slot: Slot, waiting: _Waiting) -> None:
        kind_name, cluster = slot
        kind = self._kinds[kind_name]
        try:
            jobs = self._jobs(kind, cluster, waiting)
            if jobs and await self._leading({job.record.namespace for job in jobs}):
                await self._work(kind, cluster, jobs, fresh=waiting.fresh)
                # The slot's next pass overlaps with this one's status writes, but waits while many are behind.
                await self._publisher.below(self._config.statuses_at_once * 2)
            else:  # the leading replica has the objects too, and works on them
                for job in jobs:
                    self._again.pop((kind_name, job.record.uid), None)
                    kind.forget(job.record.uid)
                    self._settle((kind_name, job.record.uid), Finalized(False, "another replica leads"))
        finally:
            del self._passes[slot]
            later = self._waiting.get(slot)
            if later is not None and later.uids:
                self._start_soon(slot, later)

    def _jobs(self, kind: Kind, cluster: str, waiting: _Waiting) -> list[Job]:
        """The newest version of each waiting object; one that moved to another cluster meanwhile waits there."""
        jobs = []
        for uid, finalizing in waiting.uids.items():
            key = (kind.name, uid)
            seen = self._seen.get(key)
            record = None if seen is None else next((r for r in kind.claimants(seen.claim) if r.uid == uid), None)
            if seen is None or record is None:
                self._settle(key, Finalized(True, "the object is gone"))
                continue
            if seen.cluster != cluster:
                self._add(key, finalizing=finalizing, fresh=waiting.fresh)
                continue
            self._in_flight.add(key)
            jobs.append(Job(self._memory.current(record), finalizing))
        return jobs

    async def _work(self, kind: Kind, cluster: str, jobs: Sequence[Job], *, fresh: bool) -> None:
        try:
            outcomes = await kind.run_pass(cluster, jobs, self._clock.now(), fresh=fresh)
        except Exception as error:
            log.exception("a pass of %s over cluster %r failed; retrying its objects", kind.name, cluster or "-")
            outcomes = {job.record.uid: Finalized(False, f"the pass failed: {error}") for job in jobs
                        if job.finalizing}
        for job in jobs:
            key = (kind.name, job.record.uid)
            self._in_flight.discard(key)
            outcome = outcomes.get(job.record.uid)
            if job.finalizing and not isinstance(outcome, Finalized):
                outcome = Finalized(False, f"the pass over {cluster or 'no cluster'} had no outcome for the finalizer")
            if isinstance(outcome, Finalized):
                self._settle(key, outcome)
            elif outcome is not None:
                self._publisher.submit(key, kind.sink, job.record, outcome.status, list(outcome.events))
            if key in self._again:
                finalizing, read_anew = self._again.pop(key)
                self._add(key, finalizing=finalizing, fresh=read_anew)
            elif outcome is None or (isinstance(outcome, Report) and outcome.retry):
                self._retry(key)
            else:
                self._retries.pop(key, None)
                if isinstance(outcome, Report) and outcome.requeue_after is not None:
                    self._add_after(key, outcome.requeue_after)

    def _retry(self, key: tuple[str, str]) -> None:
        retries = self._retries.get(key, 0)
        self._retries[key] = retries + 1
        self._add_after(key, self._config.retry_delay(retries))

    def _cancel_timer(self, key: tuple[str, str]) -> None:
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()

    def _add_after(self, key: tuple[str, str], delay: float) -> None:
        if key in self._seen:  # not deleted meanwhile
            self._timers[key] = self._clock.call_later(delay, lambda: self._add(key))

    def _settle(self, key: tuple[str, str], outcome: Finalized) -> None:
        self._in_flight.discard(key)
        for answer in self._finalizers.pop(key, []):
            if not answer.done():
                answer.set_result(outcome)

    async def _leading(self, namespaces: Collection[str]) -> bool:
        if self._leads is None:
            return True
        following = not await self._leads(namespaces)
        if following != self._following:
            log.info("control loop %s", "paused: another replica leads the kopf peering" if following else "resumed")
            self._following = following
        return not following


async def stop_quietly(task: "asyncio.Task[Any]") -> None:
    """Cancel `task` and wait for it to end."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
