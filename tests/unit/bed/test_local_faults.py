"""`rocketmq-retry local kill|pause|resume|restart PART` on a stack of stand-in processes: which part, what
`local status` says after each fault, and what is refused. tests/integration/test_local_faults.py does it to brokers."""

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from rocketmq_chaos import injectors
from rocketmq_lab.bed import rocketmq
from rocketmq_lab.bed.processes import ManagedProcess
from rocketmq_lab.bed.rocketmq import Broker, RocketMQCluster, UnknownPart
from rocketmq_lab.bed.stack import LocalStack
from rocketmq_retry.cli import main


def _sleeper(name: str, tmp_path: Path) -> ManagedProcess:
    process = ManagedProcess(name, ["sleep", "120"], log_path=tmp_path / f"{name}.log")
    process.start()
    return process


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[LocalStack]:
    """A saved stack whose name server and brokers are `sleep` processes."""
    brokers = [Broker(name, 10911 + 4 * index, tmp_path / name, _sleeper(name, tmp_path), name, 0)
               for index, name in enumerate(("broker-a", "broker-b"))]
    cluster = RocketMQCluster("5.5.0", tmp_path / "rocketmq", namesrv=_sleeper("namesrv", tmp_path), nodes=brokers)
    local = LocalStack(tmp_path / "stack", rocketmq=cluster)
    local.save()
    yield local
    for process in cluster.processes:
        process.kill()


def local(stack: LocalStack, *args: str) -> Result:
    return CliRunner().invoke(main, ["local", *args, "--state-dir", str(stack.root)])


def states(stack: LocalStack) -> tuple[int, dict[str, str]]:
    status = local(stack, "status")
    return status.exit_code, {name: p["state"] for name, p in json.loads(status.output)["processes"].items()}


def test_status_reports_a_killed_part_down_and_a_paused_one_paused_until_it_is_resumed(stack: LocalStack) -> None:
    assert states(stack) == (0, {"namesrv": "up", "broker-a": "up", "broker-b": "up"})

    paused = local(stack, "pause", "broker-a")
    assert (paused.exit_code, paused.output) == (0, "broker-a: paused\n")
    assert states(stack) == (1, {"namesrv": "up", "broker-a": "paused", "broker-b": "up"})

    resumed = local(stack, "resume", "broker-a")
    assert (resumed.exit_code, resumed.output) == (0, "broker-a: up\n")
    assert states(stack) == (0, {"namesrv": "up", "broker-a": "up", "broker-b": "up"})

    killed = local(stack, "kill", "namesrv")
    assert (killed.exit_code, killed.output) == (0, "namesrv: down\n")
    assert states(stack) == (1, {"namesrv": "down", "broker-a": "up", "broker-b": "up"})


def test_an_unknown_part_is_refused_with_the_parts_there_are(stack: LocalStack) -> None:
    refused = local(stack, "kill", "broker-z")
    assert refused.exit_code == 2
    assert "no part 'broker-z' in this bed; its parts are namesrv, broker-a, broker-b" in refused.output
    assert states(stack)[0] == 0


def test_only_a_broker_has_a_store_to_wipe(stack: LocalStack) -> None:
    refused = local(stack, "restart", "namesrv", "--wipe")
    assert refused.exit_code == 2
    assert "namesrv keeps no store to wipe: only brokers do" in refused.output
    assert states(stack)[0] == 0


def test_a_restart_with_wipe_starts_the_same_command_on_an_empty_store(stack: LocalStack) -> None:
    assert stack.rocketmq is not None
    broker = stack.rocketmq.broker("broker-b")
    (broker.store / "commitlog").mkdir(parents=True)
    before = broker.process.pid

    stack.rocketmq.restart("broker-b", wipe_store=True, wait=False)  # `sleep` never listens: no waiting here

    assert not broker.store.exists()
    assert broker.process.running
    assert broker.process.pid != before
    assert broker.process.argv == ["sleep", "120"]


def test_no_stack_means_nothing_to_fault(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["local", "pause", "broker-a", "--state-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "no local stack in" in result.output


def test_the_parts_are_named_as_their_processes_and_as_the_experiments_name_their_targets(stack: LocalStack) -> None:
    assert stack.rocketmq is not None
    assert stack.rocketmq.part_names == ["namesrv", "broker-a", "broker-b"]
    assert rocketmq.NAME_SERVER == injectors.NAME_SERVER  # the LocalInjector passes experiment targets on as parts
    with pytest.raises(UnknownPart, match="its parts are namesrv, broker-a, broker-b"):
        stack.rocketmq.part("proxy")
