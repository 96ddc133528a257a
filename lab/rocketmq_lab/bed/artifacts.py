"""Build-once artifacts in the user's cache: locked, atomic, and logged to a file."""

import fcntl
import logging
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from . import prerequisites

log = logging.getLogger(__name__)

_COMPLETE = ".complete"


class BuildFailed(RuntimeError):
    """An artifact could not be built; the message names the log file and quotes its tail."""


@contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure(target: Path, describe: str, build: Callable[[Path], None],
           needs: Sequence[prerequisites.Tool] = ()) -> Path:
    """Return `target`, building it first unless a complete copy is cached.

    The build writes into a sibling directory that is renamed into place only when it finished,
    so an interrupted build never leaves a half artifact that later runs would trust. The tools
    in `needs` are checked only when a build is due, so a warm cache works without them.
    """
    if (target / _COMPLETE).exists():
        return target
    with _exclusive(target.with_name(target.name + ".lock")):
        if (target / _COMPLETE).exists():
            return target
        for tool in needs:
            prerequisites.require(tool)
        partial = target.with_name(target.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        log.info("building %s (first run only; cached in %s)", describe, target)
        started = time.monotonic()
        build(partial)
        (partial / _COMPLETE).write_text(f"{describe}\n")
        shutil.rmtree(target, ignore_errors=True)
        partial.rename(target)
        log.info("built %s in %.0f s", describe, time.monotonic() - started)
    return target


def run_logged(argv: Sequence[str], *, log_file: Path, cwd: Path | None = None,
               env: Mapping[str, str] | None = None) -> None:
    """Run a build step with its output in `log_file`; fail with the log's tail, not a bare exit code."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    full_env = {**os.environ, **(env or {})}
    with log_file.open("ab") as out:
        result = subprocess.run(list(argv), cwd=cwd, env=full_env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, check=False)
    if result.returncode != 0:
        tail = "\n".join(log_file.read_text(errors="replace").splitlines()[-25:])
        raise BuildFailed(f"`{' '.join(argv[:3])} …` failed (exit {result.returncode}); log: {log_file}\n{tail}")
