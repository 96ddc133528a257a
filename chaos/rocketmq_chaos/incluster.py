"""Experiments run from a Job inside a Kubernetes cluster, against RocketMQ running as pods.

The Job knows only the name server: the masters and their `messageDelayLevel` are read from it (`ClusterTopology`),
broker faults are pod deletions (`PodInjector`), and the report is the local runner's. As a Job's files are gone
when it ends, the report also leaves through the Job's log: the whole report directory as one `REPORT-TGZ` line
(base64 of a tar.gz) and, last, the verdict as one `VERDICT-JSON` line.
"""

import asyncio
import base64
import io
import json
import tarfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from rocketmq_retry.domain.durations import parse_delay_levels
from rocketmq_retry.domain.ladder import remoting_ladder
from rocketmq_retry.remoting import Admin, ConnectionPool

from .experiments import FaultUnderLoad, LoadFault, RetryLadder, fault_under_load, retry_ladder
from .journal import Journal
from .pods import PodInjector
from .report import Report, Verdict, write_report
from .topology import Topology, discover_topology

EXPERIMENTS: Final = ("broker-pod-kill", "broker-under-load", "retry-ladder")
VERDICT_PREFIX: Final = "VERDICT-JSON "
REPORT_PREFIX: Final = "REPORT-TGZ "
DEFAULT_RETRIES: Final = 3  # the ladder's length for a group of the run's own


@dataclass(frozen=True)
class InCluster:
    """Where RocketMQ runs and how to find its broker pods."""

    namesrv: str
    namespace: str
    selector: str  # the broker pods of every broker name, e.g. app=rocketmq,role=broker
    broker_label: str = "broker"  # the label whose value is the pod's broker name
    cluster: str | None = None  # only this broker cluster's masters (default: every master)
    delay_levels: str | None = None  # default: read from the masters' config
    recovery_timeout: float = 300.0  # for a deleted broker pod to be replaced and registered again


@dataclass(frozen=True)
class Load:
    """broker-pod-kill and broker-under-load: the producer's load, and when the pod is deleted (broker-pod-kill)."""

    rate: float = 100.0
    duration: float = 20.0
    fault_at: float = 5.0
    victim: str | None = None  # default: the last master


@dataclass(frozen=True)
class Ladder:
    """retry-ladder: a group (the operator's), or one of the run's own with `expected_delays_ms` or 3 retries."""

    group: str | None = None
    expected_delays_ms: tuple[int, ...] | None = None  # default: from the group's retryMaxTimes and the brokers
    messages: int = 3
    within: float = 180.0


def run_in_cluster(experiment: str, where: InCluster, report_dir: Path, *, load: Load | None = None,
                   ladder: Ladder | None = None, core_api: Callable[[], Any] | None = None
                   ) -> tuple[Report, Mapping[str, Verdict]]:
    """Run `experiment` and write its report into `report_dir`; the report and the verdict. `core_api` makes the
    CoreV1Api that deletes pods (broker-pod-kill only)."""
    if experiment not in EXPERIMENTS:
        raise ValueError(f"unknown in-cluster experiment {experiment!r}; known: {', '.join(EXPERIMENTS)}")
    journal = Journal()
    verdict = asyncio.run(_run(experiment, where, journal, load=load or Load(), ladder=ladder or Ladder(),
                               core_api=core_api))
    verdicts = {experiment: verdict}
    return write_report(report_dir, journal, verdicts), verdicts


async def _run(experiment: str, where: InCluster, journal: Journal, *, load: Load, ladder: Ladder,
               core_api: Callable[[], Any] | None) -> Verdict:
    async with ConnectionPool(connect_timeout=1.0, request_timeout=5.0) as pool:
        admin = Admin(pool, [where.namesrv])
        topology = await discover_topology(admin, cluster=where.cluster, delay_levels=where.delay_levels)
        if experiment == "retry-ladder":
            expected = ladder.expected_delays_ms or await group_ladder(admin, topology, ladder.group)
            plan = RetryLadder(expected, messages=ladder.messages, group=ladder.group, within=ladder.within)
            return await retry_ladder(topology, journal, plan)
        if experiment == "broker-under-load":  # the fault is someone else's (the kind lab pauses a node)
            return await fault_under_load(topology, journal, _load_plan(load, "external"), None)
        if core_api is None:
            raise ValueError(f"{experiment} deletes pods: it needs the Kubernetes API")
        kill = _load_plan(load, "kill")
        async with PodInjector(core_api(), admin, topology, journal, namespace=where.namespace,
                               selector=where.selector, broker_label=where.broker_label,
                               allowed={kill.target(topology)},
                               recovery_timeout=where.recovery_timeout) as injector:
            return await fault_under_load(topology, journal, kill, injector)


def _load_plan(load: Load, fault: LoadFault) -> FaultUnderLoad:
    """Our producer with the official client's retries. A deleted broker pod comes back with a new, empty store
    (emptyDir); a paused node keeps its pods' stores."""
    return FaultUnderLoad(rate=load.rate, duration=load.duration, fault=fault, fault_at=load.fault_at,
                          victim=load.victim, store_survives=fault != "kill")


async def group_ladder(admin: Admin, topology: Topology, group: str | None) -> tuple[int, ...]:
    """The remoting ladder `group` gets: the brokers' delay levels for the group's retryMaxTimes on every master
    (DEFAULT_RETRIES for a group of the run's own). ValueError when a master lacks the group or they disagree."""
    retries = DEFAULT_RETRIES
    if group is not None:
        configs = {b.name: await admin.get_subscription_group(b.addr, group) for b in topology.brokers}
        retries = shared_retry_max_times(group, {name: c.retry_max_times if c else None for name, c in configs.items()})
    return remoting_ladder(parse_delay_levels(topology.delay_levels), retries).delays_ms


def shared_retry_max_times(group: str, per_broker: dict[str, int | None]) -> int:
    """The one retryMaxTimes every master has for `group` (broker name -> its value, None: the group is absent)."""
    absent = sorted(name for name, value in per_broker.items() if value is None)
    if absent:
        raise ValueError(f"group {group} is not on {', '.join(absent)}: apply its RetryPolicy first")
    values = set(per_broker.values())
    if len(values) != 1:
        raise ValueError(f"group {group} has different retryMaxTimes on the masters: {per_broker}")
    [retries] = values
    assert retries is not None
    return retries


def report_log_lines(report: Report) -> tuple[str, str]:
    """The REPORT-TGZ line (the report directory as base64 of a tar.gz) and the VERDICT-JSON line, in that order."""
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        for path in sorted(report.directory.iterdir()):
            tar.add(path, arcname=path.name)
    verdicts = json.loads(report.verdict.read_text())
    return (REPORT_PREFIX + base64.b64encode(archive.getvalue()).decode(),
            VERDICT_PREFIX + json.dumps(verdicts, separators=(",", ":")))
