import os
import subprocess
import sys
from pathlib import Path

import pytest

from rocketmq_lab.bed import prerequisites
from rocketmq_lab.bed.prerequisites import MissingPrerequisite


def _fake_tool(directory: Path, name: str, output: str) -> None:
    script = directory / name
    script.write_text(f"#!/bin/sh\necho '{output}' >&2\n")
    script.chmod(0o755)


@pytest.mark.parametrize("tool", [prerequisites.JAVA, prerequisites.JAVAC, prerequisites.MAVEN,
                                  prerequisites.GO],
                         ids=lambda tool: tool.command)
def test_absent_tool_names_what_to_install(tool: prerequisites.Tool, monkeypatch: pytest.MonkeyPatch,
                                           tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(MissingPrerequisite, match=rf"`{tool.command}` not found on PATH: install"):
        prerequisites.require(tool)


def test_too_old_tool_is_refused_with_the_versions(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _fake_tool(tmp_path, "java", 'openjdk version "11.0.22" 2024-01-16')
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(MissingPrerequisite, match=r"`java` 11.0 is older than 17.0: install a JDK 17"):
        prerequisites.require(prerequisites.JAVA)


def test_recent_tool_is_accepted(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _fake_tool(tmp_path, "go", "go version go1.26.8 linux/amd64")
    monkeypatch.setenv("PATH", str(tmp_path))
    assert prerequisites.require(prerequisites.GO) == str(tmp_path / "go")


def test_cli_reports_missing_java_in_one_line_without_a_traceback(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": str(tmp_path), "XDG_STATE_HOME": str(tmp_path / "state")}
    result = subprocess.run([sys.executable, "-m", "rocketmq_retry", "local", "up", "--no-kubernetes"],
                            capture_output=True, text=True, env=env, check=False, timeout=120)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "missing prerequisite" in lines[0]
    assert "Traceback" not in result.stderr
