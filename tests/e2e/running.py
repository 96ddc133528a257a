"""The operator as the e2e tests run it: the chart installed for one namespace, `operator run` with the chart's
ServiceAccount token, its metrics, and the custom objects it handles, waited on with the operator's log at hand."""

import contextlib
import os
import sys
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import kubernetes
from kubernetes.client import ApiException
from prometheus_client.parser import text_string_to_metric_families

from rocketmq_chaos.journal import Event, parse_lines
from rocketmq_lab.bed import javaprograms
from rocketmq_lab.bed.helm import render
from rocketmq_lab.bed.processes import ManagedProcess, wait_until
from rocketmq_lab.bed.rocketmq import RocketMQCluster
from rocketmq_lab.chaos import java_probes
from tests.conftest import Kube

GROUP, VERSION = "rocketmq-retry.io", "v1alpha1"
OPERATOR_ACCOUNT = "rocketmq-retry-operator"


@contextlib.contextmanager
def chart_installed(kube: Kube, namespace: str) -> Iterator[Path]:
    """The chart for `namespace` (server-side apply); yields a kubeconfig with its ServiceAccount's token."""
    rendered = render(release="e2e", namespace=namespace,
                      values={"watchNamespaces": [namespace], "serviceAccount": {"name": OPERATOR_ACCOUNT}})
    assert rendered.returncode == 0, rendered.stderr
    applied = kube.plane.kubectl("apply", "--server-side", "-f", "-", input_text=rendered.stdout)
    assert applied.returncode == 0, applied.stderr
    try:
        yield kube.service_account_kubeconfig(namespace, OPERATOR_ACCOUNT)
    finally:
        kube.plane.kubectl("delete", "--ignore-not-found", "-f", "-", input_text=rendered.stdout)


def operator_process(kubeconfig: Path, namespace: str, log_dir: Path, *options: str) -> ManagedProcess:
    """`rocketmq-retry operator run` for `namespace` with `options` (not started)."""
    return ManagedProcess(
        name="operator",
        argv=[str(Path(sys.executable).parent / "rocketmq-retry"), "operator", "run", "--namespace", namespace,
              *options],
        log_path=log_dir / "operator.log",
        env={"KUBECONFIG": str(kubeconfig), "PYTHONUNBUFFERED": "1", "PATH": os.environ.get("PATH", "")},
    )


@contextlib.contextmanager
def operator_running(kube: Kube, namespace: str, log_dir: Path, *options: str) -> Iterator[ManagedProcess]:
    """The chart installed for `namespace` and the operator running with its ServiceAccount and `options`; stopped
    and uninstalled after the block."""
    with chart_installed(kube, namespace) as kubeconfig:
        process = operator_process(kubeconfig, namespace, log_dir, *options)
        process.start()
        try:
            yield process
        finally:
            process.stop()


def metric(port: int, name: str, **labels: str) -> float:
    """A sample of the operator's /metrics, 0 when absent."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    found = (sample.value for family in text_string_to_metric_families(text) for sample in family.samples
             if sample.name == name and sample.labels == labels)
    return next(found, 0.0)


def sweep_passes(port: int) -> float:
    """Fresh RetryPolicy passes over a cluster (the drift sweep's, and a few more: a master that appeared, a
    finalizer), from the pass durations the operator records."""
    return metric(port, "rocketmq_retry_reconcile_duration_seconds_count", trigger="sweep")


def wait_sweeps(port: int, process: ManagedProcess, passes: int, *, timeout: float) -> None:
    """Until the operator finished `passes` more fresh passes: what "the sweep went over it" means, observed rather
    than assumed from the sweep interval."""

    def counted() -> tuple[float] | None:
        """The passes so far, once the operator serves its metrics (a fresh operator may not yet)."""
        try:
            return (sweep_passes(port),)
        except OSError:  # urllib's URLError included
            return None

    [done] = wait_until(counted, timeout=timeout, interval=0.1, process=process, what="the operator's metrics")
    wait_until(lambda: sweep_passes(port) >= done + passes, timeout=timeout, interval=0.1, process=process,
               what=f"{passes} more drift sweep passes")


class CustomObjects:
    """Objects of one kind in one namespace, through the admin client; waits fail with the operator's log tail."""

    def __init__(self, kube: Kube, namespace: str, kind: str, plural: str, operator: ManagedProcess, *,
                 converge: float) -> None:
        self.api = kubernetes.client.CustomObjectsApi(kube.api)
        self.namespace, self.kind, self.plural = namespace, kind, plural
        self.operator = operator
        self.converge = converge

    def create(self, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": self.kind, "metadata": {"name": name}, "spec": spec}
        created: dict[str, Any] = self.api.create_namespaced_custom_object(GROUP, VERSION, self.namespace,
                                                                           self.plural, body)
        return created

    def get(self, name: str) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = self.api.get_namespaced_custom_object(GROUP, VERSION, self.namespace,
                                                                          self.plural, name)
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        return found

    def list(self) -> list[dict[str, Any]]:
        listed: dict[str, Any] = self.api.list_namespaced_custom_object(GROUP, VERSION, self.namespace, self.plural)
        items: list[dict[str, Any]] = listed["items"]
        return items

    def patch_spec(self, name: str, spec: dict[str, Any]) -> None:
        self.api.patch_namespaced_custom_object(GROUP, VERSION, self.namespace, self.plural, name, {"spec": spec})

    def delete(self, name: str) -> None:
        self.api.delete_namespaced_custom_object(GROUP, VERSION, self.namespace, self.plural, name)

    def wait(self, name: str, what: str, check: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
        """Poll until `check(object)` holds; the last object seen and the log tail explain a failure."""
        seen: dict[str, Any] = {}

        def holds() -> bool:
            found = self.get(name)
            seen["last"] = found
            return found is not None and bool(check(found))

        try:
            wait_until(holds, timeout=self.converge, interval=0.5, process=self.operator, what=what)
        except Exception as error:
            raise AssertionError(f"{name}: {what}: last seen {seen.get('last')}\n{self.operator.log_tail(40)}") \
                from error
        return seen["last"]  # type: ignore[no-any-return]


def ready_condition(found: dict[str, Any]) -> tuple[str, str] | None:
    """The Ready condition's (status, reason), None while the object has none."""
    for condition in found.get("status", {}).get("conditions", []):
        if condition["type"] == "Ready":
            return condition["status"], condition["reason"]
    return None


class Policies(CustomObjects):
    """RetryPolicy objects of one namespace, aimed at the bed's cluster unless a test names another."""

    def __init__(self, kube: Kube, namespace: str, cluster: RocketMQCluster, operator: ManagedProcess, *,
                 converge: float) -> None:
        super().__init__(kube, namespace, "RetryPolicy", "retrypolicies", operator, converge=converge)
        self.cluster = cluster

    def create(self, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        return super().create(name, {"cluster": {"nameServers": self.cluster.namesrv_addr}, **spec})

    def wait_ready(self, name: str) -> dict[str, Any]:
        """Until the policy is Ready=True (Synced) for its current generation on each of the bed's masters."""
        every = f"{self.cluster.broker_count}/{self.cluster.broker_count}"

        def ready(found: dict[str, Any]) -> bool:
            status = found.get("status", {})
            return (ready_condition(found) == ("True", "Synced") and status.get("synced") == every
                    and status.get("observedGeneration") == found["metadata"]["generation"])

        return self.wait(name, f"Ready=True with {every} masters", ready)


def java_consumer(cluster: RocketMQCluster, home: Path, topic: str, group: str, *flags: str) -> ManagedProcess:
    """The official Java push consumer (the chaos probe, failing every delivery) of `topic` as `group`, not started;
    it runs until stopped, with its journal in `home`.log."""
    home.mkdir()
    argv = javaprograms.compiled(cluster.version).argv(
        "ProbeConsumer", "--namesrv", cluster.namesrv_addr, "--topic", topic, "--group", group, "--duration", "3600",
        *flags, home=home, options=java_probes.JVM_OPTIONS)
    return ManagedProcess(f"java-consumer-{home.name}", argv, home.with_suffix(".log"), cwd=home)


def journal_of(consumer: ManagedProcess) -> list[Event]:
    """The journal events a probe program printed so far (its log also holds the JVM's own lines)."""
    lines = consumer.log_path.read_text(errors="replace").splitlines()
    return list(parse_lines(line for line in lines if line.startswith("{")))
