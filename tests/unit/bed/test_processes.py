import signal
from pathlib import Path

import pytest

from rocketmq_lab.bed.processes import ManagedProcess, ProcessFailed, process_state, wait_until


@pytest.fixture
def sleeper(tmp_path: Path) -> ManagedProcess:
    process = ManagedProcess("sleeper", ["sh", "-c", "echo started; exec sleep 60"], log_path=tmp_path / "s.log")
    process.start()
    yield process
    process.kill()


def test_pause_and_resume_return_once_the_kernel_reports_the_new_state(sleeper: ManagedProcess) -> None:
    assert sleeper.running
    assert sleeper.pid is not None
    sleeper.pause()
    assert process_state(sleeper.pid) == "T"
    sleeper.resume()
    # D too: a resumed process may be in uninterruptible sleep for a moment on a busy machine (seen in CI).
    assert process_state(sleeper.pid) in {"R", "S", "D"}
    sleeper.kill()
    assert not sleeper.running


def test_stop_resumes_a_paused_process_so_it_can_exit(sleeper: ManagedProcess) -> None:
    sleeper.pause()
    assert sleeper.stop(timeout=60), "needed SIGKILL"
    assert not sleeper.running


def test_a_record_never_matches_a_recycled_pid(sleeper: ManagedProcess) -> None:
    record = sleeper.to_record()
    adopted = ManagedProcess.from_record(record)
    assert adopted.running
    impostor = ManagedProcess.from_record({**record, "start_ticks": (record["start_ticks"] or 0) + 1})
    assert not impostor.running
    impostor.send(signal.SIGKILL)  # must be a no-op: the PID is not the process it recorded
    assert sleeper.running


def test_early_exit_fails_fast_with_the_log_tail(tmp_path: Path) -> None:
    doomed = ManagedProcess("doomed", ["sh", "-c", "echo 'bad config: nope'; exit 3"], log_path=tmp_path / "d.log")
    doomed.start()
    with pytest.raises(ProcessFailed, match=r"(?s)doomed: exited before it was ready.*bad config: nope"):
        wait_until(lambda: False, timeout=10, process=doomed)
