"""`rocketmq-retry kind up`: from nothing to chaos verdicts in a kind cluster, on local parts only.

The steps, each waiting on what it needs (rollouts, conditions, the name server's registrations), never on time:
engine → images → cluster (+ node routes) → RocketMQ from examples/kind → the chart via `helm install` →
the sample RetryPolicy Ready on both brokers and read back with the official mqadmin in the cluster → chaos
Jobs whose verdicts come back through their logs. `kind down` removes the cluster and stops an engine the lab
started, nothing else.
"""

import base64
import io
import json
import logging
import re
import subprocess
import tarfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final, TypeVar

import yaml
from prometheus_client.parser import text_string_to_metric_families

from rocketmq_chaos.experiments import LOAD_RUNNING
from rocketmq_retry.controller import policies

from ... import project
from .. import gobuild, paths, versions
from ..processes import wait_until
from ..rocketmq import parse_consumer_configs
from . import engine, workloads
from .cluster import (
    CONTROL_PLANE,
    CONTROL_PLANE_TOLERATION,
    KindCluster,
    pause_node,
    require_free_port,
    unpause_node,
)
from .nodeimage import NETWORK_TOOLS, node_image

log = logging.getLogger(__name__)
T = TypeVar("T")

ROCKETMQ_NS: Final = "rocketmq"
OPERATOR_NS: Final = "rocketmq-retry"
POLICY_NS: Final = "team-a"
RELEASE: Final = "rro"
NAMESRV: Final = "rocketmq-namesrv.rocketmq:9876"
BROKER_SELECTOR: Final = "app=rocketmq,role=broker"
VERDICT_PREFIX: Final = "VERDICT-JSON "
REPORT_PREFIX: Final = "REPORT-TGZ "


def state_dir() -> Path:
    return paths.state_root() / "kind"


@dataclass(frozen=True)
class LabOptions:
    rocketmq_version: str = versions.ROCKETMQ_5
    api_port: int | None = None
    report_dir: Path | None = None
    chaos: bool = True
    node_fault: bool = True
    ha: bool = True


@dataclass
class LabRun:
    """What one `kind up` found: step timings, the verdicts of each chaos Job, where the reports went."""

    steps: dict[str, float] = field(default_factory=dict)
    verdicts: dict[str, dict[str, Any]] = field(default_factory=dict)
    reports: dict[str, str] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        started = time.monotonic()
        log.info("kind lab: %s", name)
        yield
        self.steps[name] = round(time.monotonic() - started, 1)
        log.info("kind lab: %s done in %.1f s", name, self.steps[name])

    def to_json(self) -> dict[str, Any]:
        return {"passed": self.passed, "steps_s": self.steps, "facts": self.facts, "verdicts": self.verdicts,
                "reports": self.reports}

    @property
    def passed(self) -> bool:
        return bool(self.verdicts) and all(v.get("passed") for v in self.verdicts.values())


def rocketmq_manifest(version: str) -> str:
    text = (project.checkout().examples / "kind" / "rocketmq.yaml").read_text()
    return text.replace(workloads.ROCKETMQ_IMAGE.format(version=versions.ROCKETMQ_5),
                        workloads.ROCKETMQ_IMAGE.format(version=version))


def last_line_with(prefix: str, logs: str) -> str | None:
    found = [line[len(prefix):] for line in logs.splitlines() if line.startswith(prefix)]
    return found[-1] if found else None


class Lab:
    def __init__(self, options: LabOptions, state: Path | None = None) -> None:
        self.options = options
        self.state = state or state_dir()
        self.cluster = KindCluster(self.state)
        self.run = LabRun()

    # ---- the whole path -------------------------------------------------------------------------------------

    def up(self) -> LabRun:
        if self.options.api_port is not None:
            require_free_port(self.options.api_port)  # before anything starts, so a refusal leaves nothing behind
        with self.run.step("engine"):
            self.run.facts["engine_started_here"] = engine.ensure_engine(self.state)
        with self.run.step("images"):
            refs = self._images()
        with self.run.step("cluster"):
            engine.check_privileged(NETWORK_TOOLS.image())
            if self.cluster.exists():
                self.cluster.delete()
            self.cluster.create(refs["node"], api_port=self.options.api_port)
        try:
            with self.run.step("load images"):
                self.cluster.load([refs[name] for name in ("routes", "rocketmq", "operator", "chaos")])
            with self.run.step("node routes"):
                self.cluster.install_node_routes(refs["routes"])
            with self.run.step("rocketmq"):
                self._rocketmq()
            with self.run.step("operator"):
                self._operator()
            with self.run.step("policy ready"):
                self._policy_ready()
            with self.run.step("mqadmin read-back"):
                self._mqadmin_read_back()
            if self.options.chaos:
                self._chaos()
            if self.options.report_dir is not None:
                self.options.report_dir.mkdir(parents=True, exist_ok=True)
                (self.options.report_dir / "lab.json").write_text(json.dumps(self.run.to_json(), indent=2) + "\n")
        except Exception:
            self._dump_state()
            raise
        return self.run

    def _images(self) -> dict[str, str]:
        return {"node": node_image(), "routes": workloads.node_routes_image(),
                "rocketmq": workloads.rocketmq_image(self.options.rocketmq_version),
                "operator": workloads.OPERATOR.build(), "chaos": workloads.CHAOS.build()}

    def _rocketmq(self) -> None:
        kubectl = self.cluster.kubectl
        kubectl("apply", "-f", "-", input_text=rocketmq_manifest(self.options.rocketmq_version))
        for workload in ("deployment/rocketmq-namesrv", "statefulset/broker-a", "statefulset/broker-b"):
            kubectl("-n", ROCKETMQ_NS, "rollout", "status", workload, "--timeout=300s", timeout=330)
        self._wait_brokers_registered(("broker-a", "broker-b"))
        self.run.facts["broker_nodes"] = {broker: self.cluster.node_of(ROCKETMQ_NS, f"{broker}-0")
                                          for broker in ("broker-a", "broker-b")}

    def mqadmin(self, *args: str) -> str:
        """The official mqadmin of the brokers' image, run inside the cluster (in the name server's pod)."""
        return self.cluster.kubectl("-n", ROCKETMQ_NS, "exec", "deploy/rocketmq-namesrv", "--", "rocketmq", "mqadmin",
                                    *args, "-n", "127.0.0.1:9876", timeout=180).stdout

    def _wait_brokers_registered(self, names: Sequence[str], within: float = 300) -> None:
        _until(lambda: all(re.search(rf"\b{n}\b", self.mqadmin("clusterList")) for n in names), within,
               f"brokers {', '.join(names)} registered at the name server")

    def _operator(self, replicas: int = 1) -> None:
        helm = str(gobuild.helm_bin() / "helm")
        repository, tag = workloads.OPERATOR_IMAGE.rsplit(":", 1)
        args = [helm, "upgrade", "--install", RELEASE, str(project.checkout().chart),
                f"--kubeconfig={self.cluster.kubeconfig}", "--namespace", OPERATOR_NS, "--create-namespace", "--wait",
                "--timeout=5m",
                f"--set=image.repository={repository}", f"--set=image.tag={tag}", "--set=image.pullPolicy=Never",
                f"--set=defaultCluster.nameServers={NAMESRV}", f"--set=watchNamespaces={{{POLICY_NS}}}",
                "--set=sweepIntervalSeconds=5", f"--set=replicas={replicas}"]
        _run(args, "helm install of the chart", timeout=400)
        deployment = self.cluster.kubectl("-n", OPERATOR_NS, "get", "deployment", "-o", "json")
        container = json.loads(deployment.stdout)["items"][0]["spec"]["template"]["spec"]["containers"][0]
        hardened = container.get("securityContext", {})
        self.run.facts["operator_security"] = {k: hardened.get(k) for k in ("readOnlyRootFilesystem",
                                                                             "allowPrivilegeEscalation")}
        self.run.facts["operator_liveness"] = container.get("livenessProbe", {}).get("httpGet", {}).get("path")

    def _policy_ready(self) -> None:
        kubectl = self.cluster.kubectl
        kubectl("create", "namespace", POLICY_NS, check=False)
        kubectl("-n", POLICY_NS, "apply", "-f", str(project.checkout().sample_policy))
        kubectl("-n", POLICY_NS, "wait", "rp/orders", "--for=condition=Ready", "--timeout=180s", timeout=200)
        status = json.loads(kubectl("-n", POLICY_NS, "get", "rp/orders", "-o", "json").stdout)["status"]
        self.run.facts["policy_status"] = {k: status.get(k) for k in ("synced", "brokers", "ladder") if k in status}

    def _broker_pods(self) -> dict[str, dict[str, Any]]:
        pods = json.loads(self.cluster.kubectl("-n", ROCKETMQ_NS, "get", "pods", f"--selector={BROKER_SELECTOR}",
                                               "-o", "json").stdout)["items"]
        return {pod["metadata"]["labels"]["broker"]: pod for pod in pods
                if not pod["metadata"].get("deletionTimestamp")}

    def _policy_reapplied(self) -> None:
        """Every broker holds the policy at its current pod's address; for a pod made anew (killed by the chaos Job),
        how long after the pod's creation and after its container started the operator had re-applied it."""
        def applied_on_current_pods() -> dict[str, Any] | None:
            pods = self._broker_pods()
            status = json.loads(self.cluster.kubectl("-n", POLICY_NS, "get", "rp/orders", "-o", "json").stdout)
            brokers = {b["name"]: b for b in status.get("status", {}).get("brokers", [])}
            current = all(brokers.get(name, {}).get("state") == "Applied"
                          and brokers[name].get("address") == f"{pod['status'].get('podIP')}:10911"
                          for name, pod in pods.items())
            return {"pods": pods, "brokers": brokers} if current and len(pods) == 2 else None

        seen = _until(applied_on_current_pods, 120, "the policy applied on every broker's current pod")
        for name, pod in seen["pods"].items():
            if pod["metadata"]["uid"] == self.run.facts["broker_pod_uids"].get(name):
                continue
            applied = _timestamp(seen["brokers"][name]["lastAppliedTime"])
            started = pod["status"]["containerStatuses"][0]["state"].get("running", {}).get("startedAt")
            self.run.facts.setdefault("reapplied_s", {})[name] = {
                "after_pod_created": applied - _timestamp(pod["metadata"]["creationTimestamp"]),
                "after_container_started": applied - _timestamp(started) if started else None}

    def _mqadmin_read_back(self) -> None:
        configs = parse_consumer_configs(self.mqadmin("getConsumerConfig", "-g", "orders"))
        self.run.facts["mqadmin_orders"] = {b: {k: c.get(k) for k in ("retryMaxTimes", "retryQueueNums")}
                                            for b, c in configs.items()}
        wrong = {b: c for b, c in self.run.facts["mqadmin_orders"].items()
                 if c != {"retryMaxTimes": "3", "retryQueueNums": "1"}}
        if set(configs) != {"broker-a", "broker-b"} or wrong:
            raise RuntimeError(f"mqadmin reads the group `orders` as {self.run.facts['mqadmin_orders']}, "
                               "not retryMaxTimes=3, retryQueueNums=1 on broker-a and broker-b")

    # ---- chaos ----------------------------------------------------------------------------------------------

    def _chaos(self) -> None:
        self.cluster.kubectl("apply", "-f", str(project.checkout().chaos_manifests / "rbac.yaml"))
        with self.run.step("chaos refused outside the opt-in namespace"):
            self._refused_outside_opt_in()
        before = self.operator_counters()
        self.run.facts["broker_pod_uids"] = {name: pod["metadata"]["uid"] for name, pod in self._broker_pods().items()}
        with self.run.step("chaos: broker pod deleted under load"):
            self._chaos_job("broker-pod-kill", ["broker-pod-kill", f"--rate={LOAD_RATE}", "--duration=20"])
        with self.run.step("operator re-applied the policy to the new broker"):
            self._policy_reapplied()
            self._mqadmin_read_back()
        after = self.operator_counters()
        self.run.facts["operator_counters"] = {name: {"before": before[name], "after": after[name]}
                                               for name in COUNTERS}
        with self.run.step("chaos: retry ladder of the policy's group"):
            self._chaos_job("retry-ladder", ["retry-ladder", "--group=orders"])
        if self.options.node_fault:
            with self.run.step("chaos: node of broker-b paused under load"):
                self._node_fault()
        if self.options.ha:
            with self.run.step("HA: leading operator pod deleted in a burst"):
                self._ha()

    def _chaos_job(self, name: str, args: Sequence[str], *, during: Callable[[], None] | None = None) -> None:
        outcome, logs = self._run_job(chaos_job(f"chaos-{name}", [
            "chaos", "in-cluster", *args, f"--namesrv={NAMESRV}", f"--namespace={ROCKETMQ_NS}",
            f"--selector={BROKER_SELECTOR}", "--report-dir=/tmp/report"]), during=during)
        self._keep_report(name, logs)
        verdict = last_line_with(VERDICT_PREFIX, logs)
        if verdict is None:
            raise RuntimeError(f"chaos Job {name} ended ({outcome}) without a verdict; its log:\n{logs[-3000:]}")
        self.run.verdicts[name] = json.loads(verdict)

    def _refused_outside_opt_in(self) -> None:
        """The stock kill-pods Job aimed at the policies' namespace, which has no chaos opt-in: it must fail, saying
        so, and delete nothing."""
        before = self._broker_pods()
        outcome, logs = self._run_job(chaos_job("chaos-refused", [
            "chaos", "kill-pods", f"--namespace={POLICY_NS}", f"--selector={BROKER_SELECTOR}"]))
        untouched = {n: p["metadata"]["uid"] for n, p in self._broker_pods().items()} == {
            n: p["metadata"]["uid"] for n, p in before.items()}
        if outcome != "failed" or not untouched:
            raise RuntimeError(f"a chaos Job aimed at {POLICY_NS} (no opt-in) ended {outcome}, pods untouched: "
                               f"{untouched}; log:\n{logs[-2000:]}")
        self.run.facts["chaos_refused_outside_opt_in"] = logs.strip().splitlines()[-1]

    def _run_job(self, job: dict[str, Any], *, during: Callable[[], None] | None = None) -> tuple[str, str]:
        """Run `job` afresh (a Job of that name from an earlier run is deleted first); how it ended, and its log."""
        name = job["metadata"]["name"]
        kubectl = self.cluster.kubectl
        kubectl("-n", ROCKETMQ_NS, "delete", "job", name, "--ignore-not-found", "--wait=true")
        kubectl("apply", "-f", "-", input_text=json.dumps(job))
        if during is not None:
            during()
        outcome = _until(lambda: self._job_finished(name), 900, f"chaos Job {name} finished")
        return outcome, kubectl("-n", ROCKETMQ_NS, "logs", f"job/{name}", timeout=60).stdout

    def _job_finished(self, name: str) -> str | None:
        status = json.loads(self.cluster.kubectl("-n", ROCKETMQ_NS, "get", "job", name, "-o", "json").stdout)["status"]
        return "succeeded" if status.get("succeeded") else "failed" if status.get("failed") else None

    def _keep_report(self, name: str, logs: str) -> None:
        encoded = last_line_with(REPORT_PREFIX, logs)
        if encoded is None or self.options.report_dir is None:
            return
        target = self.options.report_dir / name
        target.mkdir(parents=True, exist_ok=True)
        with tarfile.open(fileobj=io.BytesIO(base64.b64decode(encoded)), mode="r:gz") as tar:
            tar.extractall(target, filter="data")
        (target / "job.log").write_text(logs)
        self.run.reports[name] = str(target)

    def _node_fault(self) -> None:
        node = self.run.facts["broker_nodes"]["broker-b"]

        def pause_while_loaded() -> None:
            _until(lambda: self._job_logged("chaos-node-pause", LOAD_RUNNING), 300, "the node-fault Job's load running")
            self.run.facts["node_paused"] = {"node": node, "at": time.time()}
            pause_node(node)
            try:
                time.sleep(NODE_PAUSE_SECONDS)  # the fault's length is the experiment's parameter, not a wait
            finally:
                unpause_node(node)
                self.run.facts["node_paused"]["resumed_at"] = time.time()

        self._chaos_job("node-pause", ["broker-under-load", f"--rate={LOAD_RATE}", "--duration=40"],
                        during=pause_while_loaded)

    def _ha(self) -> None:
        """replicas=2: delete the leading pod during a burst of policies; the takeover time, and proof from both
        pods' logs that no policy was handled by both at once (the old leader's last reconcile precedes the new
        one's first)."""
        kubectl = self.cluster.kubectl
        self._operator(replicas=2)

        def two_live_replicas() -> list[str] | None:
            items = json.loads(kubectl("-n", OPERATOR_NS, "get", "pods", "-o", "json").stdout)["items"]
            live = [p["metadata"]["name"] for p in items if not p["metadata"].get("deletionTimestamp")
                    and p["status"].get("phase") == "Running"]
            return live if len(live) == 2 and len(items) == 2 else None

        pods = _until(two_live_replicas, 120, "two operator replicas and no other pod")
        with _LogStreams(self.cluster, OPERATOR_NS, pods) as streams:
            kubectl("-n", POLICY_NS, "apply", "-f", "-", input_text=json.dumps(_policies("ha-probe", 1)))
            kubectl("-n", POLICY_NS, "wait", "rp/ha-probe-0", "--for=condition=Ready", "--timeout=180s", timeout=200)
            leader = _until(lambda: streams.handler_of(f"{POLICY_NS}/ha-probe-0"), 60, "the leader's reconcile logged")
            deleted_at = time.time()  # the burst lands while the leader goes
            kubectl("-n", OPERATOR_NS, "delete", "pod", leader, "--wait=false")
            kubectl("-n", POLICY_NS, "apply", "-f", "-", input_text=json.dumps(_policies("ha-burst", HA_BURST)))
            kubectl("-n", POLICY_NS, "wait", "rp", "--selector=rocketmq-retry.io/lab=ha-burst",
                    "--for=condition=Ready", "--timeout=300s", timeout=320)
            # A policy is logged before its Ready status is written, but the log streams lag behind the API server:
            # read them once they show every burst policy, not at the moment the last one is Ready.
            # The Deployment replaces the deleted leader, and the replacement may outrank the follower (the chart's
            # priorities are random) and lead in its place: its log is streamed as soon as it runs.
            burst = {f"ha-burst-{index}" for index in range(HA_BURST)}

            def logged() -> bool:
                streams.follow(self._running_operator_pods())
                return burst <= {name for names in streams.handled(POLICY_NS).values() for name in names}

            _until(logged, 60, "every burst policy's reconcile in the replicas' log streams")
        handled = streams.handled(POLICY_NS)
        successors = sorted(pod for pod in handled if pod != leader)
        old = handled.get(leader, {})
        new = {name for pod in successors for name in handled[pod]}
        old_last = max((t for times in old.values() for t in times), default=None)
        new_after = [t for pod in successors for times in handled[pod].values() for t in times if t >= deleted_at]
        self.run.facts["ha"] = {
            "leader": leader, "successors": successors, "burst": HA_BURST,
            "handled_by_leader": len(old), "handled_by_successors": len(new),
            "takeover_s": round(min(new_after) - deleted_at, 2) if new_after else None,
            "leader_last_before_successors_first": old_last is None or not new_after or old_last < min(new_after)}
        if not self.run.facts["ha"]["leader_last_before_successors_first"]:
            raise RuntimeError(f"two replicas handled policies at once: {self.run.facts['ha']}")

    def _running_operator_pods(self) -> list[str]:
        items = json.loads(self.cluster.kubectl("-n", OPERATOR_NS, "get", "pods", "-o", "json").stdout)["items"]
        return [p["metadata"]["name"] for p in items if p["status"].get("phase") == "Running"]

    def _job_logged(self, name: str, text: str) -> bool:
        logs = self.cluster.kubectl("-n", ROCKETMQ_NS, "logs", f"job/{name}", check=False, timeout=60)
        return text in logs.stdout

    @contextmanager
    def _port_forward(self, target: str, port: int) -> Iterator[int]:
        """`kubectl port-forward` to 127.0.0.1 on a port the kernel picks; the host reaches the pod only so."""
        argv = [str(gobuild.kubernetes_bin() / "kubectl"), f"--kubeconfig={self.cluster.kubeconfig}", "-n",
                OPERATOR_NS, "port-forward", "--address=127.0.0.1", target, f":{port}"]
        forward = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert forward.stdout is not None
            line = forward.stdout.readline()  # "Forwarding from 127.0.0.1:PORT -> 9090", or EOF when it failed
            match = re.search(r"127\.0\.0\.1:(\d+)", line)
            if match is None:
                raise RuntimeError(f"kubectl port-forward {target} failed: {line}{forward.communicate()[1][-500:]}")
            yield int(match.group(1))
        finally:
            forward.terminate()
            forward.wait(timeout=10)

    def operator_counters(self) -> dict[str, float]:
        """The operator pod's reconcile and drift counters, scraped from its /metrics through a port-forward."""
        target = f"deployment/{RELEASE}-rocketmq-retry-operator"
        with (self._port_forward(target, METRICS_PORT) as port,
              urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response):
            return counters(response.read().decode())

    def _dump_state(self) -> None:
        for args in (("get", "nodes", "-o", "wide"), ("get", "pods", "-A", "-o", "wide"),
                     ("get", "events", "-A", "--sort-by=.lastTimestamp")):
            result = self.cluster.kubectl(*args, check=False, timeout=60)
            log.error("kubectl %s:\n%s%s", " ".join(args), result.stdout[-4000:], result.stderr[-1000:])


NODE_PAUSE_SECONDS: Final = 15.0
LOAD_RATE: Final = 50  # messages/s of the probe producer: what two brokers on a 2-core machine of three kind nodes take
HA_BURST: Final = 40


def _policies(prefix: str, count: int) -> dict[str, Any]:
    """`count` copies of the sample policy, each for a group of its own, labelled for `kubectl wait`."""
    sample = yaml.safe_load(project.checkout().sample_policy.read_text())
    items = []
    for index in range(count):
        policy = json.loads(json.dumps(sample))
        policy["metadata"] = {"name": f"{prefix}-{index}", "labels": {"rocketmq-retry.io/lab": prefix}}
        policy["spec"]["consumerGroup"] = f"{prefix}-{index}"
        items.append(policy)
    return {"apiVersion": "v1", "kind": "List", "items": items}


class _LogStreams:
    """`kubectl logs -f --timestamps` of some pods into files, read back as who reconciled which policy when."""

    # A reconcile line of the operator names the policy first: "[namespace/name] Reason: message".
    _LINE = re.compile(rf"^(\S+) .*{re.escape(policies.log.name)}: \[([^\]]+)\] ")

    def __init__(self, cluster: KindCluster, namespace: str, pods: Sequence[str]) -> None:
        self.cluster, self.namespace, self.pods = cluster, namespace, list(pods)
        self.streamed: set[str] = set()
        self.processes: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> "_LogStreams":
        self.follow(self.pods)
        return self

    def file_of(self, pod: str) -> Path:
        return self.cluster.state / f"logs-{pod}.txt"

    def follow(self, pods: Sequence[str]) -> None:
        """Stream the pods not streamed yet; `kubectl logs -f` starts from the pod's first line, so none is missed."""
        kubectl = str(gobuild.kubernetes_bin() / "kubectl")
        for pod in pods:
            if pod in self.streamed:
                continue
            self.streamed.add(pod)
            if pod not in self.pods:
                self.pods.append(pod)
            with self.file_of(pod).open("wb") as out:
                self.processes.append(subprocess.Popen(
                    [kubectl, f"--kubeconfig={self.cluster.kubeconfig}", "-n", self.namespace, "logs", "-f",
                     "--timestamps", pod], stdout=out, stderr=subprocess.STDOUT))

    def __exit__(self, *_: object) -> None:
        for process in self.processes:
            process.terminate()
            process.wait(timeout=10)

    def handled(self, namespace: str) -> dict[str, dict[str, list[float]]]:
        """pod -> policy name -> when that pod logged a reconcile of it."""
        found: dict[str, dict[str, list[float]]] = {}
        for pod in self.pods:
            for line in self.file_of(pod).read_text(errors="replace").splitlines():
                match = self._LINE.match(line)
                if match and match[2].startswith(f"{namespace}/"):
                    at = _timestamp(match[1][:26] + "Z")  # RFC 3339 with nanoseconds: keep microseconds
                    found.setdefault(pod, {}).setdefault(match[2].split("/", 1)[1], []).append(at)
        return found

    def handler_of(self, ref: str) -> str | None:
        namespace, name = ref.split("/", 1)
        return next((pod for pod, names in self.handled(namespace).items() if name in names), None)
METRICS_PORT: Final = 9090  # the chart's metrics.port
COUNTERS: Final = ("rocketmq_retry_reconciles", "rocketmq_retry_drift_corrections")


def counters(exposition: str) -> dict[str, float]:
    """Each of COUNTERS summed over its labels, from a Prometheus text exposition."""
    totals = dict.fromkeys(COUNTERS, 0.0)
    for family in text_string_to_metric_families(exposition):
        if family.name in totals:
            totals[family.name] += sum(s.value for s in family.samples if s.name.endswith("_total"))
    return totals


def chaos_job(name: str, args: Sequence[str]) -> dict[str, Any]:
    """chaos/manifests/job.yaml (the chaos ServiceAccount, hardened) running `rocketmq-retry ARGS` from the lab's
    chaos image."""
    job: dict[str, Any] = yaml.safe_load((project.checkout().chaos_manifests / "job.yaml").read_text())
    job["metadata"]["name"] = name
    container = job["spec"]["template"]["spec"]["containers"][0]
    container["image"] = workloads.CHAOS_IMAGE
    container["imagePullPolicy"] = "Never"
    container["args"] = list(args)
    container["volumeMounts"] = [{"name": "tmp", "mountPath": "/tmp"}]  # noqa: S108 - the pod's own scratch
    pod = job["spec"]["template"]["spec"]
    pod["volumes"] = [{"name": "tmp", "emptyDir": {}}]
    # The probes stand outside the fault domain: the chaos hits brokers' nodes, the Job runs on the control plane.
    pod["nodeSelector"] = CONTROL_PLANE
    pod["tolerations"] = [CONTROL_PLANE_TOLERATION]
    return job


def _timestamp(rfc3339: str) -> float:
    return datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp()


def _run(argv: Sequence[str], what: str, timeout: float) -> None:
    result = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{what} failed: {result.stderr.strip()[-2000:]}")


def _until(predicate: Callable[[], T | None], within: float, what: str) -> T:
    """Polled once a second: every predicate here is a kubectl or mqadmin call."""
    return wait_until(predicate, timeout=within, interval=1.0, what=what)


def down(state: Path | None = None) -> list[str]:
    """Remove the lab's cluster and stop the engine the lab started; what was removed."""
    state = state or state_dir()
    removed = []
    if engine.answers():
        cluster = KindCluster(state)
        if cluster.exists():
            cluster.delete()
            removed.append(f"kind cluster {cluster.name}")
    if engine.stop_engine(state):
        removed.append("the Docker engine the lab started")
    return removed
