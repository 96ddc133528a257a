"""The protocol benchmark runs end to end, reduced: real bed, our client, the compiled official Java clients.

It checks the JSON's shape and that every figure was measured; speed goals are the benchmark's readers' business.
"""

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).parents[2] / "bench" / "bench_protocol.py"
STATS = {"count", "p50_ms", "p99_ms", "mean_ms", "ops_per_s"}
RATIOS = {"p50_ms", "p99_ms", "mean_ms", "ops_per_s"}


def _positive(values: dict[str, float], keys: set[str]) -> None:
    assert set(values) >= keys, values
    assert all(values[key] > 0 for key in keys), values


def test_reduced_benchmark_prints_every_figure() -> None:
    result = subprocess.run([sys.executable, str(BENCH), "--calls", "50", "--messages", "50", "--warmup", "50",
                             "--batch-rounds", "3"], capture_output=True, text=True, timeout=1100, check=False)
    assert result.returncode == 0, result.stderr[-5000:]
    report = json.loads(result.stdout)

    assert report["machine"]["cores"] > 0
    assert report["versions"]["rocketmq"] == "5.5.0"
    assert report["versions"]["java"]
    assert report["settings"] == {"brokers": 2, "calls": 50, "messages": 50, "message_bytes": 1024, "warmup": 50,
                                  "batch_rounds": 3}
    for operation in ("update_subgroup", "send"):
        _positive(report[operation]["ours"], STATS)
        _positive(report[operation]["java"], STATS)
        _positive(report[operation]["ours_to_java"], RATIOS)
        assert report[operation]["ours"]["count"] == report[operation]["java"]["count"] == 50
    batch = report["update_subgroups_batch"]
    _positive(batch["ours"], STATS | {"groups_per_call"})
    assert (batch["ours"]["count"], batch["ours"]["groups_per_call"]) == (3, 50)
    _positive(batch["ours_to_java_single"], {"ops_per_s"})
