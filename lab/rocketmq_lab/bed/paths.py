"""Where the bed keeps built artifacts and running stacks."""

import os
from pathlib import Path

APP = "rocketmq-retry-operator"


def cache_root() -> Path:
    """Built binaries and resolved jars, reused across runs and checkouts (XDG cache dir)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / APP


def state_root() -> Path:
    """Running local stacks (their state files, stores and logs)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / APP


TOOLCHAINS = Path(__file__).parent / "toolchains"
