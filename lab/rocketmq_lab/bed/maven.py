"""RocketMQ jars resolved from Maven Central into a cached lib folder per version."""

from pathlib import Path
from typing import Final

from . import artifacts, paths, prerequisites

# 5.x versions whose rocketmq-proxy jar Maven Central does not serve here (5.1.3's is, 5.1.4's is not).
_NO_PROXY_JAR: Final = frozenset({"5.1.4"})


def _release(version: str) -> tuple[int, ...]:
    """`5.3.3` -> (5, 3, 3)."""
    return tuple(int(part) for part in version.split("."))


def is_rocketmq5(version: str) -> bool:
    return _release(version) >= (5,)


def has_proxy(version: str) -> bool:
    """The bed can run the gRPC proxy of `version`: a 5.x whose rocketmq-proxy jar is served (4.x has no proxy)."""
    return is_rocketmq5(version) and version not in _NO_PROXY_JAR


def has_auth(version: str) -> bool:
    """`version` ships rocketmq-auth (ACL 2.0, 5.3.0+); older brokers, 5.1.x included, have ACL 1.0 (plain_acl.yml)."""
    return _release(version) >= (5, 3, 0)


def rocketmq_lib(version: str) -> Path:
    """The folder holding every jar a RocketMQ name server, broker, proxy and mqadmin need."""
    target = paths.cache_root() / "rocketmq" / version

    def build(out: Path) -> None:
        pom = paths.TOOLCHAINS / "maven" / "pom.xml"
        argv = [prerequisites.require(prerequisites.MAVEN), "-B", "-q", "-f", str(pom),
                "dependency:copy-dependencies", f"-Drocketmq.version={version}",
                f"-DoutputDirectory={out / 'lib'}"]
        if has_proxy(version):
            argv.append("-Dwith.proxy")
        artifacts.run_logged(argv, log_file=out.with_suffix(".log"))

    return artifacts.ensure(target, f"RocketMQ {version} jars", build,
                            needs=(prerequisites.JAVA, prerequisites.MAVEN)) / "lib"
