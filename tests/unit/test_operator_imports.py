"""The operator process loads only the operator: not the official `kubernetes` client, whose import and CoreV1Api cost
it 92 MiB (controller/kubeapi.py), and not the lab or chaos, whose verbs `rocketmq-retry` loads only when they are
asked for (their distributions are absent from the operator's image). Checked in a fresh interpreter, since this one
has loaded all of them for other tests."""

import json
import subprocess
import sys

PROBE = """
import json, os, sys

def loaded(*roots):
    return sorted(name for name, module in sys.modules.items() if name.split(".")[0] in roots and module)

import rocketmq_retry.cli
after_cli = loaded("kubernetes")
rocketmq_retry.cli.load_controller()  # what `operator run` imports: kopf, the handlers, KubeApi
import click
rocketmq_retry.cli.main.get_command(click.Context(rocketmq_retry.cli.main), "operator")  # as `operator run` resolves it
print(json.dumps({"cli": after_cli, "controller": loaded("kubernetes"), "umask": oct(os.umask(0)),
                  "plugins": loaded("rocketmq_lab", "rocketmq_chaos")}))
"""


def test_the_operator_loads_neither_the_client_nor_anything_that_needs_it() -> None:
    probe = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, check=False)
    assert probe.returncode == 0, probe.stderr  # where one of our modules imports `kubernetes`, it fails here

    # The umask keeps the client keys pykube-ng writes to temporary files private to the operator's user.
    assert json.loads(probe.stdout) == {"cli": [], "controller": [], "umask": "0o77", "plugins": []}
