"""Checks for what the bed cannot install itself: a JDK (java, javac), Maven and Go."""

import re
import shutil
import subprocess
from dataclasses import dataclass


class MissingPrerequisite(RuntimeError):
    """A tool the bed needs is absent or too old; the message is one line saying what to install."""


@dataclass(frozen=True)
class Tool:
    command: str
    version_args: tuple[str, ...]
    version_pattern: str
    minimum: tuple[int, int]
    install_hint: str


JAVA = Tool("java", ("-version",), r'version "(\d+)(?:\.(\d+))?', (17, 0),
            "install a JDK 17 or newer (Debian: apt-get install openjdk-17-jdk-headless)")
JAVAC = Tool("javac", ("-version",), r"javac (\d+)(?:\.(\d+))?", (17, 0),
             "install a JDK 17 or newer, not only a JRE (Debian: apt-get install openjdk-17-jdk-headless)")
MAVEN = Tool("mvn", ("-v",), r"Apache Maven (\d+)\.(\d+)", (3, 6),
             "install Apache Maven 3.6 or newer (Debian: apt-get install maven)")
GO = Tool("go", ("version",), r"go(\d+)\.(\d+)", (1, 26),
          "install Go 1.26 or newer (the Kubernetes and etcd modules need it)")


def require(tool: Tool) -> str:
    """Return the tool's path, or raise MissingPrerequisite naming what to install."""
    path = shutil.which(tool.command)
    if path is None:
        raise MissingPrerequisite(f"`{tool.command}` not found on PATH: {tool.install_hint}")
    result = subprocess.run([path, *tool.version_args], capture_output=True, text=True, check=False)
    match = re.search(tool.version_pattern, result.stdout + result.stderr)
    if match is None:
        raise MissingPrerequisite(f"cannot tell the version of `{path}`: {tool.install_hint}")
    found = (int(match.group(1)), int(match.group(2) or 0))
    if found < tool.minimum:
        wanted = ".".join(map(str, tool.minimum))
        raise MissingPrerequisite(
            f"`{tool.command}` {'.'.join(map(str, found))} is older than {wanted}: {tool.install_hint}"
        )
    return path
