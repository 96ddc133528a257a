"""Class-data-sharing archives for the RocketMQ JVMs, recorded once per RocketMQ and Java version.

On a 2-core machine a cold name server, broker or proxy spends most of its start loading and verifying
classes from ~100 jars; a dynamic CDS archive cuts a name server's start from ~8 s to ~3 s. The archives
are an optimisation only: a JVM given a missing or stale archive starts normally (-Xshare:auto).
"""

import hashlib
import logging
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from . import artifacts, paths, prerequisites

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClassArchives:
    """Where each role's archive lives, and whether this run records them (at JVM exit) or uses them."""

    directory: Path
    recording: bool = False

    def jvm_options(self, role: str) -> list[str]:
        archive = self.directory / f"{role}.jsa"
        if self.recording:
            return [f"-XX:ArchiveClassesAtExit={archive}"]
        return [f"-XX:SharedArchiveFile={archive}"] if archive.exists() else []


@cache
def java_fingerprint() -> str:
    """A short key of the exact JVM build: an archive only maps into the JVM that wrote it."""
    java = prerequisites.require(prerequisites.JAVA)
    banner = subprocess.run([java, "-version"], capture_output=True, text=True, check=False).stderr
    return hashlib.sha256(banner.encode()).hexdigest()[:12]


def ensure(version: str, record: Callable[[ClassArchives], None]) -> ClassArchives:
    """The archives for `version`, recorded first by `record` (a short bed run) unless cached.

    A failed recording is logged and this run starts without archives; the next run records again.
    """
    target = paths.cache_root() / "rocketmq" / f"{version}-cds-{java_fingerprint()}"

    def build(out: Path) -> None:
        record(ClassArchives(out, recording=True))
        shutil.rmtree(out / "work", ignore_errors=True)

    try:
        return ClassArchives(artifacts.ensure(target, f"class-data archives for RocketMQ {version}", build))
    except Exception as error:  # an optimisation must never break the bed
        log.warning("recording class-data archives for RocketMQ %s failed (%s); starting without them", version, error)
        return ClassArchives(target)
