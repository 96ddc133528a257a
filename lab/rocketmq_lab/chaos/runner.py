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
from rocketmq_chaos.verdicts import DeliveryVerdict
from rocketmq_retry.domain.durations import parse_delay_levels
from rocketmq_retry.domain.ladder import remoting_ladder

from ..bed.rocketmq import RocketMQCluster
from ..bed.stack import LocalStack
from .injector import LocalInjector
from .java_probes import CompiledJavaProbes

Run = Coroutine[Any, Any, Verdict]
Experiment = Callable[[RocketMQCluster, Journal, Mapping[str, Any]], Run]


async def local_fault_under_load(cluster: RocketMQCluster, journal: Journal, plan: FaultUnderLoad) -> DeliveryVerdict:
    """`plan` on the local bed, through a LocalInjector allowed to hurt the plan's target and nothing else."""
    injector = LocalInjector(cluster, journal, allowed={plan.target(cluster)})
    return await fault_under_load(cluster, journal, plan, injector, CompiledJavaProbes.of(cluster))


def _under_load(cluster: RocketMQCluster, journal: Journal, options: Mapping[str, Any]) -> Run:
    return local_fault_under_load(cluster, journal, FaultUnderLoad(**options))


def _ladder(cluster: RocketMQCluster, journal: Journal, options: Mapping[str, Any]) -> Run:
    """The broker's own ladder for `retries` (default 3) retries, unless `expected_delays_ms` is given."""
    settings = dict(options)
    expected = _expected_ladder(cluster, settings)
    return retry_ladder(cluster, journal, RetryLadder(expected, **settings), LocalInjector(cluster, journal))


def _java_ladder(cluster: RocketMQCluster, journal: Journal, options: Mapping[str, Any]) -> Run:
    """As `_ladder`, the official push consumer failing one message each way in `failures`."""
    settings = dict(options)
    expected = _expected_ladder(cluster, settings)
    if "failures" in settings:  # names, from a command line or an experiment file
        settings["failures"] = tuple(Failure(name) for name in settings["failures"])
    return java_retry_ladder(cluster, journal, JavaRetryLadder(expected, **settings), CompiledJavaProbes.of(cluster))


def _java_overrun(cluster: RocketMQCluster, journal: Journal, options: Mapping[str, Any]) -> Run:
    return java_overrun(cluster, journal, JavaOverrun(**options), CompiledJavaProbes.of(cluster))


def _expected_ladder(cluster: RocketMQCluster, settings: dict[str, Any]) -> list[int]:
    """Pops `retries` (default 3) and `expected_delays_ms` from `settings`: the latter, or the broker's ladder."""
    retries = int(settings.pop("retries", 3))
    given: list[int] | None = settings.pop("expected_delays_ms", None)
    return given or list(remoting_ladder(parse_delay_levels(cluster.delay_levels), retries).delays_ms)


def _java_consumer(cluster: RocketMQCluster, journal: Journal, options: Mapping[str, Any]) -> Run:
    settings = dict(options)
    return java_consumer_retries(cluster, journal, FailingJavaConsumer(ConsumeMode(settings.pop("mode")), **settings),
                                 CompiledJavaProbes.of(cluster))


EXPERIMENTS: Final[dict[str, tuple[Experiment, dict[str, Any]]]] = {
    "broker-kill": (_under_load, {}),
    "broker-kill-without-retries": (_under_load, {"retries": 0}),
    "broker-kill-java-producer": (_under_load, {"client": "java"}),
    "broker-kill-java-async": (_under_load, {"client": "java", "send_mode": "async"}),
    "broker-kill-java-oneway": (_under_load, {"client": "java", "send_mode": "oneway"}),
    "broker-pause": (_under_load, {"fault": "pause", "duration": 15}),
    "name-server-kill": (_under_load, {"fault": "kill-name-server", "duration": 15}),
    "retry-ladder": (_ladder, {}),
    "retry-ladder-broker-killed": (_ladder, {"kill_mid_ladder": True}),
    "java-retry-ladder": (_java_ladder, {}),
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
