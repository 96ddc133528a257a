"""Child processes of the bed: started detached, logged to files, signalled as a process group."""

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class ProcessFailed(RuntimeError):
    """A bed process exited or did not become ready; the message carries its log path and tail."""


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (state first); None once the process is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()


def _start_ticks(pid: int) -> int | None:
    """Kernel start time of `pid`, so a recorded PID is never mistaken for a recycled one."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else None


def _live_threads(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return 0


def process_state(pid: int) -> str | None:
    """The kernel's one-letter state of `pid` (R, S, D, T, Z, …); None once it is gone."""
    fields = _stat_fields(pid)
    return fields[0] if fields else None


@dataclass
class ManagedProcess:
    """One long-running bed process (etcd, kube-apiserver, a name server, a broker, …)."""

    name: str
    argv: list[str]
    log_path: Path
    env: dict[str, str] | None = None
    cwd: Path | None = None
    pid: int | None = None
    start_ticks: int | None = None
    _child: "subprocess.Popen[bytes] | None" = field(default=None, repr=False, compare=False)

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            log.write(f"\n==== {time.strftime('%Y-%m-%dT%H:%M:%S')} starting: {' '.join(self.argv)}\n".encode())
            log.flush()
            self._child = subprocess.Popen(
                self.argv, cwd=self.cwd, env={**os.environ, **(self.env or {})}, stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        self.pid = self._child.pid
        self.start_ticks = _start_ticks(self._child.pid)

    @property
    def running(self) -> bool:
        """Alive and still the process we started (not a zombie, not a recycled PID)."""
        if self.pid is None or _start_ticks(self.pid) != self.start_ticks:
            return False
        state = process_state(self.pid)
        if state is None:
            return False
        if state == "Z":
            # A JVM's main thread turns zombie before its other threads finish exiting, and those still hold the
            # listening sockets; the process is gone only once no thread is left (then it can be reaped).
            if _live_threads(self.pid) > 1:
                return True
            self._reap()
            return False
        return True

    @property
    def state(self) -> str:
        """`up`, `paused` (stopped by SIGSTOP: alive, answering nothing) or `down`."""
        if not self.running:
            return "down"
        return "paused" if self.pid is not None and process_state(self.pid) == "T" else "up"

    def _reap(self) -> None:
        # A process adopted from a state file is not our child: its own parent reaps it.
        if self._child is not None:
            self._child.poll()

    def send(self, sig: signal.Signals) -> None:
        """Signal the whole process group, as the JVM and Go servers may fork helpers."""
        if self.running and self.pid is not None:
            os.killpg(self.pid, sig)

    def pause(self, timeout: float = 10.0) -> None:
        """SIGSTOP, returning once the kernel reports the process stopped (signal delivery is asynchronous)."""
        self.send(signal.SIGSTOP)
        self._wait_state(lambda state: state == "T", timeout, "stopped")

    def resume(self, timeout: float = 10.0) -> None:
        """SIGCONT, returning once the process is no longer stopped."""
        self.send(signal.SIGCONT)
        self._wait_state(lambda state: state != "T", timeout, "resumed")

    def _wait_state(self, reached: Callable[[str], bool], timeout: float, what: str) -> None:
        def state_reached() -> bool:
            state = process_state(self.pid) if self.running and self.pid is not None else None
            return state is not None and reached(state)

        wait_until(state_reached, timeout=timeout, interval=0.02, process=self, what=what)

    def kill(self, timeout: float = 10.0) -> None:
        self.send(signal.SIGKILL)
        self.wait_gone(timeout)

    def stop(self, timeout: float = 20.0) -> bool:
        """SIGTERM, then SIGKILL after `timeout`; a paused process is resumed so it can exit.

        Returns whether the process exited on SIGTERM (False if it had to be killed).
        """
        return stop_together([self], timeout)

    def wait_gone(self, timeout: float) -> bool:
        """Whether the process is gone within `timeout` seconds (every thread: see `running`)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running:
                return True
            time.sleep(0.05)
        return not self.running

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def failure(self, reason: str, *extra_logs: Path) -> ProcessFailed:
        logs = ", ".join(str(path) for path in (self.log_path, *extra_logs))
        return ProcessFailed(f"{self.name}: {reason}; logs: {logs}\n--- tail of {self.log_path}:\n{self.log_tail()}")

    def to_record(self) -> dict[str, Any]:
        return {"name": self.name, "argv": self.argv, "log_path": str(self.log_path), "env": self.env,
                "cwd": str(self.cwd) if self.cwd else None, "pid": self.pid, "start_ticks": self.start_ticks}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> "ManagedProcess":
        return cls(name=record["name"], argv=record["argv"], log_path=Path(record["log_path"]), env=record["env"],
                   cwd=Path(record["cwd"]) if record["cwd"] else None, pid=record["pid"],
                   start_ticks=record["start_ticks"])


def wait_until(predicate: Callable[[], T | None], *, timeout: float, interval: float = 0.25,
               process: ManagedProcess | None = None, what: str = "ready") -> T:
    """Poll `predicate` until it returns something truthy, and return that; fail fast with the log tail if
    `process` dies meanwhile."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and not process.running:
            raise process.failure(f"exited before it was {what}")
        if value := predicate():
            return value
        time.sleep(interval)
    if process is not None:
        raise process.failure(f"not {what} after {timeout:.0f} s")
    raise TimeoutError(f"not {what} after {timeout:.0f} s")


def stop_together(processes: Iterable[ManagedProcess], timeout: float = 20.0) -> bool:
    """Stop `processes` at once: SIGTERM to each (resumed first if paused), SIGKILL after `timeout` to any still
    running. JVM brokers take seconds each to run their shutdown hooks (6-12 s in controller mode), so stopping them
    together costs the slowest one's time instead of the sum. Returns whether every one exited on SIGTERM."""
    running = [process for process in processes if process.running]
    for process in running:
        process.send(signal.SIGCONT)
        process.send(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    killed = [process for process in running if not process.wait_gone(deadline - time.monotonic())]
    for process in killed:
        process.kill()
    return not killed
