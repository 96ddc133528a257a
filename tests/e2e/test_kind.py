"""Chaos in kind for real: `rocketmq-retry kind up` from nothing (engine, images, a 3-node cluster, RocketMQ, the
chart, the sample policy) to in-cluster chaos Jobs with verdicts, then `kind down`. Nothing is mocked or skipped:
without a Docker engine (or the rights to start one) the test fails with the lab's own message."""

import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rocketmq_lab.bed import versions

pytestmark = pytest.mark.timeout(2400)


def cli(*args: str, timeout: float = 2000) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rocketmq_retry", *args], capture_output=True, text=True,
                          timeout=timeout, check=False, stdin=subprocess.DEVNULL)


def _lab(report_dir: Path) -> dict[str, Any]:
    lab: dict[str, Any] = json.loads((report_dir / "lab.json").read_text())
    return lab


def _delivery(verdict: dict[str, Any]) -> dict[str, Any]:
    experiments: dict[str, Any] = verdict["experiments"]
    (only,) = experiments.values()
    return dict(only)


def test_a_port_in_use_is_refused_in_one_line_before_anything_starts() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = cli("kind", "up", f"--api-port={port}", timeout=120)
    assert result.returncode == 1
    assert f"port {port} on 127.0.0.1 is in use" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("version", [versions.ROCKETMQ_5, versions.ROCKETMQ_4])
def test_kind_up_runs_the_chart_rocketmq_and_chaos_jobs_in_the_cluster_and_down_removes_it(
        version: str, tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    # 4.9.7: the broker pod kill and the ladder (the node fault and HA are proven once, on 5.5.0).
    extra = [] if version == versions.ROCKETMQ_5 else ["--no-node-fault", "--no-ha"]
    try:
        up = cli("kind", "up", f"--rocketmq={version}", f"--report-dir={reports}", *extra)
        assert up.returncode == 0, f"{up.stdout[-6000:]}\n{up.stderr[-6000:]}"
        lab = _lab(reports)
        facts = lab["facts"]

        assert set(facts["broker_nodes"]) == {"broker-a", "broker-b"}
        assert len(set(facts["broker_nodes"].values())) == 2, "the brokers must sit on different kind nodes"
        assert facts["operator_security"] == {"readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False}
        assert facts["operator_liveness"] == "/healthz"
        assert facts["policy_status"]["synced"] == "2/2"
        assert facts["mqadmin_orders"] == {b: {"retryMaxTimes": "3", "retryQueueNums": "1"}
                                           for b in ("broker-a", "broker-b")}

        # The broker pod was deleted under load: nothing acknowledged was lost, and the operator re-applied the
        # policy on the new pod (its counters moved, scraped from the pod through a port-forward).
        kill = _delivery(lab["verdicts"]["broker-pod-kill"])
        assert kill["passed"], kill["reasons"]
        assert kill["acknowledged"] > 0
        assert kill["lost"] == []
        (victim,) = facts["reapplied_s"]
        assert facts["reapplied_s"][victim]["after_pod_created"] >= 0
        counters = facts["operator_counters"]
        assert counters["rocketmq_retry_reconciles"]["after"] > counters["rocketmq_retry_reconciles"]["before"]
        assert (counters["rocketmq_retry_drift_corrections"]["after"]
                > counters["rocketmq_retry_drift_corrections"]["before"])

        ladder = _delivery(lab["verdicts"]["retry-ladder"])
        assert ladder["passed"], ladder["reasons"]
        assert [m["dead_letters"] for m in ladder["messages"]] == [1] * len(ladder["messages"])

        assert "namespace team-a is not annotated" in facts["chaos_refused_outside_opt_in"]
        if version == versions.ROCKETMQ_5:
            node = _delivery(lab["verdicts"]["node-pause"])
            assert node["passed"], node["reasons"]
            assert facts["node_paused"]["node"] == facts["broker_nodes"]["broker-b"]
            ha = facts["ha"]
            assert ha["takeover_s"] is not None
            assert ha["leader_last_before_successors_first"] is True
            assert ha["handled_by_successors"] >= ha["burst"]

        for name in lab["verdicts"]:
            copied = Path(lab["reports"][name])
            assert (copied / "verdict.json").is_file()
            assert (copied / "journal.jsonl").is_file()
        assert "Chaos verdicts in kind" in up.stdout
    finally:
        down = cli("kind", "down", timeout=600)
    assert down.returncode == 0, down.stderr
    assert "kind cluster rocketmq-retry" in down.stdout
    again = cli("kind", "down", timeout=120)
    assert "nothing of the kind lab was running" in again.stdout
