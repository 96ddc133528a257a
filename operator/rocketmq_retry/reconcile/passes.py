"""One reconciliation pass at a time per cluster; calls that arrive while a pass runs are folded into the next one.

A burst of events (a thousand policies applied at once) then costs a handful of passes, each reading every master
once and writing the changed groups in one batch, instead of a full read of every master per policy. Callers hold
the group locks of their intents, so no intent key is ever pending twice.
"""

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from rocketmq_retry.reconcile.apply import Intent, PolicyResult

Results = dict[str, PolicyResult]
PassRunner = Callable[[Sequence[Intent], datetime, bool], Awaitable[Results]]  # intents, now, fresh


@dataclass(frozen=True)
class _Call:
    intents: Sequence[Intent]
    now: datetime
    fresh: bool
    answer: "asyncio.Future[Results]"


class PassQueue:
    def __init__(self, run_pass: PassRunner, name: str, *, window: float = 0.0) -> None:
        """`window`: seconds a pass waits for more calls before it starts, so that a burst makes fewer, larger passes
        (each pass reads every master's whole group table)."""
        self._run_pass = run_pass
        self._name = name
        self._window = window
        self._waiting: list[_Call] = []
        self._worker: asyncio.Task[None] | None = None

    async def run(self, intents: Sequence[Intent], now: datetime, *, fresh: bool) -> Results:
        """The results of `intents`, from the next pass that starts after this call.

        `fresh`: the pass must read every master anew (else it may reuse a recent read); a pass is fresh when any
        of its calls asks so.
        """
        call = _Call(intents, now, fresh, asyncio.get_running_loop().create_future())
        self._waiting.append(call)
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._drain(), name=f"reconcile passes of {self._name}")
        return await call.answer

    async def _drain(self) -> None:
        batch: list[_Call] = []
        try:
            while self._waiting:
                if self._window:
                    await asyncio.sleep(self._window)
                batch, self._waiting = self._waiting, []
                await self._serve(batch)
        except asyncio.CancelledError:
            for call in [*batch, *self._waiting]:
                call.answer.cancel()
            raise

    async def _serve(self, batch: list[_Call]) -> None:
        intents = [intent for call in batch for intent in call.intents]
        try:
            # The newest caller's clock: the pass starts after every call of the batch was made.
            results = await self._run_pass(intents, max(call.now for call in batch), any(c.fresh for c in batch))
        except Exception as error:
            for call in batch:
                if not call.answer.done():
                    call.answer.set_exception(error)
            return
        for call in batch:
            if not call.answer.done():  # a caller that was cancelled meanwhile
                call.answer.set_result({intent.key: results[intent.key] for intent in call.intents})
