"""`rocketmq-retry local kill|pause|resume|restart` on real brokers, as a user runs them (separate processes, the
stack's state on disk), with `local status` and the name server judged after each fault."""

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from rocketmq_lab.bed import versions
from rocketmq_lab.bed.processes import wait_until
from rocketmq_lab.bed.rocketmq import RocketMQCluster
from rocketmq_lab.bed.stack import LocalStack

pytestmark = pytest.mark.rocketmq_versions(versions.ROCKETMQ_5)  # the faults are the processes', not the version's
VICTIM = "broker-b"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rocketmq_retry", *args], capture_output=True, text=True, timeout=600,
                          check=False, stdin=subprocess.DEVNULL)


@pytest.fixture
def state_dir(rocketmq_cluster: RocketMQCluster, tmp_path: Path) -> Iterator[str]:
    """The session's brokers as a local stack's state; the victim, restarted by the CLI, handed back afterwards."""
    LocalStack(tmp_path / "stack", rocketmq=rocketmq_cluster).save()
    yield str(tmp_path / "stack")
    restarted = LocalStack.at(tmp_path / "stack").rocketmq
    assert restarted is not None
    rocketmq_cluster.broker(VICTIM).process = restarted.broker(VICTIM).process
    if not rocketmq_cluster.broker(VICTIM).process.running:  # a failed step must not leave the session's bed short
        rocketmq_cluster.restart(VICTIM)


def status(state_dir: str) -> tuple[int, dict[str, str]]:
    shown = cli("local", "status", "--state-dir", state_dir)
    return shown.returncode, {name: p["state"] for name, p in json.loads(shown.stdout)["processes"].items()}


def test_kill_restart_with_wipe_pause_and_resume_a_broker_by_hand(rocketmq_cluster: RocketMQCluster,
                                                                  state_dir: str) -> None:
    everything_up = (0, {"namesrv": "up", "broker-a": "up", VICTIM: "up"})
    assert status(state_dir) == everything_up
    victim = rocketmq_cluster.broker(VICTIM)
    stored = victim.store / "stored-before-the-disk-was-replaced"
    stored.touch()

    killed = cli("local", "kill", VICTIM, "--state-dir", state_dir)
    assert (killed.returncode, killed.stdout) == (0, f"{VICTIM}: down\n"), killed.stderr
    assert status(state_dir) == (1, {"namesrv": "up", "broker-a": "up", VICTIM: "down"})
    wait_until(lambda: VICTIM not in rocketmq_cluster.registered_masters(), timeout=150, interval=1,
               what=f"{VICTIM} gone from the name server")

    restarted = cli("local", "restart", VICTIM, "--wipe", "--state-dir", state_dir)
    assert (restarted.returncode, restarted.stdout) == (0, f"{VICTIM}: up\n"), restarted.stderr
    assert status(state_dir) == everything_up
    assert rocketmq_cluster.registered_masters()[VICTIM] == victim.addr  # `restart` returns once it registered
    assert not stored.exists()

    paused = cli("local", "pause", VICTIM, "--state-dir", state_dir)
    assert (paused.returncode, paused.stdout) == (0, f"{VICTIM}: paused\n"), paused.stderr
    assert status(state_dir) == (1, {"namesrv": "up", "broker-a": "up", VICTIM: "paused"})

    resumed = cli("local", "resume", VICTIM, "--state-dir", state_dir)
    assert (resumed.returncode, resumed.stdout) == (0, f"{VICTIM}: up\n"), resumed.stderr
    assert status(state_dir) == everything_up
