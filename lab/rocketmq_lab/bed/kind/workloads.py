"""The images the kind lab runs besides Kubernetes itself: RocketMQ, the operator, the chaos runner, node routes.

RocketMQ runs from the Maven Central jars the local bed already resolves, on a Debian Java 17 root filesystem,
started by the same java command line as the bed's processes. The operator and chaos images are built from the
checkout's own Dockerfiles with `BASE` set to a Python made here from Debian's packages; elsewhere the same
Dockerfiles build on the public python image. Each is tagged by a digest of the distributions it installs (the
operator's; the operator's and chaos's), so a change to the lab or the tests rebuilds neither.
"""

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from ... import project
from .. import gobuild, jvm, maven, paths
from ..rocketmq import HEAP, MAIN
from . import images
from .nodeimage import NETWORK_TOOLS

JAVA: Final = images.Rootfs("java", ("openjdk-17-jre-headless", "ca-certificates"))
# The host's CA bundle, so pip inside an image build trusts what pip on the host trusts.
HOST_CA_BUNDLE: Final = Path("/etc/ssl/certs/ca-certificates.crt")
PYTHON: Final = images.Rootfs("python", ("python3", "python3-venv", "ca-certificates"),
                              copy_in={str(HOST_CA_BUNDLE): HOST_CA_BUNDLE})

# Stable names the manifests use; each is an alias of a content-tagged image.
ROCKETMQ_IMAGE: Final = "rocketmq-retry-lab/rocketmq:{version}"
OPERATOR_IMAGE: Final = "rocketmq-retry-lab/operator:dev"
CHAOS_IMAGE: Final = "rocketmq-retry-lab/chaos:dev"
NODE_ROUTES_IMAGE: Final = "rocketmq-retry-lab/node-routes:dev"
ROCKETMQ_HOME: Final = "/opt/rocketmq"


def _launcher() -> bytes:
    """`rocketmq namesrv|broker|mqadmin ARGS…`: the bed's java command line for each role, in the image."""
    roles = {"namesrv": "namesrv", "broker": "broker", "mqadmin": "tools"}
    cases = []
    for command, role in roles.items():
        argv = jvm.java_argv([f"{ROCKETMQ_HOME}/lib/*"], MAIN[role], home=Path("/home/rocketmq"),
                             options=[*HEAP[role], f"-Drocketmq.home.dir={ROCKETMQ_HOME}"])
        argv[0] = "java"
        cases.append(f"  {command}) exec {shlex.join(argv)} \"$@\" ;;")
    return "\n".join([
        "#!/bin/sh", "# RocketMQ's servers and admin tool with the local bed's JVM options (bed/jvm.py).",
        'role=${1:?usage: rocketmq namesrv|broker|mqadmin ARGS...}; shift', 'case "$role" in', *cases,
        '  *) echo "unknown role $role: namesrv, broker or mqadmin" >&2; exit 2 ;;', "esac", ""]).encode()


def rocketmq_image(version: str) -> str:
    lib = maven.rocketmq_lib(version)
    files = {f"{ROCKETMQ_HOME}/lib/{jar.name}": (jar.read_bytes(), 0o644) for jar in sorted(lib.glob("*.jar"))}
    conf = paths.TOOLCHAINS / "rocketmq-home" / "conf"
    files |= {f"{ROCKETMQ_HOME}/conf/{file.name}": (file.read_bytes(), 0o644) for file in sorted(conf.iterdir())}
    files["/usr/local/bin/rocketmq"] = (_launcher(), 0o755)
    ref = images.build_from_files(f"rocketmq-{version}", JAVA.image(), files, "\n".join((
        "RUN useradd --uid 3000 --create-home rocketmq", "USER 3000", "WORKDIR /home/rocketmq",
        'ENTRYPOINT ["rocketmq"]', "")))
    images.tag(ref, ROCKETMQ_IMAGE.format(version=version))
    return ROCKETMQ_IMAGE.format(version=version)


@dataclass(frozen=True)
class PythonImage:
    """An image of our distributions: `dockerfile` (relative to the checkout, its build context) copies in the
    directories of `distributions` and nothing else, so a digest of those directories (and of the Dockerfile) is the
    image's tag."""

    name: str
    dockerfile: str
    distributions: tuple[str, ...]
    alias: str

    def build(self) -> str:
        root = project.checkout().root
        ref = images.build(self.name, root, dockerfile=root / self.dockerfile, build_args={"BASE": PYTHON.image()},
                           inputs=[root / part for part in self.distributions])
        images.tag(ref, self.alias)
        return self.alias


OPERATOR: Final = PythonImage("operator", "Dockerfile", ("operator",), OPERATOR_IMAGE)
CHAOS: Final = PythonImage("chaos", "chaos/Dockerfile", ("operator", "chaos"), CHAOS_IMAGE)


def node_routes_image() -> str:
    kubectl = gobuild.kubernetes_bin() / "kubectl"
    ref = images.build_from_files("node-routes", NETWORK_TOOLS.image(),
                                  {"/usr/local/bin/kubectl": images.binary(kubectl)})
    images.tag(ref, NODE_ROUTES_IMAGE)
    return NODE_ROUTES_IMAGE
