"""The Chaos Toolkit files and the named experiments of `chaos run` are one set: each file runs the experiment it is
named after, and every named experiment has its file."""

import json
from pathlib import Path

from rocketmq_lab.chaos.runner import EXPERIMENTS

FILES = Path(__file__).resolve().parents[3] / "chaos" / "experiments"


def test_every_named_experiment_has_a_file_that_runs_it() -> None:
    runs = {}
    for path in FILES.glob("*.json"):
        document = json.loads(path.read_text())
        (action,) = document["method"]
        runs[path.stem] = action["provider"]["arguments"]["experiment"]
    assert runs == {name: name for name in EXPERIMENTS}
