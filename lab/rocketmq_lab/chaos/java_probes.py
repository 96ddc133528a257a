"""The chaos experiments' Java probes on the local bed: compiled against its RocketMQ jars (bed/javaprograms.py)
and run against its name server."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from rocketmq_chaos.java_probes import ConsumerSettings, run_events
from rocketmq_chaos.journal import Event, Journal, SendMode

from ..bed import javaprograms, jvm, paths
from ..bed.rocketmq import RocketMQCluster

# A cold JVM starts in 10-60 s on the busy 2-core machine, and its client needs a few more seconds before the run's
# own duration begins; shutting the client down takes a few as well.
START_ALLOWANCE = 240.0
# C1 only: JVM start dominates these short runs; C1's slower warm code costs microseconds against a send's milliseconds.
# The client's logs (4.x logs through logback, to stdout by default) go to user.home/logs/rocketmqlogs, not stdout.
JVM_OPTIONS = ["-Xms32m", "-Xmx256m", *jvm.FAST_START,
               f"-Dlogback.configurationFile={paths.TOOLCHAINS / 'rocketmq-home' / 'conf' / 'logback_tools.xml'}"]


@dataclass(frozen=True)
class CompiledJavaProbes:
    """The probe programs compiled for one RocketMQ version, run against one name server (chaos's JavaProbes).

    `home` becomes the JVMs' user.home: the client writes its logs (and broadcasting consumers their offsets) there.
    """

    version: str
    namesrv_addr: str
    home: Path

    @classmethod
    def of(cls, cluster: RocketMQCluster) -> "CompiledJavaProbes":
        return cls(cluster.version, cluster.namesrv_addr, cluster.workdir / "java-probes")

    async def produce(self, journal: Journal, topic: str, *, rate: float, duration: float, mode: SendMode = "sync",
                      retry_another_broker_when_not_store_ok: bool = False,
                      group: str = "chaos_java_producer") -> None:
        """Send to `topic` at `rate` messages/s for `duration` seconds of the producer's with the `mode` send call;
        record every send, with its status and, sync, its attempts' statuses. `retry_another_broker_when_not_store_ok`
        is the producer's retryAnotherBrokerWhenNotStoreOK."""
        flags = ["--retry-another-broker-when-not-store-ok"] if retry_another_broker_when_not_store_ok else []
        journal.events.extend(await self._run("ProbeProducer", duration, "--topic", topic, "--group", group,
                                              "--rate", str(rate), "--duration", str(duration), "--mode", mode,
                                              *flags))

    async def consume(self, journal: Journal, topic: str, group: str, settings: ConsumerSettings, *,
                      duration: float) -> None:
        """Fail every delivery of `topic` to `group` for `duration` seconds of the consumer's; record every delivery
        and hand-back."""
        journal.events.extend(await self._run("ProbeConsumer", duration, "--topic", topic, "--group", group,
                                              "--duration", str(duration), *settings.flags()))

    @contextlib.asynccontextmanager
    async def consuming(self, journal: Journal, topic: str, group: str, settings: ConsumerSettings, *,
                        within: float) -> AsyncIterator[None]:
        """Fail every delivery of `topic` to `group` while the block runs (at most `within` seconds of the
        consumer's); record every delivery and hand-back once it has stopped."""
        stop = asyncio.Event()
        run = asyncio.create_task(self._run("ProbeConsumer", within, "--topic", topic, "--group", group,
                                            "--duration", str(within), "--until-eof", *settings.flags(), stop=stop))
        try:
            yield
        finally:
            stop.set()
            journal.events.extend(await run)

    async def _run(self, main_class: str, duration: float, *args: str,
                   stop: asyncio.Event | None = None) -> list[Event]:
        programs = await asyncio.to_thread(javaprograms.compiled, self.version)
        self.home.mkdir(parents=True, exist_ok=True)
        argv = programs.argv(main_class, "--namesrv", self.namesrv_addr, *args, home=self.home, options=JVM_OPTIONS)
        return await run_events(argv, cwd=self.home, limit=duration + START_ALLOWANCE, stop=stop,
                                what=f"{main_class} (RocketMQ {self.version}; client logs under {self.home}/logs)")
