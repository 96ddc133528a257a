"""Small Java programs shipped with the bed (`toolchains/java`), compiled once per RocketMQ version against its jars.

They drive the official Java clients (DefaultMQAdminExt, DefaultMQProducer, …) against the bed, so benchmarks and
chaos probes can put ours and the official ones side by side in one run. The compiled classes are cached next to
the jars, keyed by the version and a hash of the sources: editing a source recompiles, nothing else does.
"""

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from . import artifacts, jvm, maven, paths, prerequisites

SOURCES = paths.TOOLCHAINS / "java"


def _sources() -> list[Path]:
    return sorted(SOURCES.glob("*.java"))


def sources_digest() -> str:
    """A short hash of every shipped source, names included (a renamed class is a different program)."""
    digest = hashlib.sha256()
    for source in _sources():
        digest.update(source.name.encode() + b"\0" + source.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


@dataclass(frozen=True)
class JavaPrograms:
    """The compiled programs and the RocketMQ jars they run against."""

    lib: Path
    classes: Path

    def argv(self, main_class: str, *args: str, home: Path, options: Sequence[str] = ()) -> list[str]:
        """`java … main_class args…`; `options` (heap, jvm.FAST_START, …) are the caller's, as speed needs differ."""
        return [*jvm.java_argv([str(self.classes), f"{self.lib}/*"], main_class, home=home, options=options), *args]


def compiled(version: str) -> JavaPrograms:
    """The shipped programs compiled against RocketMQ `version` (resolving its jars first if needed)."""
    lib = maven.rocketmq_lib(version)
    target = paths.cache_root() / "rocketmq" / f"{version}-java-{sources_digest()}"

    def build(out: Path) -> None:
        javac = prerequisites.require(prerequisites.JAVAC)
        artifacts.run_logged([javac, "--release", "17", "-encoding", "UTF-8", "-cp", f"{lib}/*",
                              "-d", str(out / "classes"), *map(str, _sources())], log_file=out.with_suffix(".log"))

    programs = artifacts.ensure(target, f"Java programs for RocketMQ {version}", build, needs=(prerequisites.JAVAC,))
    return JavaPrograms(lib, programs / "classes")
