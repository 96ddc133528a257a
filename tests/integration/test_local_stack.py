"""`rocketmq-retry local up|status|down` as a user runs it: a separate process, state kept on disk."""

import json
import os
import subprocess
import sys
from pathlib import Path

from rocketmq_retry.bed.stack import LocalStack


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


def test_up_is_idempotent_and_down_leaves_nothing_running(tmp_path: Path) -> None:
    state = str(tmp_path / "stack")
    first = cli("local", "up", "--state-dir", state)
    assert first.returncode == 0, first.stderr
    assert "name server: 127.0.0.1:" in first.stdout
    kubeconfig = next(line.split(": ", 1)[1].strip() for line in first.stdout.splitlines()
                      if line.startswith("kubeconfig:"))
    assert Path(kubeconfig).exists()

    status = cli("local", "status", "--state-dir", state)
    assert status.returncode == 0, status.stdout
    processes = json.loads(status.stdout)["processes"]
    assert set(processes) == {"etcd", "kube-apiserver", "kube-controller-manager", "namesrv", "broker-a",
                              "broker-b"}
    pids = {name: info["pid"] for name, info in processes.items()}
    assert all(_alive(pid) for pid in pids.values())

    again = cli("local", "up", "--state-dir", state)
    assert again.returncode == 0, again.stderr
    assert {n: i["pid"] for n, i in json.loads(cli("local", "status", "--state-dir", state).stdout)["processes"]
            .items()} == pids, "a second `up` must keep the running stack"

    down = cli("local", "down", "--state-dir", state)
    assert down.returncode == 0, down.stderr
    assert [pid for pid in pids.values() if _alive(pid)] == []
    assert not LocalStack.at(Path(state)).processes
    assert cli("local", "status", "--state-dir", state).returncode == 1
