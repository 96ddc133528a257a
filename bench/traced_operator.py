"""`rocketmq-retry operator run` under tracemalloc: on SIGUSR1 it writes where its live memory was allocated.

    python bench/traced_operator.py OUT_PREFIX operator run --namespace ns ...

Each SIGUSR1 writes OUT_PREFIX-<n>.txt: the traced total and peak, then the top allocation sites by size, grouped by
line and, for the largest, by their call chains (25 frames). bench_convergence.py --memory-dir signals it after
convergence and at the end of a size. tracemalloc slows the process and adds its own overhead to RSS: read the sites
and their shares, not the timings or the RSS of such a run.
"""

import signal
import sys
import tracemalloc
from pathlib import Path
from types import FrameType

FRAMES = 25
TOP_LINES = 40
TOP_CHAINS = 8


def _write(prefix: str, count: list[int]) -> None:
    snapshot = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
    current, peak = tracemalloc.get_traced_memory()
    count[0] += 1
    lines = [f"traced now {current / 2**20:.1f} MiB, traced peak {peak / 2**20:.1f} MiB", "", "by line:"]
    lines += [f"{stat.size / 2**20:8.2f} MiB {stat.count:9d} blocks  {stat.traceback[0]}"
              for stat in snapshot.statistics("lineno")[:TOP_LINES]]
    for stat in snapshot.statistics("traceback")[:TOP_CHAINS]:
        lines += ["", f"{stat.size / 2**20:.2f} MiB in {stat.count} blocks from:", *stat.traceback.format()]
    written = Path(f"{prefix}-{count[0]}.txt")
    partial = written.with_suffix(".partial")
    partial.write_text("\n".join(lines) + "\n")
    partial.rename(written)  # whole or absent: the benchmark waits for this name


def main() -> None:
    prefix, argv = sys.argv[1], sys.argv[2:]
    tracemalloc.start(FRAMES)
    written = [0]

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        _write(prefix, written)

    signal.signal(signal.SIGUSR1, on_signal)
    from rocketmq_retry.cli import main as cli  # noqa: PLC0415 - traced from its first import on

    sys.argv = ["rocketmq-retry", *argv]
    cli()


if __name__ == "__main__":
    main()
