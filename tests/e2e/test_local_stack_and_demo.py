"""The README's main job as a user runs it: `local up|status|down` and `demo`, separate processes, state on disk."""

import json
import os
import subprocess
import sys
from pathlib import Path

from rocketmq_lab.bed.stack import LocalStack

EXPERIMENTS = Path(__file__).resolve().parents[2] / "chaos" / "experiments"


def cli(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rocketmq_retry", *args], capture_output=True, text=True,
                          timeout=timeout, check=False, stdin=subprocess.DEVNULL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    return state != "Z"


def _pids(state: str) -> dict[str, int]:
    status = cli("local", "status", "--state-dir", state)
    assert status.returncode == 0, status.stdout
    return {name: info["pid"] for name, info in json.loads(status.stdout)["processes"].items()}


def test_up_is_idempotent_the_demo_passes_on_it_and_down_leaves_nothing_running(tmp_path: Path) -> None:
    state = str(tmp_path / "stack")
    first = cli("local", "up", "--state-dir", state)
    assert first.returncode == 0, first.stderr
    assert "name server: 127.0.0.1:" in first.stdout
    kubeconfig = next(line.split(": ", 1)[1].strip() for line in first.stdout.splitlines()
                      if line.startswith("kubeconfig:"))
    assert Path(kubeconfig).exists()

    pids = _pids(state)
    assert set(pids) == {"etcd", "kube-apiserver", "kube-controller-manager", "namesrv", "broker-a", "broker-b"}
    assert all(_alive(pid) for pid in pids.values())

    again = cli("local", "up", "--state-dir", state)
    assert again.returncode == 0, again.stderr
    assert _pids(state) == pids, "a second `up` must keep the running stack"

    demo = cli("demo", "--short", "--state-dir", state)
    assert demo.returncode == 0, demo.stdout[-4000:] + demo.stderr[-4000:]
    [report] = (Path(state) / "reports").iterdir()
    verdict = json.loads((report / "verdict.json").read_text())
    assert verdict["passed"], verdict
    assert set(verdict["experiments"]) == {"broker-kill-under-load", "retry-ladder"}
    assert verdict["experiments"]["broker-kill-under-load"]["failed_attempts"] > 0  # the kill was really felt
    assert sorted(p.name for p in report.glob("*.png")) == ["retry-ladder-ladder.png", "send-latency.png"]
    assert (report / "journal.jsonl").stat().st_size > 0
    assert "broker-kill-under-load" in demo.stdout

    # The same experiments under Chaos Toolkit, and our checker failing a run that must fail.
    chaos_toolkit = str(Path(sys.executable).parent / "chaos")
    toolkit = subprocess.run([chaos_toolkit, "run", str(EXPERIMENTS / "retry-ladder.json")],
                             capture_output=True, text=True, timeout=600, check=False, cwd=tmp_path,
                             env={**os.environ, "ROCKETMQ_RETRY_STATE_DIR": state}, stdin=subprocess.DEVNULL)
    assert toolkit.returncode == 0, toolkit.stdout[-3000:] + toolkit.stderr[-3000:]
    assert json.loads((tmp_path / "journal.json").read_text())["status"] == "completed"
    without_retries = cli("chaos", "run", "broker-kill-without-retries", "--state-dir", state)
    assert without_retries.returncode == 1, without_retries.stdout + without_retries.stderr
    assert "verdict: FAIL" in without_retries.stdout
    assert "failed after all retries" in without_retries.stdout

    restarted = _pids(state)  # the experiments restarted the killed broker: `down` must know its new PID
    assert restarted["broker-b"] != pids["broker-b"]

    down = cli("local", "down", "--state-dir", state)
    assert down.returncode == 0, down.stderr
    assert [pid for pid in {*pids.values(), *restarted.values()} if _alive(pid)] == []
    assert not LocalStack.at(Path(state)).processes
    assert cli("local", "status", "--state-dir", state).returncode == 1
