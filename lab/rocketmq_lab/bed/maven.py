"""RocketMQ jars resolved from Maven Central into a cached lib folder per version."""

from pathlib import Path

from . import artifacts, paths, prerequisites


def is_rocketmq5(version: str) -> bool:
    return int(version.split(".", 1)[0]) >= 5


def rocketmq_lib(version: str) -> Path:
    """The folder holding every jar a RocketMQ name server, broker, proxy and mqadmin need."""
    target = paths.cache_root() / "rocketmq" / version

    def build(out: Path) -> None:
        pom = paths.TOOLCHAINS / "maven" / "pom.xml"
        argv = [prerequisites.require(prerequisites.MAVEN), "-B", "-q", "-f", str(pom),
                "dependency:copy-dependencies", f"-Drocketmq.version={version}",
                f"-DoutputDirectory={out / 'lib'}"]
        if is_rocketmq5(version):
            argv.append("-Dwith.proxy")
        artifacts.run_logged(argv, log_file=out.with_suffix(".log"))

    return artifacts.ensure(target, f"RocketMQ {version} jars", build,
                            needs=(prerequisites.JAVA, prerequisites.MAVEN)) / "lib"
