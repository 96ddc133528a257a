"""Chaos Toolkit providers: the experiment files in chaos/experiments call these through `chaos run`.

A failed verdict interrupts the run (InterruptExecution), so `chaos run` exits non-zero exactly when our checker
says the experiment failed; the steady-state hypothesis is that the local stack is up before and after.
"""

import json
from pathlib import Path
from typing import Any

from chaoslib.exceptions import InterruptExecution

from ..bed.stack import LocalStack
from .runner import run_experiment


def _stack(state_dir: str | None) -> LocalStack:
    return LocalStack.at(Path(state_dir) if state_dir else None)


def stack_healthy(state_dir: str | None = None) -> bool:
    """Every process of the local stack is running."""
    return _stack(state_dir).healthy


def run(experiment: str, state_dir: str | None = None, report_dir: str | None = None, **options: Any
        ) -> dict[str, Any]:
    """Run one of our experiments and return its verdict document; interrupt the run when it failed."""
    report = run_experiment(experiment, stack=_stack(state_dir), report_dir=Path(report_dir) if report_dir else None,
                            **options)
    document: dict[str, Any] = json.loads(report.verdict.read_text())
    if not report.passed:
        reasons = [reason for verdict in document["experiments"].values() for reason in verdict["reasons"]]
        raise InterruptExecution(f"{experiment}: the checker failed it: {'; '.join(reasons)} (report: "
                                 f"{report.directory})")
    return {"report": str(report.directory), **document}
