"""Event-driven reconciles off kopf's workers: kopf's event handler only records the object and queues its key; a
fixed pool of workers reconciles, writes the status, posts the Event, and queues retryable outcomes again with
backoff.

kopf's change handlers hold one of kopf's worker slots until they return, which for a reconcile is until its pass has
answered: in a burst the slots, not the brokers, bounded throughput, and the objects waiting for a slot held the
memory (10,000 policies: 373 MiB). Here a watch event costs a dict update, the work queue coalesces the events of an
object, and the pass queue folds the workers' calls into batched passes. Level-based like controller-runtime: what is
reconciled is the newest object the watch delivered, and a restart reconciles every object once.
"""

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from rocketmq_retry.controller.engine import Runtime, StatusSink, publish, reconcile_record
from rocketmq_retry.controller.records import ClaimKey, Claims, PolicyRecord, claim_key
from rocketmq_retry.controller.statuses import ready_message, ready_reason
from rocketmq_retry.controller.sweep import Leadership
from rocketmq_retry.controller.workqueue import WorkQueue, retry_delay
from rocketmq_retry.domain.management import Management, management

log = logging.getLogger(__name__)

WORKERS: Final = 256  # reconciles in flight; the pass queue folds the calls of a cluster into one pass
Clock = Callable[[], datetime]
Backoff = Callable[[int], float]  # failed attempts so far -> seconds before the next


@dataclass(frozen=True)
class _Seen:
    """What the reconciler keeps of an object; the object itself is read from the claims index, which kopf updates
    before it calls the event handler (one copy of each object in memory, not two)."""

    generation: int
    management: Management
    claim: ClaimKey | None

    def needs_reconcile_after(self, earlier: "_Seen | None") -> bool:
        """A new spec or new management annotations; not the operator's own status writes coming back."""
        return earlier is None or (earlier.generation, earlier.management) != (self.generation, self.management)


class Reconciler:
    def __init__(self, runtime: Runtime, claims: Claims, sink: StatusSink, *, workers: int = WORKERS,
                 backoff: Backoff = retry_delay, clock: Clock = lambda: datetime.now(UTC),
                 leads: Leadership | None = None) -> None:
        """`leads`: with kopf peering, whether this replica leads (None: standalone). kopf stops delivering events to
        a replica that yields, but retries are this class's own timers: a retry runs only on the leader."""
        self._runtime = runtime
        self._claims = claims
        self._sink = sink
        self._workers = workers
        self._backoff = backoff
        self._clock = clock
        self._leads = leads
        self._queue: WorkQueue[str] = WorkQueue()
        self._seen: dict[str, _Seen] = {}  # by uid: the newest version the watch delivered
        self._retries: dict[str, int] = {}  # by uid: failed attempts in a row

    def observe(self, record: PolicyRecord) -> None:
        """An object the watch delivered: queued when it is new to this process or its spec or annotations changed
        (the operator's own status writes come back as events too, and change neither)."""
        if record.deleting:  # a Reset policy's finalizer does what is left; a Retain policy is about to be gone
            self._drop(record.uid)
            return
        seen = _Seen(record.generation, management(record.annotations), claim_key(record, self._runtime.config))
        if seen.needs_reconcile_after(self._seen.get(record.uid)):
            self._retries.pop(record.uid, None)
            self._queue.add(record.uid)
        self._seen[record.uid] = seen

    def gone(self, record: PolicyRecord) -> None:
        """The object was deleted: forget it, and reconcile the policies that claim the same group, one of which may
        now own it."""
        self._drop(record.uid)
        self._runtime.memory.forget(record)
        key = claim_key(record, self._runtime.config)
        for rival in self._claims.get(key, ()) if key is not None else ():
            if rival.uid != record.uid and rival.uid in self._seen:
                self._queue.add(rival.uid)

    async def run(self) -> None:
        """The workers, until cancelled."""
        await asyncio.gather(*(self._work() for _ in range(self._workers)))

    def _drop(self, uid: str) -> None:
        self._seen.pop(uid, None)
        self._retries.pop(uid, None)
        self._queue.forget(uid)

    async def _work(self) -> None:
        while True:
            uid = await self._queue.get()
            try:
                await self._reconcile(uid)
            except Exception:
                log.exception("reconciling the policy with uid %s failed", uid)
                self._retry(uid)
            finally:
                self._queue.done(uid)

    async def _reconcile(self, uid: str) -> None:
        record = self._indexed(uid)
        if record is None:
            return
        if uid in self._retries and self._leads is not None and not await self._leads({record.namespace}):
            self._retries.pop(uid)  # the leading replica has the object too, and retries it
            return
        reconciled = await reconcile_record(self._runtime, record, self._claims, self._clock())
        try:
            await publish(self._runtime, self._sink, record, reconciled)
        except Exception as error:
            log.warning("[%s] cannot write the status: %s", record.ref, error)
            self._retry(uid)
            return
        log.info("[%s] %s: %s", record.ref, ready_reason(reconciled.status), ready_message(reconciled.status))
        if reconciled.retry:
            self._retry(uid)
        else:
            self._retries.pop(uid, None)

    def _indexed(self, uid: str) -> PolicyRecord | None:
        seen = self._seen.get(uid)
        claimants = self._claims.get(seen.claim, ()) if seen is not None else ()
        return next((record for record in claimants if record.uid == uid), None)

    def _retry(self, uid: str) -> None:
        if uid not in self._seen:  # deleted meanwhile
            return
        retries = self._retries.get(uid, 0)
        self._retries[uid] = retries + 1
        self._queue.add_after(uid, self._backoff(retries))
