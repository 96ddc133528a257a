"""What every benchmark in bench/ reports alike: percentiles, the machine and versions, progress on stderr."""

import importlib.metadata
import logging
import math
import os
import platform
from collections.abc import Sequence
from typing import Any


def configure_logging() -> None:
    """Progress on stderr, so stdout carries nothing but the JSON document."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def nearest_rank(ordered: Sequence[float], q: float) -> float:
    """Percentile `q` (0..1] of sorted values by nearest rank, as AdminBench.java computes it."""
    return ordered[max(math.ceil(q * len(ordered)), 1) - 1]


def machine(load_at_start: float) -> dict[str, Any]:
    """Cores, platform and the 1-minute load average sampled before the bed started (the machine is shared)."""
    return {"cores": os.cpu_count(), "load_average_1m_at_start": round(load_at_start, 2),
            "platform": platform.platform()}


def software(rocketmq: str, **others: str) -> dict[str, str]:
    return {"rocketmq": rocketmq, "python": platform.python_version(), **others,
            "rocketmq_retry_operator": importlib.metadata.version("rocketmq-retry-operator")}
