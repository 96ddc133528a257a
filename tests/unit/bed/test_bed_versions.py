"""What the bed does differently per pinned RocketMQ version: which jars it resolves, whether it can run a proxy,
which ACL it configures, and which versions `local up` accepts. No JVM runs here."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from rocketmq_lab.bed import artifacts, maven, prerequisites, versions
from rocketmq_lab.bed.rocketmq import RocketMQCluster
from rocketmq_lab.bed.stack import LocalStack
from rocketmq_retry.cli import main
from rocketmq_retry.remoting.acl import Credentials

ADMIN = Credentials("bed-admin", "bed-secret")
# version: (is 5.x, has a proxy jar, has rocketmq-auth)
CAPABILITIES = {"4.9.7": (False, False, False), "5.1.4": (True, False, False), "5.1.3": (True, True, False),
                "5.3.3": (True, True, True), "5.5.0": (True, True, True)}


@pytest.mark.parametrize(("version", "expected"), CAPABILITIES.items())
def test_capabilities_of_each_version(version: str, expected: tuple[bool, bool, bool]) -> None:
    assert (maven.is_rocketmq5(version), maven.has_proxy(version), maven.has_auth(version)) == expected


def test_the_older_lines_stay_out_of_the_main_matrix() -> None:
    assert versions.ROCKETMQ_OLDER_LINES == ("5.1.4", "5.3.3")
    assert not set(versions.ROCKETMQ_OLDER_LINES) & set(versions.ROCKETMQ_VERSIONS)


@pytest.mark.parametrize("version", [*versions.ROCKETMQ_VERSIONS, *versions.ROCKETMQ_OLDER_LINES])
def test_the_proxy_jar_is_resolved_only_where_it_is_served(version: str, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    runs: list[list[str]] = []

    def ensure(target: Path, describe: str, build: Callable[[Path], None], **_: Any) -> Path:
        build(tmp_path / "out")
        return tmp_path / "out"

    monkeypatch.setattr(artifacts, "ensure", ensure)
    monkeypatch.setattr(artifacts, "run_logged", lambda argv, **_: runs.append(list(argv)))
    monkeypatch.setattr(prerequisites, "require", lambda tool: "mvn")
    maven.rocketmq_lib(version)
    [argv] = runs
    assert f"-Drocketmq.version={version}" in argv
    assert ("-Dwith.proxy" in argv) == maven.has_proxy(version)


@pytest.mark.parametrize(("version", "why"), [("5.1.4", "Maven Central serves no rocketmq-proxy 5.1.4 here"),
                                              ("4.9.7", "4.x has no proxy")])
def test_a_proxy_is_refused_where_there_is_none_before_anything_starts(version: str, why: str, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    def resolve(_: str) -> Path:
        raise AssertionError("resolved jars for a bed it refuses")

    monkeypatch.setattr(maven, "rocketmq_lib", resolve)
    cluster = RocketMQCluster(version, tmp_path / "bed", with_proxy=True)
    with pytest.raises(ValueError, match=f"no gRPC proxy for RocketMQ {version} \\({why}\\)"):
        cluster.start()
    assert not cluster.workdir.exists()


@pytest.mark.parametrize("version", ["4.9.7", "5.1.4"])
def test_acl_1_0_without_rocketmq_auth(version: str, tmp_path: Path) -> None:
    cluster = _with_conf_dir(version, tmp_path)
    assert cluster._acl_conf(ADMIN) == {"aclEnable": True}
    cluster._write_acl_files(ADMIN)
    conf = cluster.rocketmq_home / "conf"
    [account] = yaml.safe_load((conf / "plain_acl.yml").read_text())["accounts"]
    assert (account["accessKey"], account["secretKey"], account["admin"]) == ("bed-admin", "bed-secret", True)
    assert yaml.safe_load((conf / "tools.yml").read_text()) == {"accessKey": "bed-admin", "secretKey": "bed-secret"}


@pytest.mark.parametrize("version", ["5.3.3", "5.5.0"])
def test_authentication_with_rocketmq_auth(version: str, tmp_path: Path) -> None:
    cluster = _with_conf_dir(version, tmp_path)
    conf = cluster._acl_conf(ADMIN)
    assert conf["authenticationEnabled"] is True
    assert "aclEnable" not in conf
    assert '"username":"bed-admin"' in str(conf["initAuthenticationUser"])
    cluster._write_acl_files(ADMIN)
    assert not (cluster.rocketmq_home / "conf" / "plain_acl.yml").exists()
    assert (cluster.rocketmq_home / "conf" / "tools.yml").exists()


def _with_conf_dir(version: str, tmp_path: Path) -> RocketMQCluster:
    cluster = RocketMQCluster(version, tmp_path / "bed", acl=ADMIN)
    (cluster.rocketmq_home / "conf").mkdir(parents=True)
    return cluster


@pytest.mark.parametrize("version", versions.ROCKETMQ_OLDER_LINES)
def test_local_up_accepts_the_older_lines(version: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[dict[str, Any]] = []
    monkeypatch.setattr(LocalStack, "up", lambda self, **options: asked.append(options))
    result = CliRunner().invoke(main, ["local", "up", "--rocketmq-version", version, "--no-kubernetes",
                                       "--state-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert [options["rocketmq_version"] for options in asked] == [version]
