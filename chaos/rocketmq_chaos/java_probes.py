"""Probes with the official Java client, so verdicts hold for the client applications actually run.

ProbeProducer and ProbeConsumer (bed/toolchains/java) drive DefaultMQProducer and DefaultMQPushConsumer with their
default retry settings, compiled against the RocketMQ version under test, and print journal events on stdout; each run
is one JVM, read with the journal's own parser when it ends. Their retry behaviour differs from our Python probes in
ways users meet: the push consumer sends its own maxReconsumeTimes with every send-back, orderly consumers redeliver
in place, broadcasting consumers drop failed messages.
"""

import asyncio
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from rocketmq_lab.bed import javaprograms, jvm, paths
from rocketmq_lab.bed.rocketmq import RocketMQCluster

from .journal import Event, Journal, parse_lines

# A cold JVM starts in 10-60 s on the busy 2-core machine, and its client needs a few more seconds before the run's
# own duration begins; shutting the client down takes a few as well.
START_ALLOWANCE = 240.0
# C1 only: JVM start dominates these short runs; C1's slower warm code costs microseconds against a send's milliseconds.
# The client's logs (4.x logs through logback, to stdout by default) go to user.home/logs/rocketmqlogs, not stdout.
JVM_OPTIONS = ["-Xms32m", "-Xmx256m", *jvm.FAST_START,
               f"-Dlogback.configurationFile={paths.TOOLCHAINS / 'rocketmq-home' / 'conf' / 'logback_tools.xml'}"]
STDERR_TAIL = 4000


class ConsumeMode(StrEnum):
    CONCURRENT = "concurrent"  # CLUSTERING, RECONSUME_LATER: send-back, redelivery through %RETRY%group
    ORDERLY = "orderly"  # CLUSTERING, SUSPEND_CURRENT_QUEUE_A_MOMENT: redelivered in place by the client
    BROADCAST = "broadcast"  # BROADCASTING, RECONSUME_LATER: the client drops the failed message


class JavaProbeFailed(RuntimeError):
    """A probe program exited with an error, overran its time or printed something that is not a journal event."""


@dataclass(frozen=True)
class JavaProbes:
    """The probe programs compiled for one RocketMQ version, run against one name server.

    `home` becomes the JVMs' user.home: the client writes its logs (and broadcasting consumers their offsets) there.
    """

    version: str
    namesrv_addr: str
    home: Path

    @classmethod
    def of(cls, cluster: RocketMQCluster) -> "JavaProbes":
        return cls(cluster.version, cluster.namesrv_addr, cluster.workdir / "java-probes")

    async def produce(self, journal: Journal, topic: str, *, rate: float, duration: float,
                      group: str = "chaos_java_producer") -> None:
        """Send to `topic` at `rate` messages/s for `duration` seconds of the producer's; record every send."""
        journal.events.extend(await self._run("ProbeProducer", duration, "--topic", topic, "--group", group,
                                              "--rate", str(rate), "--duration", str(duration)))

    async def consume(self, journal: Journal, topic: str, group: str, *, duration: float,
                      mode: ConsumeMode = ConsumeMode.CONCURRENT) -> None:
        """Fail every delivery of `topic` to `group` for `duration` seconds of the consumer's; record every delivery."""
        flags = [] if mode is ConsumeMode.CONCURRENT else [f"--{mode}"]
        journal.events.extend(await self._run("ProbeConsumer", duration, "--topic", topic, "--group", group,
                                              "--duration", str(duration), *flags))

    async def _run(self, main_class: str, duration: float, *args: str) -> list[Event]:
        programs = await asyncio.to_thread(javaprograms.compiled, self.version)
        self.home.mkdir(parents=True, exist_ok=True)
        argv = programs.argv(main_class, "--namesrv", self.namesrv_addr, *args, home=self.home, options=JVM_OPTIONS)
        return await run_events(argv, cwd=self.home, limit=duration + START_ALLOWANCE,
                                what=f"{main_class} (RocketMQ {self.version}; client logs under {self.home}/logs)")


async def run_events(argv: Sequence[str], *, cwd: Path, limit: float, what: str) -> list[Event]:
    """Run a probe program to its end and return the events it printed.

    JavaProbeFailed, with the end of its stderr, when it exits with an error or runs longer than `limit` seconds
    (its own deadline rather than the caller's asyncio.timeout, so that the failure shows its stderr); an overrunning
    or abandoned (cancelled) program is killed, so no JVM outlives its run.
    """
    process = await asyncio.create_subprocess_exec(*argv, cwd=cwd, stdin=subprocess.DEVNULL,
                                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None
    assert process.stderr is not None
    # Read while it runs (a full pipe would block it) and keep what was read when it has to be killed.
    output = asyncio.gather(process.stdout.read(), process.stderr.read())
    overran = False
    try:
        async with asyncio.timeout(limit):
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
