"""Chaos in kind, measured: one `rocketmq-retry kind up` run, its figures as one JSON document.

From nothing to verdicts in a kind cluster built here (see README, "Chaos in kind"), then the numbers the run's
checkers and the lab measured: producer failover under a broker pod delete (our probe, as an in-cluster Job:
acknowledged, lost, lost with the deleted emptyDir store, failed sends, failover window, p99 in the fault), the
operator's re-apply on the new broker pod (after the pod was created and after its container started), the same
under a paused broker node, and the HA takeover when the leading operator pod is deleted in a burst of policies.
The cluster is removed at the end unless --keep.

Prints one JSON document on stdout; progress goes to stderr. Not a test: it states no goals.

    .venv/bin/python bench/bench_kind.py [--rocketmq-version 4.9.7]
"""

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import click
from benchlib import configure_logging, machine, software

from rocketmq_lab.bed import versions
from rocketmq_lab.bed.kind.lab import Lab, LabOptions, down


def delivery(verdict: dict[str, Any]) -> dict[str, Any]:
    """The failover figures of one in-cluster delivery verdict (verdict.json as the Job returned it)."""
    (figures,) = verdict["experiments"].values()
    window = figures["failover_window_s"]
    return {"passed": figures["passed"], "sent": figures["sent"], "acknowledged": figures["acknowledged"],
            "lost": len(figures["lost"]), "lost_with_store": len(figures["lost_with_store"]),
            "failed_sends": figures["failed_sends"], "failed_attempts": figures["failed_attempts"],
            "failover_window_ms": None if window is None else round(window * 1000, 1),
            "p99_ms": round(figures["latency"]["p99_ms"], 1),
            "p99_in_fault_ms": round(figures["latency_in_fault"]["p99_ms"], 1)}


@click.command()
@click.option("--rocketmq-version", default=versions.ROCKETMQ_5, show_default=True,
              type=click.Choice(list(versions.ROCKETMQ_VERSIONS)))
@click.option("--keep", is_flag=True, help="Leave the cluster running (`rocketmq-retry kind down` removes it).")
def main(rocketmq_version: str, keep: bool) -> None:
    configure_logging()
    load = os.getloadavg()[0]
    reports = Path(tempfile.mkdtemp(prefix="bench-kind-"))
    started = time.monotonic()
    try:
        run = Lab(LabOptions(rocketmq_version=rocketmq_version, report_dir=reports)).up()
    finally:
        if not keep:
            down()
    facts = run.facts
    click.echo(json.dumps({
        "benchmark": "chaos-in-kind",
        "machine": machine(load),
        "versions": software(rocketmq_version, kubernetes=versions.KUBERNETES, kind=versions.KIND),
        "total_s": round(time.monotonic() - started, 1),
        "steps_s": run.steps,
        "broker_pod_delete": delivery(run.verdicts["broker-pod-kill"]),
        "operator_reapplied_s": facts.get("reapplied_s"),
        "broker_node_paused": {**delivery(run.verdicts["node-pause"]), "paused_s": round(
            facts["node_paused"]["resumed_at"] - facts["node_paused"]["at"], 1)},
        "ha": facts.get("ha"),
        "operator_counters": facts.get("operator_counters"),
        "reports": str(reports),
    }, indent=2))


if __name__ == "__main__":
    main()
