"""The failover benchmark runs end to end, reduced: real bed, a real broker kill, our and the official producer."""

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).parents[2] / "bench" / "bench_failover.py"


def test_reduced_failover_benchmark_measures_both_clients() -> None:
    result = subprocess.run([sys.executable, str(BENCH), "--rate", "100", "--duration", "8", "--kill-at", "2",
                             "--runs", "ours,java"],  # async and oneway: tests/integration/test_chaos_java_probes.py
                            capture_output=True, text=True, timeout=1200, check=False)
    assert result.returncode == 0, result.stderr[-5000:]
    report = json.loads(result.stdout)
    assert report["settings"]["rate"] == 100
    assert "java_async" not in report
    for client in ("ours", "java"):
        figures = report[client]
        assert figures["sent"] >= 700, figures
        assert figures["lost"] == 0, figures  # acknowledged means stored, for either client
        assert figures["failed_attempts"] > 0, figures  # the kill was felt
        assert figures["latency_ms"]["count"] == figures["sent"]
        assert figures["latency_in_fault_ms"]["count"] > 0
