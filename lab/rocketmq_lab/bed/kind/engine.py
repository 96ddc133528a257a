"""A Docker engine for the kind lab: the one that answers, or Debian's `docker.io` started here.

No container registry is reachable and the machine has no systemd, so when no engine answers the lab
installs Debian's packages and starts `dockerd` itself, recording it so `kind down` stops what `kind up`
started and nothing else. Some VMs lack CAP_SYS_RESOURCE in their capability bounding set, which makes
every privileged container (a kind node is one) fail in runc; the engine then runs containers through
`runc-without-sys-resource`, which drops that one capability from the OCI spec.
"""

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Final

from ..prerequisites import MissingPrerequisite
from ..processes import ManagedProcess, wait_until

DEBIAN_PACKAGES: Final = ("docker.io", "containerd", "runc", "iptables", "jq", "mmdebstrap", "uidmap")
CAP_SYS_RESOURCE: Final = 24
RUNC_WRAPPER: Final = Path(__file__).with_name("runc-without-sys-resource")
WRAPPER_RUNTIME: Final = "runc-without-sys-resource"
ENGINE_START: Final = 60.0


def docker(*args: str, input_bytes: bytes | None = None, timeout: float = 600.0,
           check: bool = True) -> subprocess.CompletedProcess[bytes]:
    """One `docker` client call; a failure carries the client's own message."""
    result = subprocess.run(["docker", *args], input=input_bytes, capture_output=True, timeout=timeout, check=False)
    if check and result.returncode != 0:
        raise RuntimeError(f"`docker {' '.join(args[:3])}` failed: {result.stderr.decode(errors='replace').strip()}")
    return result


def answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return docker("info", "--format", "{{.ServerVersion}}", timeout=15, check=False).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def bounding_set_has(capability: int, status: str | None = None) -> bool:
    """Whether this process's capability bounding set (CapBnd of /proc/self/status) holds `capability`."""
    text = status if status is not None else Path("/proc/self/status").read_text()
    for line in text.splitlines():
        if line.startswith("CapBnd:"):
            return bool(int(line.split()[1], 16) >> capability & 1)
    raise ValueError("no CapBnd line in the process status")


def dockerd_argv(dockerd: str, state: Path, *, wrap_runc: bool) -> list[str]:
    argv = [dockerd, "--host=unix:///var/run/docker.sock", f"--pidfile={state / 'dockerd.pid'}"]
    if wrap_runc:
        argv += [f"--add-runtime={WRAPPER_RUNTIME}={RUNC_WRAPPER}", f"--default-runtime={WRAPPER_RUNTIME}"]
    return argv


def _install_engine() -> str:
    if os.geteuid() != 0:
        raise MissingPrerequisite("no Docker engine answers and installing one needs root: start Docker "
                                  "(or run as root, and the lab installs Debian's docker.io)")
    if shutil.which("apt-get") is None:
        raise MissingPrerequisite("no Docker engine answers and this is not a Debian system: start Docker")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (["apt-get", "update", "-qq"],
                 ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *DEBIAN_PACKAGES]):
        result = subprocess.run(argv, env=env, capture_output=True, text=True, check=False, timeout=900)
        if result.returncode != 0:
            raise MissingPrerequisite(f"`{' '.join(argv[:3])}` failed: {result.stderr.strip()[-400:]}")
    dockerd = shutil.which("dockerd")
    if dockerd is None:
        raise MissingPrerequisite("Debian's docker.io installed no dockerd")
    return dockerd


def _record(state: Path) -> Path:
    return state / "engine.json"


def ensure_engine(state: Path) -> bool:
    """An engine that answers; True when this call started it (so `stop_engine` will stop it)."""
    if answers():
        return False
    dockerd = shutil.which("dockerd") or _install_engine()
    for tool in ("jq", "mmdebstrap"):
        if shutil.which(tool) is None:
            _install_engine()
            break
    state.mkdir(parents=True, exist_ok=True)
    process = ManagedProcess("dockerd", dockerd_argv(dockerd, state, wrap_runc=not bounding_set_has(CAP_SYS_RESOURCE)),
                             state / "dockerd.log")
    process.start()
    _record(state).write_text(json.dumps(process.to_record()))
    wait_until(answers, timeout=ENGINE_START, interval=0.5, process=process, what="answering `docker info`")
    return True


def stop_engine(state: Path) -> bool:
    """Stop the engine `ensure_engine` started in `state`, if any; whether there was one."""
    record = _record(state)
    if not record.exists():
        return False
    ManagedProcess.from_record(json.loads(record.read_text())).stop(timeout=60)
    record.unlink()
    return True


def check_privileged(image: str) -> None:
    """Fail in one line when the engine cannot run a privileged container (what a kind node is)."""
    result = docker("run", "--rm", "--privileged", "--network=none", "--entrypoint=/bin/true", image,
                    check=False, timeout=120)
    if result.returncode != 0:
        raise MissingPrerequisite(
            "this Docker engine cannot start privileged containers, which kind nodes are: "
            f"{result.stderr.decode(errors='replace').strip().splitlines()[-1:]}")
