"""The election benchmark runs end to end, reduced: control plane, a 5.5.0 controller-mode bed, the operator, one
kill of a master. It checks the JSON's shape and that every figure was measured."""

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).parents[2] / "bench" / "bench_election.py"


def test_reduced_benchmark_prints_every_figure() -> None:
    result = subprocess.run([sys.executable, str(BENCH), "--policies", "5", "--runs", "1", "--fresh", "3",
                             "--timeout", "300"], capture_output=True, text=True, timeout=900, check=False)
    assert result.returncode == 0, result.stderr[-5000:]
    report = json.loads(result.stdout)

    assert report["versions"]["rocketmq"] == "5.5.0"
    assert report["settings"]["topology"] == "controller"
    [run] = report["runs"]
    assert run["killed"] != run["elected"]
    assert {run["killed"], run["elected"]} == {"broker-a-n0", "broker-a-n1"}
    assert 0 <= run["missing_at_election"] <= run["fresh_policies"] == 3
    for figure in ("election_s", "groups_on_new_master_s", "status_verified_s", "old_master_reported_as_slave_s"):
        assert run[figure] >= 0, run
