"""Operator replicas in a kopf peering against a real kube-apiserver and real brokers: one works, one takes over.

The chart is rendered with `replicas: 2` and applied, and each replica runs with the chart's own peering flags
(`--peering`, `--priority=random`, `--peering-lifetime`) and a token of its ServiceAccount, so a missing peering
rule, CRD or object fails here. Who did what is read from each replica's metrics and log: the reconciler's lines
name the policy, and kopf's peering lines say when a replica paused or resumed.

A log line is an effect of its own, not ordered with what the API server shows: the reconciler logs
`[namespace/name] Synced: …` only after its status write and its Event have been answered, so a policy is Ready a
round trip or more before that line exists. Lines are therefore waited for, as any other observable. "Nothing
happened" is judged over sweep passes of the working replica, not over seconds of the test's clock.
"""

import os
import re
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import kubernetes
import pytest
from prometheus_client.parser import text_string_to_metric_families

from rocketmq_lab.bed import versions
from rocketmq_lab.bed.helm import manifests, render
from rocketmq_lab.bed.ports import free_port
from rocketmq_lab.bed.processes import ManagedProcess, wait_until
from rocketmq_lab.bed.rocketmq import RocketMQCluster
from rocketmq_retry.controller import policies
from rocketmq_retry.controller.peering import RANDOM_PRIORITY_MAX
from tests.conftest import Kube
from tests.e2e.running import wait_sweeps

pytestmark = pytest.mark.rocketmq_versions(versions.ROCKETMQ_5)  # peering is kopf's business, not the broker's

GROUP, VERSION, PLURAL = "rocketmq-retry.io", "v1alpha1", "retrypolicies"
ACCOUNT = "rocketmq-retry-operator"
LIFETIME = 10  # --peering-lifetime: a SIGKILLed leader is replaced within ~10 s instead of kopf's default 60 s
SWEEP_INTERVAL = 2
CONVERGE = 90.0
_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) (\w+) (\S+): (.*)$")


@dataclass
class Replica:
    name: str
    process: ManagedProcess
    metrics_port: int

    def reconciles(self) -> float:
        """rocketmq_retry_reconciles_total over every trigger and result: each policy pass, event or sweep."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10) as response:
            text = response.read().decode()
        return sum(sample.value for family in text_string_to_metric_families(text) for sample in family.samples
                   if sample.name == "rocketmq_retry_reconciles_total")

    def lines(self) -> list[tuple[float, str, str]]:
        """(time, logger, message) of every log line; the time is comparable with time.time()."""
        found = []
        for line in self.process.log_path.read_text(errors="replace").splitlines():
            match = _LINE.match(line)
            if match:
                at = datetime.strptime(match[1], "%Y-%m-%d %H:%M:%S,%f").timestamp()
                found.append((at, match[3], match[4]))
        return found

    def logged(self, text: str) -> list[float]:
        return [at for at, _, message in self.lines() if text in message]

    def paused(self) -> bool:
        """kopf starts a `--peering` replica paused and logs each resume and pause after that."""
        resumed, paused = self.logged("Resuming operations"), self.logged("Pausing operations")
        return not resumed or (bool(paused) and paused[-1] >= resumed[-1])

    def handled(self, namespace: str) -> dict[str, list[float]]:
        """When the replica reconciled each policy in `namespace` (a line per reconcile names the policy)."""
        handled: dict[str, list[float]] = {}
        for at, logger, message in self.lines():
            match = re.match(rf"\[{re.escape(namespace)}/([^\]]+)\] ", message)
            if logger == policies.log.name and match:
                handled.setdefault(match[1], []).append(at)
        return handled


class Cluster:
    """The chart installed for one namespace with replicas: 2, and replicas started with its peering flags."""

    def __init__(self, kube: Kube, rocketmq: RocketMQCluster, workdir: Path) -> None:
        self.kube = kube
        self.rocketmq = rocketmq
        self.workdir = workdir
        self.namespace = f"e2e-ha-{uuid.uuid4().hex[:8]}"
        self.api = kubernetes.client.CustomObjectsApi(kube.api)
        self.replicas: list[Replica] = []
        kubernetes.client.CoreV1Api(kube.api).create_namespace({"metadata": {"name": self.namespace}})
        rendered = render(release="ha", namespace=self.namespace,
                          values={"replicas": 2, "peeringLifetimeSeconds": LIFETIME,
                                  "watchNamespaces": [self.namespace], "serviceAccount": {"name": ACCOUNT}})
        assert rendered.returncode == 0, rendered.stderr
        self.manifests = rendered.stdout
        applied = kube.plane.kubectl("apply", "--server-side", "-f", "-", input_text=self.manifests)
        assert applied.returncode == 0, applied.stderr
        [deployment] = [o for o in manifests(self.manifests) if o["kind"] == "Deployment"]
        args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        self.peering_args = [arg for arg in args if arg.startswith(("--peering", "--priority"))]
        self.peering_name = next(arg for arg in args if arg.startswith("--peering=")).split("=", 1)[1]
        self.kubeconfig = kube.service_account_kubeconfig(self.namespace, ACCOUNT)

    def start(self, name: str, priority: str | None = None) -> Replica:
        """A replica as the chart runs it; `priority` replaces the chart's random one."""
        binary = Path(sys.executable).parent / "rocketmq-retry"
        peering = [f"--priority={priority}" if priority and arg.startswith("--priority=") else arg
                   for arg in self.peering_args]
        port = free_port()
        process = ManagedProcess(
            name=name,
            argv=[str(binary), "operator", "run", f"--namespace={self.namespace}", *peering,
                  "--sweep-interval", str(SWEEP_INTERVAL), "--broker-timeout", "10", "--metrics-port", str(port)],
            log_path=self.workdir / f"{name}.log",
            env={"KUBECONFIG": str(self.kubeconfig), "POD_ID": name, "PYTHONUNBUFFERED": "1",
                 "PATH": os.environ.get("PATH", "")},
        )
        process.start()
        replica = Replica(name, process, port)
        self.replicas.append(replica)
        wait_until(lambda: name in self.peers(), timeout=CONVERGE, process=process, what="in the peering")
        return replica

    def peers(self) -> dict[str, Any]:
        found = self.api.get_namespaced_custom_object("kopf.dev", "v1", self.namespace, "kopfpeerings",
                                                      self.peering_name)
        return found.get("status") or {}

    def create(self, name: str) -> None:
        group = f"e2e_ha_{name}_{uuid.uuid4().hex[:6]}"
        self.api.create_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, {
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "RetryPolicy", "metadata": {"name": name},
            "spec": {"cluster": {"nameServers": self.rocketmq.namesrv_addr}, "consumerGroup": group,
                     "maxRetries": 2}})

    def ready(self, name: str) -> bool:
        found = self.api.get_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name)
        status = found.get("status", {})
        return (status.get("observedGeneration") == found["metadata"]["generation"]
                and any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions", [])))

    def wait_ready(self, name: str, by: Replica) -> None:
        wait_until(lambda: self.ready(name), timeout=CONVERGE, interval=0.1, process=by.process,
                   what=f"{name} Ready")

    def wait_handled(self, names: set[str], by: Replica) -> None:
        """Until `by` logged a reconcile of each policy: its line follows the status write and the Event, so a Ready
        policy may not have it yet."""
        wait_until(lambda: names <= set(by.handled(self.namespace)), timeout=CONVERGE, interval=0.1,
                   process=by.process, what=f"logged reconciles of {sorted(names)}")

    @staticmethod
    def wait_swept(by: Replica, passes: int = 3) -> None:
        """Until `by` finished `passes` more drift sweep passes: with a sweep interval between two passes, the other
        replicas' sweep loops had at least `passes - 1` intervals to act (or to stay quiet)."""
        wait_sweeps(by.metrics_port, by.process, passes, timeout=CONVERGE)

    def stop(self) -> None:
        for replica in self.replicas:
            replica.process.stop()
        self.kube.plane.kubectl("delete", "--ignore-not-found", "-f", "-", input_text=self.manifests)


@pytest.fixture
def cluster(kube: Kube, rocketmq_cluster: RocketMQCluster, tmp_path: Path) -> Iterator[Cluster]:
    made = Cluster(kube, rocketmq_cluster, tmp_path)
    try:
        yield made
    finally:
        made.stop()


def test_one_replica_works_a_killed_leader_is_replaced_and_a_preempted_one_stops(cluster: Cluster) -> None:
    first, second = cluster.start("replica-a"), cluster.start("replica-b")
    priorities = {name: entry["priority"] for name, entry in cluster.peers().items()}
    leader, follower = sorted((first, second), key=lambda replica: priorities[replica.name], reverse=True)
    wait_until(lambda: not leader.paused() and follower.paused(), timeout=CONVERGE, process=leader.process,
               what="the leader resumed and the follower paused")

    # Only the leader works: the follower neither handles the policy nor sweeps.
    cluster.create("before-kill")
    cluster.wait_ready("before-kill", leader)
    cluster.wait_swept(leader)
    assert leader.reconciles() >= 1
    assert follower.reconciles() == 0
    assert follower.handled(cluster.namespace) == {}

    # SIGKILL: no goodbye in the peering object, so the follower waits out the leader's lifetime.
    killed_at = time.time()
    leader.process.kill()
    cluster.create("after-kill")
    cluster.wait_ready("after-kill", follower)
    takeover = time.time() - killed_at
    print(f"\ntakeover after SIGKILL of the leader: {takeover:.1f} s until a new policy was Ready "
          f"(--peering-lifetime {LIFETIME})")
    assert follower.logged("Resuming operations")[-1] >= killed_at
    cluster.wait_handled({"before-kill", "after-kill"}, follower)  # resumed the old one, too
    assert set(follower.handled(cluster.namespace)) == {"before-kill", "after-kill"}

    # A replica with a higher priority preempts the survivor, whose control loop must stop with kopf's handlers.
    # kopf pauses on its watch event of the peering object, the loop on its own read of it: either may log first.
    preempting = time.time()
    preemptor = cluster.start("replica-c", priority=str(RANDOM_PRIORITY_MAX + 1))
    wait_until(lambda: all(any(at >= preempting for at in follower.logged(text))
                           for text in ("Pausing operations in favour of", "control loop paused")),
               timeout=CONVERGE, process=follower.process, what="the preempted replica's kopf and loop paused")
    frozen = follower.reconciles()
    cluster.create("after-preemption")
    cluster.wait_ready("after-preemption", preemptor)
    cluster.wait_swept(preemptor)
    assert follower.reconciles() == frozen
    assert "after-preemption" not in follower.handled(cluster.namespace)
    assert preemptor.reconciles() >= 1

    # No policy was handled by two replicas at once: per policy, their handling spans do not overlap.
    spans = {(replica.name, policy): (min(times), max(times)) for replica in (leader, follower, preemptor)
             for policy, times in replica.handled(cluster.namespace).items()}
    for (name, policy), (begun, ended) in spans.items():
        for (other, same), (other_begun, other_ended) in spans.items():
            if other != name and same == policy:
                assert ended < other_begun or other_ended < begun, f"{policy}: {name} and {other} at once"
