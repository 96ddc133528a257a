"""Probes with the official Java client, so verdicts hold for the client applications actually run.

ProbeProducer and ProbeConsumer (the lab's bed/toolchains/java) drive DefaultMQProducer and DefaultMQPushConsumer with
their default retry settings, compiled against the RocketMQ version under test, and print journal events on stdout;
each run is one JVM, read with the journal's own parser (`run_events`) when it ends. Their retry behaviour differs
from our Python probes in ways users meet: the push consumer sends its own maxReconsumeTimes with every send-back,
orderly consumers redeliver in place, broadcasting consumers drop failed messages.
"""

import asyncio
import subprocess
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Protocol

from .journal import Event, Journal, SendMode, parse_lines

STDERR_TAIL = 4000


class ConsumeMode(StrEnum):
    CONCURRENT = "concurrent"  # CLUSTERING, RECONSUME_LATER: send-back, redelivery through %RETRY%group
    ORDERLY = "orderly"  # CLUSTERING, SUSPEND_CURRENT_QUEUE_A_MOMENT: redelivered in place by the client
    BROADCAST = "broadcast"  # BROADCASTING, RECONSUME_LATER: the client drops the failed message


class Failure(StrEnum):
    """How the concurrent probe consumer fails a message: the message's body names it (ProbeConsumer.fail)."""

    LATER = "later"  # returns RECONSUME_LATER
    THROW = "throw"  # the listener throws
    NULL = "null"  # the listener returns null
    OVERRUN = "overrun"  # the first delivery outlives consumeTimeout, then returns RECONSUME_LATER


@dataclass(frozen=True)
class ConsumerSettings:
    """The probe consumer's client settings; None keeps the client's default."""

    mode: ConsumeMode = ConsumeMode.CONCURRENT
    max_reconsume_times: int | None = None
    consume_timeout_minutes: int | None = None
    overrun_s: float = 0.0  # how long an "overrun" message's first delivery holds the listener

    def flags(self) -> list[str]:
        flags = [] if self.mode is ConsumeMode.CONCURRENT else [f"--{self.mode}"]
        if self.max_reconsume_times is not None:
            flags += ["--max-reconsume-times", str(self.max_reconsume_times)]
        if self.consume_timeout_minutes is not None:
            flags += ["--consume-timeout", str(self.consume_timeout_minutes)]
        if self.overrun_s:
            flags += ["--overrun-seconds", str(self.overrun_s)]
        return flags


class JavaProbeFailed(RuntimeError):
    """A probe program exited with an error, overran its time or printed something that is not a journal event."""


def resends_cleaned_messages(client_version: str) -> bool:
    """Whether the push consumer sends back a failure of a message its consumeTimeout cleaner already sent back:
    before 5.1.0 it does; 5.1.0 added the check (rocketmq#5481, ConsumeMessageConcurrentlyService.processConsumeResult
    skips a message no longer in its process queue)."""
    return tuple(int(part) for part in client_version.split(".")[:2]) < (5, 1)


class JavaProbes(Protocol):
    """The probe programs run against one name server. Only a machine with the RocketMQ jars to compile and run them
    against has them: the lab provides them on its local bed (rocketmq_lab.chaos.java_probes)."""

    @property
    def version(self) -> str:
        """The RocketMQ version of the client jars the programs run with."""

    async def produce(self, journal: Journal, topic: str, *, rate: float, duration: float,
                      mode: SendMode = "sync", retry_another_broker_when_not_store_ok: bool = False) -> None:
        """Send to `topic` at `rate` messages/s for `duration` seconds of the producer's with the `mode` send call;
        record every send, with its status and, sync, its attempts' statuses. `retry_another_broker_when_not_store_ok`
        is the producer's retryAnotherBrokerWhenNotStoreOK."""

    async def consume(self, journal: Journal, topic: str, group: str, settings: ConsumerSettings, *,
                      duration: float) -> None:
        """Fail every delivery of `topic` to `group` for `duration` seconds of the consumer's; record every delivery
        and hand-back."""

    def consuming(self, journal: Journal, topic: str, group: str, settings: ConsumerSettings, *,
                  within: float) -> AbstractAsyncContextManager[None]:
        """Fail every delivery of `topic` to `group` while the block runs (at most `within` seconds of the
        consumer's); record every delivery and hand-back once it has stopped."""


async def run_events(argv: Sequence[str], *, cwd: Path, limit: float, what: str,
                     stop: asyncio.Event | None = None) -> list[Event]:
    """Run a probe program to its end and return the events it printed.

    With `stop`, the program's stdin is a pipe closed when `stop` is set: a program run with --until-eof ends there.
    JavaProbeFailed, with the end of its stderr, when it exits with an error or runs longer than `limit` seconds
    (its own deadline rather than the caller's asyncio.timeout, so that the failure shows its stderr); an overrunning
    or abandoned (cancelled) program is killed, so no JVM outlives its run.
    """
    process = await asyncio.create_subprocess_exec(*argv, cwd=cwd,
                                                   stdin=subprocess.DEVNULL if stop is None else subprocess.PIPE,
                                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None
    assert process.stderr is not None
    # Read while it runs (a full pipe would block it) and keep what was read when it has to be killed.
    output = asyncio.gather(process.stdout.read(), process.stderr.read())
    overran = False
    try:
        async with asyncio.timeout(limit):
            if stop is not None:
                await _close_stdin_on(stop, process)
            await process.wait()
    except TimeoutError:
        overran = True
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    stdout, stderr = await output
    if overran or process.returncode != 0:
        ending = f"was killed after {limit:.0f} s" if overran else f"exited with {process.returncode}"
        raise JavaProbeFailed(f"{what} {ending}; stderr ends:\n{stderr.decode(errors='replace')[-STDERR_TAIL:]}")
    try:
        return list(parse_lines(stdout.decode().splitlines()))
    except (ValueError, TypeError) as error:  # not JSON, an unknown kind, or fields the event lacks
        raise JavaProbeFailed(f"{what} printed something that is not a journal event: {error}") from error


async def _close_stdin_on(stop: asyncio.Event, process: asyncio.subprocess.Process) -> None:
    """Close the program's stdin once `stop` is set, unless it ended first."""
    assert process.stdin is not None
    waiting = [asyncio.create_task(stop.wait()), asyncio.create_task(process.wait())]
    try:
        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in waiting:
            task.cancel()
    if stop.is_set() and process.returncode is None:
        process.stdin.close()
