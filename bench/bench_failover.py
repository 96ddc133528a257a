"""Producer failover under a broker kill: our producer against the official DefaultMQProducer, same fault, one run.

Starts its own bed of two broker names in `--topology`: lone masters; each master with a slave that a send waits for
(sync-master) or not (async-master); or two replicas a controller elects between (controller, 5.x). For each client
runs the broker-kill experiment (synchronous sends at `--rate` for `--duration` s, SIGKILL of the last broker name's
master of the moment `--kill-at` s after the first message is stored, restart, drain) and reports what the checker
measured: acknowledged, lost and duplicated messages, failed sends, failed attempts, the failover window (first failed
attempt to the first acknowledgement by another broker), latency in and out of the fault, and the sends and answers
that were stored without SEND_OK (a SYNC_MASTER without its slave). Both clients run with the official defaults: 2
retries, no latency fault avoidance, retryAnotherBrokerWhenNotStoreOK off.

Prints one JSON document on stdout; progress goes to stderr. Not a test: it states no goals.

    .venv/bin/python bench/bench_failover.py --rate 200 --duration 30
    .venv/bin/python bench/bench_failover.py --topology sync-master --rocketmq-version 4.9.7 --runs ours,java
"""

import asyncio
import dataclasses
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import click
from benchlib import configure_logging, machine, software

from rocketmq_chaos.experiments import Client, FaultUnderLoad
from rocketmq_chaos.journal import Journal, SendMode
from rocketmq_chaos.verdicts import DeliveryVerdict, Latency
from rocketmq_lab.bed import versions
from rocketmq_lab.bed.rocketmq import RocketMQCluster
from rocketmq_lab.bed.topology import Topology
from rocketmq_lab.chaos.runner import local_fault_under_load

log = logging.getLogger("bench_failover")
# Report key -> producer and send call.
RUNS: dict[str, tuple[Client, SendMode]] = {"ours": ("python", "sync"), "java": ("java", "sync"),
                                            "java_async": ("java", "async"), "java_oneway": ("java", "oneway")}
TOPOLOGIES = [str(t) for t in Topology]


def figures(verdict: DeliveryVerdict) -> dict[str, Any]:
    window = verdict.failover_window_s
    return {
        "passed": verdict.passed, "sent": verdict.sent, "acknowledged": verdict.acknowledged,
        "lost": len(verdict.lost), "duplicates": verdict.duplicates, "failed_sends": verdict.failed_sends,
        "failed_sends_arrived": verdict.failed_arrived, "not_ok_sends": verdict.not_ok_sends,
        "not_ok_attempts": verdict.not_ok_attempts, "resent_not_ok": verdict.resent,
        "resend_duplicates": verdict.resend_duplicates,
        "failed_attempts": verdict.failed_attempts, "oneway_returned": verdict.unacknowledged,
        "oneway_lost": len(verdict.lost_unacknowledged),
        "failover_window_ms": None if window is None else round(window * 1000, 1),
        "latency_ms": rounded(verdict.latency),
        "latency_in_fault_ms": rounded(verdict.latency_in_fault),
        "latency_outside_fault_ms": rounded(verdict.latency_outside_fault),
    }


def rounded(latency: Latency) -> dict[str, float]:
    return {key: round(value, 3) for key, value in dataclasses.asdict(latency).items()}


@click.command()
@click.option("--rocketmq-version", default=versions.ROCKETMQ_5, show_default=True,
              type=click.Choice(list(versions.ROCKETMQ_VERSIONS)))
@click.option("--topology", default=str(Topology.MASTERS), show_default=True, type=click.Choice(TOPOLOGIES),
              help="Lone masters; each master with a slave it waits for (sync-master) or not (async-master); or "
                   "controller mode (5.x), where the killed master's replica is elected.")
@click.option("--rate", default=200.0, show_default=True, help="Sends per second.")
@click.option("--duration", default=30.0, show_default=True, help="Seconds of load per client.")
@click.option("--kill-at", "fault_at", default=5.0, show_default=True, help="Seconds after the first stored message.")
@click.option("--runs", default=",".join(RUNS), show_default=True,
              help="Which producers and send calls to run, comma-separated.")
def main(*, rocketmq_version: str, topology: str, rate: float, duration: float, fault_at: float, runs: str) -> None:
    chosen = runs.split(",")
    if unknown := set(chosen) - set(RUNS):
        raise click.BadParameter(f"unknown {', '.join(sorted(unknown))}; known: {', '.join(RUNS)}",
                                 param_hint="--runs")
    configure_logging()
    workdir = Path(tempfile.mkdtemp(prefix="bench-failover-"))
    cluster = RocketMQCluster(rocketmq_version, workdir, topology=Topology(topology))
    load = os.getloadavg()[0]
    results = {}
    try:
        cluster.start()
        for key in chosen:
            client, mode = RUNS[key]
            log.info("%s: master kill under %g msg/s with the %s producer's %s sends", topology, rate, client, mode)
            plan = FaultUnderLoad(rate=rate, duration=duration, fault_at=fault_at, client=client, send_mode=mode)
            results[key] = figures(asyncio.run(local_fault_under_load(cluster, Journal(), plan)))
    finally:
        cluster.stop()
    shutil.rmtree(workdir)  # kept when anything failed: its logs are named in the error
    click.echo(json.dumps({
        "benchmark": "producer-failover",
        "machine": machine(load),
        "versions": software(rocketmq_version),
        "settings": {"topology": topology, "broker_names": len(cluster.broker_names),
                     "broker_processes": len(cluster.nodes), "rate": rate, "duration_s": duration,
                     "kill_at_s": fault_at, "retry_times_when_send_failed": 2, "latency_fault_avoidance": False,
                     "retry_another_broker_when_not_store_ok": False},
        **results,
    }, indent=2))


if __name__ == "__main__":
    main()
