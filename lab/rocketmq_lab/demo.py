"""`rocketmq-retry demo`: the main job on the embedded default, end to end, ending in a report.

Local stack up (checked with the official tools) -> the chart's RBAC and the operator running with its
ServiceAccount -> the sample RetryPolicy applied and Ready on every master -> a broker killed under producer
load and the policy's retry ladder walked by a consumer that fails on purpose -> verdicts, plots, journal.
"""

import asyncio
import copy
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, cast

import kubernetes
import yaml
from rich.console import Console
from rich.table import Table

from rocketmq_retry.controller import GROUP, PLURAL, VERSION

from . import project
from .bed import helm
from .bed.ports import free_port
from .bed.processes import ManagedProcess, wait_until
from .bed.stack import LocalStack

NAMESPACE: Final = "rocketmq-demo"
ACCOUNT: Final = "rocketmq-retry-operator"
READY_WITHIN: Final = 180.0


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str
    seconds: float


def _timed(name: str, probe: Callable[[], tuple[bool, str]]) -> Check:
    started = time.monotonic()
    passed, detail = probe()
    return Check(name, passed, detail, time.monotonic() - started)


def verify(stack: LocalStack) -> list[Check]:
    """Judge the stack with the official tools (mqadmin, kubectl), not with our own client."""
    checks: list[Check] = []
    cluster = stack.rocketmq
    if cluster is not None:
        def masters() -> tuple[bool, str]:
            listed = cluster.mqadmin("clusterList")
            found = [b.name for b in cluster.brokers if b.addr in listed.stdout]
            return len(found) == len(cluster.brokers), f"mqadmin clusterList shows {', '.join(found) or 'none'}"

        def round_trip() -> tuple[bool, str]:
            topic, body = f"DemoTopic_{uuid.uuid4().hex[:6]}", f"hello-{uuid.uuid4().hex[:6]}"
            cluster.mqadmin("updateTopic", "-c", cluster.cluster_name, "-t", topic)
            broker = cluster.brokers[0].name
            sent = cluster.mqadmin("sendMessage", "-t", topic, "-p", body, "-b", broker, "-i", "0")
            got = cluster.mqadmin("consumeMessage", "-t", topic, "-b", broker, "-i", "0", "-o", "0", "-c", "1")
            ok = "SEND_OK" in sent.stdout and body in got.stdout
            return ok, f"{body!r} sent to {topic}@{broker} and consumed back" if ok else sent.stdout[-300:]

        checks += [_timed("masters registered", masters), _timed("message round trip", round_trip)]
    plane = stack.control_plane
    if plane is not None:
        def api_server() -> tuple[bool, str]:
            result = plane.kubectl("version", "-o", "json")
            return result.returncode == 0, f"{plane.server} answers kubectl version"

        def crds() -> tuple[bool, str]:
            result = plane.kubectl("get", "crd", "-o", "name")
            names = [line.split("/", 1)[1] for line in result.stdout.split()]
            return result.returncode == 0, f"CRDs installed: {', '.join(names) or 'none yet'}"

        checks += [_timed("kube-apiserver", api_server), _timed("CustomResourceDefinitions", crds)]
    return checks


@dataclass
class Demo:
    stack: LocalStack
    console: Console
    short: bool = False
    started: float = field(default_factory=time.monotonic)

    def step(self, text: str) -> None:
        self.console.print(f"[dim]{time.monotonic() - self.started:6.1f} s[/dim]  {text}", highlight=False)

    def run(self) -> bool:
        """The whole job; True when every check and verdict passed. Ctrl-C tears the stack down."""
        operator: ManagedProcess | None = None
        try:
            self.step("bringing up the local stack: etcd, kube-apiserver, controller-manager, name server, 2 brokers")
            self.stack.up()
            checks = verify(self.stack)
            self.console.print(_checks_table(checks))
            self.step("installing the chart's RBAC and starting the operator with its ServiceAccount token")
            operator = self._start_operator()
            policy = self._apply_policy()
            self.step(f"RetryPolicy {NAMESPACE}/{policy['metadata']['name']} applied; waiting for Ready on every "
                      "master")
            ready = self._wait_ready(policy["metadata"]["name"], operator)
            self.console.print(_policy_table(ready))
            passed = self._chaos(ready)
            return passed and all(check.passed for check in checks)
        except KeyboardInterrupt:
            self.console.print("[yellow]interrupted: stopping the operator and tearing the local stack down[/]")
            if operator is not None:
                operator.stop()
                operator = None
            self.stack.down()
            raise
        finally:
            if operator is not None:
                operator.stop()
            if self.stack.rocketmq is not None:
                self.stack.save()  # brokers restarted by the experiments have new PIDs

    def _kubectl_apply(self, manifest: str) -> None:
        plane = self.stack.control_plane
        assert plane is not None
        applied = plane.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input_text=manifest)
        if applied.returncode != 0:
            raise RuntimeError(f"kubectl apply failed: {applied.stderr.strip()}")

    def _start_operator(self) -> ManagedProcess:
        plane = self.stack.control_plane
        if plane is None:
            raise RuntimeError("the demo needs the stack's Kubernetes control plane")
        self._kubectl_apply(yaml.safe_dump({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}))
        rendered = helm.render(release="demo", namespace=NAMESPACE,
                               values={"watchNamespaces": [NAMESPACE], "serviceAccount": {"name": ACCOUNT}})
        if rendered.returncode != 0:
            raise RuntimeError(f"helm template failed: {rendered.stderr.strip()}")
        self._kubectl_apply(rendered.stdout)
        kubeconfig = plane.service_account_kubeconfig(NAMESPACE, ACCOUNT, self.stack.root / "operator.kubeconfig")
        operator = ManagedProcess(
            name="operator",
            argv=[sys.executable, "-m", "rocketmq_retry", "operator", "run", "--namespace", NAMESPACE,
                  "--sweep-interval", "5", "--metrics-port", str(free_port())],
            log_path=self.stack.root / "operator.log", env={"KUBECONFIG": str(kubeconfig), "PYTHONUNBUFFERED": "1"})
        operator.start()
        self.step(f"operator running (pid {operator.pid}, log {operator.log_path})")
        return operator

    def _apply_policy(self) -> dict[str, Any]:
        assert self.stack.rocketmq is not None
        policy: dict[str, Any] = copy.deepcopy(yaml.safe_load(project.checkout().sample_policy.read_text()))
        policy["metadata"]["namespace"] = NAMESPACE
        policy["spec"]["cluster"]["nameServers"] = self.stack.rocketmq.namesrv_addr
        self._kubectl_apply(yaml.safe_dump(policy))
        return policy

    def _wait_ready(self, name: str, operator: ManagedProcess) -> dict[str, Any]:
        plane = self.stack.control_plane
        assert plane is not None
        client = kubernetes.config.new_client_from_config(str(plane.kubeconfig))  # type: ignore[no-untyped-call]
        api = kubernetes.client.CustomObjectsApi(client)
        seen: dict[str, dict[str, Any]] = {}

        def ready() -> bool:
            found = cast(dict[str, Any], api.get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, name))
            seen["policy"] = found
            status = found.get("status", {})
            return (status.get("observedGeneration") == found["metadata"]["generation"]
                    and any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions", [])))

        with self.console.status("waiting for the policy to be Ready on every master ..."):
            wait_until(ready, timeout=READY_WITHIN, interval=0.5, process=operator, what="the policy Ready")
        self.step(f"Ready: synced {seen['policy']['status']['synced']} masters")
        return seen["policy"]

    def _chaos(self, policy: dict[str, Any]) -> bool:
        from rocketmq_chaos.experiments import (  # noqa: PLC0415 - matplotlib and the probes: for this step only
            FaultUnderLoad,
            RetryLadder,
            retry_ladder,
        )
        from rocketmq_chaos.journal import Journal  # noqa: PLC0415
        from rocketmq_chaos.report import summary, write_report  # noqa: PLC0415
        from rocketmq_chaos.verdicts import DeliveryVerdict, LadderVerdict  # noqa: PLC0415
        from rocketmq_lab.chaos.runner import local_fault_under_load  # noqa: PLC0415

        cluster = self.stack.rocketmq
        assert cluster is not None
        ladder = next(entry for entry in policy["status"]["ladders"] if entry["client"] == "Remoting")
        journal = Journal()
        kill = FaultUnderLoad(rate=200, duration=8 if self.short else 20, fault_at=3 if self.short else 5)
        self.step(f"chaos 1/2: SIGKILL {cluster.brokers[-1].name} after {kill.fault_at:g} s of {kill.rate:g} msg/s "
                  f"sync sends for {kill.duration:g} s; then restart it and read every message back")
        delivery = asyncio.run(local_fault_under_load(cluster, journal, kill))
        self.step(f"chaos 2/2: fail 3 messages of group {policy['spec']['consumerGroup']} every time; expect the "
                  f"ladder {ladder['summary']} and the DLQ after {ladder['retries']} retries")
        plan = RetryLadder(ladder["delaysMillis"], messages=3, group=policy["spec"]["consumerGroup"])
        retries = asyncio.run(retry_ladder(cluster, journal, plan))
        verdicts: dict[str, DeliveryVerdict | LadderVerdict] = {"broker-kill-under-load": delivery,
                                                                 "retry-ladder": retries}
        report = write_report(self.stack.root / "reports" / datetime.now().strftime("%Y%m%d-%H%M%S"), journal,
                              verdicts)
        self.console.print(summary(verdicts))
        self.console.print(f"journal: {report.journal}\nverdict: {report.verdict}\nplots:   "
                           + "\n         ".join(str(p) for p in report.plots), highlight=False)
        return report.passed


def _checks_table(checks: list[Check]) -> Table:
    table = Table(title="the local stack, checked with the official tools")
    for column in ("check", "result", "detail", "seconds"):
        table.add_column(column)
    for check in checks:
        table.add_row(check.name, "[green]PASS[/]" if check.passed else "[red]FAIL[/]", check.detail,
                      f"{check.seconds:.1f}")
    return table


def _policy_table(policy: dict[str, Any]) -> Table:
    status = policy["status"]
    table = Table(title=f"RetryPolicy {policy['metadata']['name']}: what the operator reports")
    table.add_column("field")
    table.add_column("value")
    table.add_row("synced masters", status["synced"])
    for broker in status["brokers"]:
        table.add_row(f"broker {broker['name']}", f"{broker['state']} ({broker.get('address', '?')})")
    for ladder in status.get("ladders", []):
        table.add_row(f"ladder ({ladder['client']})", ladder["summary"])
    for warning in status.get("warnings", []):
        table.add_row("warning", warning)
    return table
