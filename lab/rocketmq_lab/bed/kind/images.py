"""Container images from local parts only: Debian root filesystems (mmdebstrap) and our own binaries.

No registry can be reached, so every image a kind cluster runs is made here. An image's tag is a digest
of everything it is made from (packages, files, build arguments), so a second run finds it and builds
nothing, and a changed input can never be served by a stale image. Root filesystems are also kept as
tarballs in the user's cache, so a fresh Docker data root re-imports them in seconds instead of
re-running mmdebstrap.
"""

import hashlib
import io
import logging
import shutil
import tarfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from .. import artifacts, paths
from ..prerequisites import MissingPrerequisite
from .engine import docker

log = logging.getLogger(__name__)

SUITE: Final = "bookworm"
REPOSITORY: Final = "rocketmq-retry-lab"


def digest(*parts: bytes | str) -> str:
    hasher = hashlib.sha256()
    for part in parts:
        hasher.update(part.encode() if isinstance(part, str) else part)
        hasher.update(b"\0")
    return hasher.hexdigest()[:16]


def tree_digest(paths_: Iterable[Path], root: Path) -> str:
    """A digest of file names (relative to `root`), modes and contents under `paths_`, skipping what .dockerignore
    keeps out of a build context (byte code, the egg-info an editable install writes next to the sources)."""
    parts: list[bytes | str] = []
    for top in paths_:
        files = sorted(p for p in ([top] if top.is_file() else top.rglob("*")) if p.is_file()
                       and not any(part == "__pycache__" or part.endswith(".egg-info") for part in p.parts))
        for file in files:
            parts += [str(file.relative_to(root)), oct(file.stat().st_mode & 0o111), file.read_bytes()]
    return digest(*parts)


def exists(ref: str) -> bool:
    return docker("image", "inspect", "--format", "{{.Id}}", ref, check=False, timeout=30).returncode == 0


@dataclass(frozen=True)
class Rootfs:
    """A Debian root filesystem of `packages` (minbase variant), plus files copied in after the install."""

    name: str
    packages: tuple[str, ...]
    copy_in: Mapping[str, Path] = field(default_factory=dict)  # path in the rootfs -> file on the host
    customize: tuple[str, ...] = ()  # shell commands run chrooted after the install

    @property
    def key(self) -> str:
        return digest(SUITE, *self.packages, *self.customize,
                      *(f"{target}={source.read_bytes().hex()}" for target, source in sorted(self.copy_in.items())))

    @property
    def ref(self) -> str:
        return f"{REPOSITORY}/{self.name}:{self.key}"

    def tarball(self) -> Path:
        target = paths.cache_root() / "rootfs" / f"{self.name}-{self.key}"
        return artifacts.ensure(target, f"the {self.name} root filesystem", self._build) / "rootfs.tar"

    def _build(self, out: Path) -> None:
        mmdebstrap = shutil.which("mmdebstrap")
        if mmdebstrap is None:
            raise MissingPrerequisite("mmdebstrap not found: apt-get install mmdebstrap")
        argv = [mmdebstrap, "--variant=minbase", "--mode=root", "--quiet",
                "--include=" + ",".join(self.packages)]
        for target, source in sorted(self.copy_in.items()):
            argv.append(f"--customize-hook=mkdir -p \"$1{Path(target).parent}\"")
            argv.append(f"--customize-hook=copy-in {source} {Path(target).parent}")
        argv += [f"--customize-hook=chroot \"$1\" sh -euc '{command}'" for command in self.customize]
        argv += ["--customize-hook=rm -rf \"$1/var/cache/apt/archives\"/*.deb \"$1/var/lib/apt/lists\"/*",
                 SUITE, str(out / "rootfs.tar")]
        artifacts.run_logged(argv, log_file=out.with_suffix(".log"))

    def image(self) -> str:
        """The rootfs as a Docker image (imported from the cached tarball when the engine lacks it)."""
        if not exists(self.ref):
            with self.tarball().open("rb") as tar:
                docker("import", "-", self.ref, input_bytes=tar.read())
        return self.ref


def build(name: str, context: Path, *, dockerfile: Path | None = None, build_args: Mapping[str, str] | None = None,
          inputs: Iterable[Path] = ()) -> str:
    """`docker build` of `context`, tagged by a digest of `inputs` (default: the whole context) and the arguments."""
    args = dict(sorted((build_args or {}).items()))
    files = list(inputs) or [context]
    key = digest(tree_digest(files, context), *(f"{k}={v}" for k, v in args.items()),
                 (dockerfile or context / "Dockerfile").read_bytes())
    ref = f"{REPOSITORY}/{name}:{key}"
    if exists(ref):
        return ref
    log.info("building image %s", ref)
    argv = ["build", "--quiet", "-t", ref]
    if dockerfile is not None:
        argv += ["-f", str(dockerfile)]
    for arg, value in args.items():
        argv += ["--build-arg", f"{arg}={value}"]
    docker(*argv, str(context), timeout=1800)
    return ref


def build_from_files(name: str, base: str, files: Mapping[str, tuple[bytes, int]], instructions: str = "") -> str:
    """An image of `base` plus `files` (absolute path in the image -> content, mode) and Dockerfile `instructions`,
    built from a context assembled in memory, so binaries from the cache need no staging directory."""
    dockerfile = f"FROM {base}\n" + ("COPY rootfs/ /\n" if files else "") + instructions
    key = digest(base, dockerfile, *(f"{p}:{mode:o}:{hashlib.sha256(data).hexdigest()}"
                                    for p, (data, mode) in sorted(files.items())))
    ref = f"{REPOSITORY}/{name}:{key}"
    if exists(ref):
        return ref
    log.info("building image %s", ref)
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        for entry, (data, mode) in [("Dockerfile", (dockerfile.encode(), 0o644)),
                                    *((f"rootfs{p}", blob) for p, blob in sorted(files.items()))]:
            info = tarfile.TarInfo(entry)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    docker("build", "--quiet", "-t", ref, "-", input_bytes=context.getvalue(), timeout=1800)
    return ref


def binary(path: Path) -> tuple[bytes, int]:
    return path.read_bytes(), 0o755


def tag(source: str, *targets: str) -> None:
    for target in targets:
        docker("tag", source, target)
