"""Named experiments against the running local stack, for our CLI and for Chaos Toolkit files alike.

Both entry points go through `run_experiment`, so `rocketmq-retry chaos run broker-kill` and
`chaos run chaos/experiments/broker-kill.json` do the same thing and write the same report.
"""

import asyncio
from collections.abc import Callable, Coroutine, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from rocketmq_chaos.experiments import (
    FailingJavaConsumer,
    FaultUnderLoad,
    JavaOverrun,
    JavaRetryLadder,
    RetryLadder,
    fault_under_load,
    java_consumer_retries,
    java_overrun,
    java_retry_ladder,
    retry_ladder,
)
from rocketmq_chaos.java_probes import ConsumeMode, Failure
from rocketmq_chaos.journal import Journal
from rocketmq_chaos.report import Report, Verdict, write_report
from rocketmq_chaos.topology import ClusterTopology, discover_topology
from rocketmq_chaos.verdicts import DeliveryVerdict
from rocketmq_retry.domain.durations import parse_delay_levels
from rocketmq_retry.domain.ladder import remoting_ladder
from rocketmq_retry.remoting import Admin, ConnectionPool

from ..bed.rocketmq import RocketMQCluster
from ..bed.stack import LocalStack
from ..bed.topology import Topology
from .injector import LocalInjector
from .java_probes import CompiledJavaProbes

Run = Coroutine[Any, Any, Verdict]
Experiment = Callable[[RocketMQCluster, Journal, Mapping[str, Any]], Run]


async def masters_now(cluster: RocketMQCluster) -> ClusterTopology:
    """The bed's masters as its name server lists them now, by broker name: in controller mode only the name server
    knows which replica leads, and the LocalInjector takes a broker name for its master of the moment."""
    async with ConnectionPool(connect_timeout=2.0, request_timeout=10.0) as pool:
        return await discover_topology(Admin(pool, [cluster.namesrv_addr]), cluster=cluster.cluster_name,
                                       delay_levels=cluster.delay_levels)


async def local_fault_under_load(cluster: RocketMQCluster, journal: Journal, plan: FaultUnderLoad) -> DeliveryVerdict:
    """`plan` on the local bed, through a LocalInjector allowed to hurt the plan's target and nothing else."""
    masters = await masters_now(cluster)
    injector = LocalInjector(cluster, journal, allowed={plan.target(masters)})
    return await fault_under_load(masters, journal, plan, injector, CompiledJavaProbes.of(cluster))


def _under_load(cluster: RocketMQCluster, journal: Journal, options: Mapping[str, Any]) -> Run:
    return local_fault_under_load(cluster, journal, FaultUnderLoad(**options))


def _on_sync_master(cluster: RocketMQCluster, journal: Journal, options: Mapping[str, Any]) -> Run:
    """A fault under load on a bed whose masters wait for their slaves (default victim: the last master)."""
    if cluster.topology is not Topology.SYNC_MASTER:
        raise ValueError(f"this experiment needs a SYNC_MASTER bed, the local stack is {cluster.topology}: start it "
                         f"with `rocketmq-retry local up --topology {Topology.SYNC_MASTER}`")
    return _under_load(cluster, journal, options)


def _slave_of_last_master(cluster: RocketMQCluster, journal: Journal, options: Mapping[str, Any]) -> Run:
    """As `_on_sync_master`, the victim by default the last master's slave."""
    slaves = [b.name for b in cluster.replicas(cluster.brokers[-1].broker_name) if b.broker_id > 0]
    return _on_sync_master(cluster, journal, {"victim": slaves[0] if slaves else None, **options})


async def _ladder(cluster: RocketMQCluster, journal: Journal, options: Mapping[str, Any]) -> Verdict:
    """The broker's own ladder for `retries` (default 3) retries, unless `expected_delays_ms` is given."""
    settings = dict(options)
    expected = _expected_ladder(cluster, settings)
    return await retry_ladder(await masters_now(cluster), journal, RetryLadder(expected, **settings),
                              LocalInjector(cluster, journal))


async def _java_ladder(cluster: RocketMQCluster, journal: Journal, options: Mapping[str, Any]) -> Verdict:
    """As `_ladder`, the official push consumer failing one message each way in `failures`; killing the first master
    mid-ladder, too, with `kill_mid_ladder`."""
    settings = dict(options)
    expected = _expected_ladder(cluster, settings)
    if "failures" in settings:  # names, from a command line or an experiment file
        settings["failures"] = tuple(Failure(name) for name in settings["failures"])
    return await java_retry_ladder(await masters_now(cluster), journal, JavaRetryLadder(expected, **settings),
                                   CompiledJavaProbes.of(cluster), LocalInjector(cluster, journal))


async def _java_overrun(cluster: RocketMQCluster, journal: Journal, options: Mapping[str, Any]) -> Verdict:
    return await java_overrun(await masters_now(cluster), journal, JavaOverrun(**options),
                              CompiledJavaProbes.of(cluster))


def _expected_ladder(cluster: RocketMQCluster, settings: dict[str, Any]) -> list[int]:
    """Pops `retries` (default 3) and `expected_delays_ms` from `settings`: the latter, or the broker's ladder."""
    retries = int(settings.pop("retries", 3))
    given: list[int] | None = settings.pop("expected_delays_ms", None)
    return given or list(remoting_ladder(parse_delay_levels(cluster.delay_levels), retries).delays_ms)


async def _java_consumer(cluster: RocketMQCluster, journal: Journal, options: Mapping[str, Any]) -> Verdict:
    settings = dict(options)
    return await java_consumer_retries(await masters_now(cluster), journal,
                                       FailingJavaConsumer(ConsumeMode(settings.pop("mode")), **settings),
                                       CompiledJavaProbes.of(cluster))


EXPERIMENTS: Final[dict[str, tuple[Experiment, dict[str, Any]]]] = {
    "broker-kill": (_under_load, {}),
    "broker-kill-without-retries": (_under_load, {"retries": 0}),
    "broker-kill-java-producer": (_under_load, {"client": "java"}),
    "broker-kill-java-async": (_under_load, {"client": "java", "send_mode": "async"}),
    "broker-kill-java-oneway": (_under_load, {"client": "java", "send_mode": "oneway"}),
    "broker-pause": (_under_load, {"fault": "pause", "duration": 15}),
    "name-server-kill": (_under_load, {"fault": "kill-name-server", "duration": 15}),
    # A SYNC_MASTER bed (`local up --topology sync-master`). A send in flight when the slave dies waits 3 s on it and
    # may time out though stored. Without retryAnotherBrokerWhenNotStoreOK no message is stored twice, so none may
    # arrive twice.
    "sync-master-slave-kill": (_slave_of_last_master, {"max_duplicates": 0, "allow_failed_but_arrived": True}),
    "sync-master-slave-kill-retry-another-broker": (_slave_of_last_master,
                                                    {"retry_another_broker_when_not_store_ok": True,
                                                     "allow_failed_but_arrived": True}),
    "sync-master-master-kill": (_on_sync_master, {}),
    "retry-ladder": (_ladder, {}),
    "retry-ladder-broker-killed": (_ladder, {"kill_mid_ladder": True}),
    "java-retry-ladder": (_java_ladder, {}),
    "java-retry-ladder-broker-killed": (_java_ladder, {"kill_mid_ladder": True}),
    "consume-timeout-overrun": (_java_overrun, {}),
    "orderly-retries-in-place": (_java_consumer, {"mode": "orderly", "duration": 8}),
    "orderly-dead-letters-at-its-limit": (_java_consumer, {"mode": "orderly", "max_reconsume_times": 3,
                                                           "duration": 60}),
    "broadcast-drops-failures": (_java_consumer, {"mode": "broadcast", "duration": 12}),
}


def run_experiment(name: str, *, stack: LocalStack | None = None, report_dir: Path | None = None,
                   **options: Any) -> Report:
    """Run `name` on the local stack and write its report; options override the experiment's defaults."""
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; known: {', '.join(EXPERIMENTS)}")
    stack = stack or LocalStack.at()
    if stack.rocketmq is None or not stack.healthy:
        raise RuntimeError("the local stack is not up (`rocketmq-retry local status` says which part is down or "
                           "paused): start it with `rocketmq-retry local up`, or resume or restart the part")
    experiment, defaults = EXPERIMENTS[name]
    journal = Journal()
    try:
        verdict = asyncio.run(experiment(stack.rocketmq, journal, {**defaults, **options}))
    finally:
        stack.save()  # brokers the experiment restarted have new PIDs
    directory = report_dir or stack.root / "reports" / f"{datetime.now():%Y%m%d-%H%M%S}-{name}"
    return write_report(directory, journal, {name: verdict})
