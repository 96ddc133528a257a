"""The convergence benchmark runs end to end, reduced: control plane, two brokers, the operator (under memray),
mqadmin, live official consumers.

It checks the JSON's shape and that every figure was measured; speed goals are the benchmark's readers' business.
A short sweep interval keeps the drift and store-wipe phases, which wait for a sweep, short.
"""

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

BENCH = Path(__file__).parents[2] / "bench" / "bench_convergence.py"
STATS = {"count", "p50_ms", "p99_ms", "mean_ms", "max_ms"}
POLICIES, MQADMIN_GROUPS, SWEEP_INTERVAL, LIVE_CONSUMERS = 20, 2, 2.0, 5


def _positive(values: dict[str, Any], keys: set[str]) -> None:
    assert set(values) >= keys, values
    assert all(values[key] > 0 for key in keys), values


def test_reduced_benchmark_prints_every_figure(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, str(BENCH), "--sizes", str(POLICIES), "--mqadmin-groups",
                             str(MQADMIN_GROUPS), "--sweep-interval", str(SWEEP_INTERVAL), "--timeout", "300",
                             "--memory-dir", str(tmp_path), "--live-consumers", str(LIVE_CONSUMERS)],
                            capture_output=True, text=True, timeout=900, check=False)
    assert result.returncode == 0, result.stderr[-5000:]
    report = json.loads(result.stdout)

    assert report["machine"]["cores"] > 0
    assert report["versions"]["rocketmq"] == "5.5.0"
    assert report["settings"]["sizes"] == [POLICIES]
    assert report["settings"]["sweep_interval_s"] == SWEEP_INTERVAL
    assert set(report["method"]) >= {"one_at_a_time", "convergence", "mqadmin_loop", "drift", "store_wipe",
                                     "operator_memory"}
    mqadmin = report["mqadmin"]
    _positive(mqadmin, {"groups_timed", "calls_timed", "seconds_timed", "seconds_per_group"})
    assert (mqadmin["groups_timed"], mqadmin["calls_timed"]) == (MQADMIN_GROUPS, 2 * MQADMIN_GROUPS)
    _positive(mqadmin["per_call"], STATS)
    _positive(mqadmin["jvm_start"], STATS)

    [size] = report["sizes"]
    assert size["policies"] == POLICIES
    _positive(size["one_at_a_time"], STATS)
    assert size["one_at_a_time"]["count"] == 20
    convergence = size["convergence"]
    _positive(convergence, {"policies", "seconds", "policies_per_s", "created_in_s"})
    _positive(convergence["apply_to_ready"], STATS)
    assert convergence["ready_lost"] >= 0
    assert convergence["apply_to_ready"]["count"] == POLICIES
    _positive(size["drift"], {"repaired_s", "sweep_interval_s"})
    _positive(size["store_wipe"], {"groups", "restart_s", "reapplied_s"})
    assert size["store_wipe"]["groups"] == POLICIES
    operator = size["operator"]
    for memory in (operator["after_warm_up"], operator["after_convergence"], operator["at_end"]):
        _positive(memory, {"peak_rss_mib", "rss_mib"})
    # memray's account of the operator's peak: everything under the operator's command, and by own allocations
    assert "operator_run at " in (tmp_path / f"memory-{POLICIES}.total.txt").read_text()
    assert "<Own Memory>" in (tmp_path / f"memory-{POLICIES}.own.txt").read_text()  # the column sorted on
    _positive(operator["metrics"], {"event_reconciles", "event_reconcile_mean_ms", "sweep_passes",
                                    "sweep_pass_mean_ms"})
    live = size["live_consumers"]
    _positive(live, {"consumers", "sweep_mean_ms_without", "listed_s", "sweep_mean_ms_with"})
    assert live["consumers"] == LIVE_CONSUMERS
    assert live["added_ms_per_sweep"] == round(live["sweep_mean_ms_with"] - live["sweep_mean_ms_without"], 1)
    loop = size["mqadmin_loop"]
    _positive(loop, {"seconds", "operator_speedup"})
    assert loop["extrapolated"] is True
    assert loop["extrapolated_from_groups"] == MQADMIN_GROUPS
