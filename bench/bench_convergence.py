"""Convergence benchmark: N RetryPolicies through the operator against the `mqadmin` loop a user scripts today.

Starts its own control plane (etcd, kube-apiserver, controller-manager) and a two-master RocketMQ bed. Per size it
installs the chart in a fresh namespace and starts a fresh operator with the chart's ServiceAccount token, so each
size's peak memory is its own. Then, per size:

1. N policies created at once through the API (a thread pool): time until every one is Ready on all masters, and
   each policy's apply -> Ready;
2. (first size only) `mqadmin updateSubGroup` per group per broker for a sample of the same groups and values,
   extrapolated to N where the sample is smaller;
3. one group edited out of band on the first broker: time until the operator has put it back;
4. the last broker restarted with an empty store: time until all N groups are back on it;
5. the operator's peak resident memory (VmHWM) and its own metrics.

Prints one JSON document on stdout; progress goes to stderr. Not a test: it states no goals.

    .venv/bin/python bench/bench_convergence.py --sizes 100,1000
"""

import asyncio
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import click
import kubernetes
from benchlib import configure_logging, machine, nearest_rank, software
from kubernetes.client import ApiException
from prometheus_client.parser import text_string_to_metric_families

from rocketmq_lab import project
from rocketmq_lab.bed import helm, javaprograms, versions
from rocketmq_lab.bed.kube import ControlPlane
from rocketmq_lab.bed.ports import free_port
from rocketmq_lab.bed.processes import ManagedProcess, wait_until
from rocketmq_lab.bed.rocketmq import RocketMQCluster
from rocketmq_lab.chaos import java_probes
from rocketmq_retry.controller import GROUP, PLURAL, VERSION
from rocketmq_retry.controller.config import DEFAULT_SWEEP_INTERVAL
from rocketmq_retry.remoting import Admin, ConnectionPool, RemotingError

log = logging.getLogger("bench_convergence")

Json = dict[str, Any]

ACCOUNT = "rocketmq-retry-operator"
MAX_RETRIES, RETRY_QUEUES = 5, 1  # what every policy asks and every mqadmin call writes
DRIFTED_RETRIES = 9  # the out-of-band edit
ONE_AT_A_TIME = 20  # policies timed alone, before the burst
POLL_INTERVAL = 0.1
WATCH_SECONDS = 30  # one watch request's server-side timeout; the watcher resumes from the last version it saw
CENSUS_SWEEPS = 3  # sweep passes averaged without and with live consumers

METHOD = {
    "convergence": "The clock starts before the first create. Policies are created concurrently by a thread pool "
                   "through the admin client; each policy's send time is taken just before its own create call. "
                   "A watch (list, then watch from the list's resourceVersion) follows each policy's readiness: "
                   "Ready=True, status.synced n/n and observedGeneration == generation. Converged = the moment the "
                   "watch last saw all N Ready at once, accepted only when a list call then shows all N Ready "
                   "(else the wait goes on). apply_to_ready = first seen Ready - send time, per policy "
                   "(creationTimestamp has 1 s resolution, so it is not used). ready_lost = times a policy seen "
                   "Ready was seen not Ready again before convergence. apply_to_watched = first seen by the watch "
                   "in any state - send time: the API server's create -> watch latency, the floor the operator "
                   "(which learns of a policy by a watch too) cannot beat; operator_overhead = first seen Ready - "
                   "first seen, per policy. ready_after_last_create_s = converged - when the last create call "
                   "returned.",
    "one_at_a_time": "Before the burst, 20 policies created one after the other on the idle operator, each when the "
                     "previous one was seen Ready (same readiness rule and clock as apply_to_ready), then deleted.",
    "mqadmin_loop": "What a user scripts today: one `mqadmin updateSubGroup -b <broker> -g <group> -r -q` per group "
                    "per master, one after the other, each a fresh JVM, with the same values; a call counts only if "
                    "mqadmin printed success (it exits 0 on failure). Run once, after the first size converged, on "
                    "a sample of its groups; seconds for N = per-group time x N, marked extrapolated when the sample "
                    "is smaller than N. The JVM is the bed's (class-data archive, C1 only), which starts faster than "
                    "a stock bin/mqadmin, so the ratio is conservative. jvm_start_ms: mqadmin with a sub-command it "
                    "does not know (JVM start and its command table, no network).",
    "drift": "retryMaxTimes of one group rewritten on the first master with our admin client; the clock starts "
             "when that write returns; the broker is polled every 0.1 s until the policy's value is back. The edit "
             "lands at a random point of the sweep cycle, so the time is between one sweep pass and one interval "
             "plus one pass.",
    "store_wipe": "The last master stopped, its store directory deleted, started again; restart_s runs until the "
                  "name server lists it as a master again (polled every 0.5 s). reapplied_s runs from then until "
                  "every policy's group is on that broker with the policy's retryMaxTimes (polled every 0.1 s).",
    "operator_memory": "VmHWM (peak resident set) and VmRSS of the operator process from /proc/<pid>/status: after "
                       "the warm-up policy came and went (no policies), after convergence, and at the end of the "
                       "size (after drift and the store wipe). One operator per size.",
    "operator_metrics": "The operator's own Prometheus series at the end of the size: event reconciles and their "
                        "mean time, completed sweep passes (one per cluster) and their mean time.",
    "live_consumers": "With --live-consumers N, at the end of each size of at least N policies: the mean time of "
                      "3 sweep passes without live consumers (the operator's own sweep-duration series), after one "
                      "more that is not counted (it may still repair the store wipe); "
                      "then one JVM starts N official push consumers, one per group of the first N policies "
                      "(ConsumerFleet: one client instance, so one client id in N groups); listed_s runs from its "
                      "'started' line until N policies show status.consumers (the first census asks each client "
                      "for its settings); then the mean of the next 3 sweep passes with them (steady state: the "
                      "census asks each group's connections, no client again); added_ms_per_sweep is the "
                      "difference.",
}


def ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def stats_ms(values_s: Sequence[float]) -> Json:
    ordered = sorted(values_s)
    return {"count": len(ordered), "p50_ms": ms(nearest_rank(ordered, 0.50)), "p99_ms": ms(nearest_rank(ordered, 0.99)),
            "mean_ms": ms(statistics.fmean(ordered)), "max_ms": ms(ordered[-1])}


def start_bed(plane: ControlPlane, cluster: RocketMQCluster) -> None:
    """Both at once: each spends its start mostly waiting for its own servers, and CI time matters."""
    with ThreadPoolExecutor(2) as pool:
        started = [pool.submit(plane.start), pool.submit(cluster.start)]
    for future in started:
        future.result()
    plane.install_crds(project.checkout().crds)


def admin_client(kubeconfig: Path, connections: int) -> Any:
    """The admin (system:masters) API client, with `connections` kept open for reuse."""
    configuration = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]
        config_file=str(kubeconfig), client_configuration=configuration)
    configuration.connection_pool_maxsize = connections
    return kubernetes.client.ApiClient(configuration)


def ready(policy: Json, masters: int) -> bool:
    status = policy.get("status") or {}
    return (status.get("synced") == f"{masters}/{masters}"
            and status.get("observedGeneration") == policy["metadata"]["generation"]
            and any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions", [])))


@dataclass
class Operator:
    """`rocketmq-retry operator run` for one namespace, with the chart's ServiceAccount token."""

    process: ManagedProcess
    metrics_port: int
    memory: Path | None  # memray's capture of the operator's allocations

    @classmethod
    def start(cls, plane: ControlPlane, namespace: str, *, sweep_interval: float, workdir: Path,
              profile: Path | None, memory: Path | None, source: Path | None) -> "Operator":
        created = plane.kubectl("create", "namespace", namespace)
        if created.returncode != 0:
            raise RuntimeError(f"cannot create namespace {namespace}: {created.stderr.strip()}")
        rendered = helm.render(release=namespace, namespace=namespace,
                               values={"watchNamespaces": [namespace], "serviceAccount": {"name": ACCOUNT}})
        if rendered.returncode != 0:
            raise RuntimeError(f"helm template failed: {rendered.stderr.strip()}")
        applied = plane.kubectl("apply", "--server-side", "-f", "-", input_text=rendered.stdout)
        if applied.returncode != 0:
            raise RuntimeError(f"applying the chart failed: {applied.stderr.strip()}")
        kubeconfig = plane.service_account_kubeconfig(namespace, ACCOUNT, workdir / f"{namespace}.kubeconfig")
        port = free_port()
        # cProfile and memray write their files when kopf has shut down on SIGTERM, so `stop` must let it exit on its
        # own. memray's aggregated capture keeps what its reports need: the allocations live at the peak.
        tracer = []
        if profile:
            tracer = ["-m", "cProfile", "-o", str(profile)]
        elif memory:
            tracer = ["-m", "memray", "run", "--aggregate", "--trace-python-allocators", "-q", "-f", "-o", str(memory)]
        process = ManagedProcess(
            name="operator",
            argv=[sys.executable, *tracer, "-m", "rocketmq_retry", "operator", "run", "--namespace", namespace,
                  "--sweep-interval", f"{sweep_interval:g}", "--metrics-port", str(port)],
            log_path=workdir / f"{namespace}-operator.log",
            env={"KUBECONFIG": str(kubeconfig), "PYTHONUNBUFFERED": "1",
                 **({"PYTHONPATH": str(source / "operator")} if source else {})})
        process.start()
        log.info("operator for %s running (pid %s, log %s)", namespace, process.pid, process.log_path)
        return cls(process, port, memory)

    def stop(self) -> None:
        self.process.stop(timeout=120.0)
        if self.memory is not None:
            self._report_peak(self.memory)

    @staticmethod
    def _report_peak(capture: Path) -> None:
        """memray's summary of the allocations live at the operator's peak, as text next to the capture: by the memory
        each function and its callees hold (`total`), and by what each function allocated itself (`own`)."""
        for view, sort in (("total", []), ("own", ["--sort-column", "3"])):
            written = capture.with_suffix(f".{view}.txt")
            with written.open("w") as out:
                subprocess.run([sys.executable, "-m", "memray", "summary", "--max-rows", "60", *sort, str(capture)],
                               stdout=out, check=True, env={**os.environ, "COLUMNS": "220"})
            log.info("memray summary of the operator's peak, by %s memory: %s", view, written)

    def memory_mib(self) -> Json:
        """Peak and current resident set of the operator process, from the kernel's own accounting."""
        fields = dict(line.split(":", 1) for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines())
        return {name: round(int(fields[key].split()[0]) / 1024, 1)
                for name, key in (("peak_rss_mib", "VmHWM"), ("rss_mib", "VmRSS"))}

    def metrics(self) -> Json:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10) as response:
            text = response.read().decode()
        found: dict[tuple[str, str], float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                key = (sample.name, sample.labels.get("trigger", ""))
                found[key] = found.get(key, 0.0) + sample.value

        def mean(trigger: str) -> float:
            count = found[("rocketmq_retry_reconcile_duration_seconds_count", trigger)]
            return found[("rocketmq_retry_reconcile_duration_seconds_sum", trigger)] / count if count else 0.0

        return {"event_reconciles": int(found[("rocketmq_retry_reconciles_total", "event")]),
                "event_reconcile_mean_ms": ms(mean("event")),
                "sweep_passes": int(found[("rocketmq_retry_reconcile_duration_seconds_count", "sweep")]),
                "sweep_pass_mean_ms": ms(mean("sweep"))}


    def sweeps(self) -> tuple[int, float]:
        """Completed sweep passes and their summed seconds, so far."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10) as response:
            text = response.read().decode()
        count = total = 0.0
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.labels.get("trigger") == "sweep":
                    if sample.name == "rocketmq_retry_reconcile_duration_seconds_count":
                        count += sample.value
                    elif sample.name == "rocketmq_retry_reconcile_duration_seconds_sum":
                        total += sample.value
        return int(count), total

    def sweep_mean_ms(self, sweeps: int, timeout: float) -> float:
        """The mean time of the next `sweeps` sweep passes."""
        count, total = self.sweeps()
        wait_until(lambda: self.sweeps()[0] >= count + sweeps, timeout=timeout, interval=0.5, process=self.process,
                   what=f"{sweeps} more sweep passes")
        later_count, later_total = self.sweeps()
        return ms((later_total - total) / (later_count - count))


class Policies:
    """The RetryPolicy objects of one namespace, through the admin client."""

    def __init__(self, client: Any, namespace: str, namesrv: str, masters: int) -> None:
        self.custom = kubernetes.client.CustomObjectsApi(client)
        self.namespace = namespace
        self.namesrv = namesrv
        self.masters = masters

    def create(self, name: str, group: str) -> None:
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "RetryPolicy", "metadata": {"name": name},
                "spec": {"cluster": {"nameServers": self.namesrv}, "consumerGroup": group,
                         "maxRetries": MAX_RETRIES, "retryQueues": RETRY_QUEUES}}
        self.custom.create_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, body)

    def delete(self, name: str) -> None:
        self.custom.delete_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name)

    def list(self) -> tuple[list[Json], str]:
        """Every policy and the list's resourceVersion (where a watch continues)."""
        listed = cast(Json, self.custom.list_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL))
        return listed["items"], listed["metadata"]["resourceVersion"]

    def ready(self, policy: Json) -> bool:
        return ready(policy, self.masters)


class ReadyWatch(threading.Thread):
    """The wanted policies' readiness as it changes: list, then watch on from there; relist if the watch expires.

    Records when each policy was first seen Ready, and when all of them last became Ready at once: under load the
    drift sweep can mark a policy Ready before its own handler has run, and the handler's failed attempt then
    takes Ready away again.
    """

    def __init__(self, policies: Policies, wanted: set[str]) -> None:
        super().__init__(name="ready-watch", daemon=True)
        self.first_seen: dict[str, float] = {}  # in any state: the API server's create -> watch event
        self.first_ready: dict[str, float] = {}
        self.ready_now: set[str] = set()
        self.all_ready = threading.Event()  # set while every wanted policy is Ready in the watch's view
        self.all_ready_at = 0.0  # when they last all became Ready
        self.lost = 0  # times a policy seen Ready was later seen not Ready
        self.error: BaseException | None = None
        self.listed = threading.Event()  # set once the first list was seen: the watch follows from there
        self._policies = policies
        self._wanted = wanted
        self._watch = kubernetes.watch.Watch()  # type: ignore[no-untyped-call]
        self._stopping = False

    def run(self) -> None:
        try:
            while not self._stopping:
                items, version = self._policies.list()
                for item in items:
                    self._see(item)
                self.listed.set()
                self._follow(version)
        except Exception as error:  # handed to the waiting thread, which reports it
            if not self._stopping:
                self.error = error

    def _follow(self, version: str) -> None:
        """Watch from `version`, one bounded request after the other, until stopped or the version expired (410)."""
        policies = self._policies
        while not self._stopping:
            try:
                for event in self._watch.stream(  # type: ignore[no-untyped-call]
                        policies.custom.list_namespaced_custom_object, GROUP, VERSION, policies.namespace, PLURAL,
                        resource_version=version, allow_watch_bookmarks=True, timeout_seconds=WATCH_SECONDS,
                        deserialize=False):
                    version = event["object"]["metadata"]["resourceVersion"]
                    if event["type"] in {"ADDED", "MODIFIED"}:
                        self._see(event["object"])
            except ApiException as error:
                if error.status == 410:
                    return
                raise

    def _see(self, policy: Json) -> None:
        name = policy["metadata"]["name"]
        if name not in self._wanted:
            return
        seen = time.monotonic()
        self.first_seen.setdefault(name, seen)
        if self._policies.ready(policy):
            self.first_ready.setdefault(name, seen)
            self.ready_now.add(name)
            if len(self.ready_now) == len(self._wanted) and not self.all_ready.is_set():
                self.all_ready_at = seen
                self.all_ready.set()
        elif name in self.ready_now:
            self.ready_now.discard(name)
            self.lost += 1
            self.all_ready.clear()

    def raise_error(self) -> None:
        """Hand the watch thread's failure, if any, to the waiting thread."""
        if self.error is not None:
            raise RuntimeError(f"watching the policies failed: {self.error}") from self.error

    def stop(self) -> None:
        self._stopping = True
        self._watch.stop()  # type: ignore[no-untyped-call]


def warm_up(policies: Policies, operator: Operator, group: str, timeout: float) -> None:
    """One policy through the whole path, then gone, so that no size pays for the operator's start."""
    policies.create("warm-up", group)
    wait_until(lambda: any(policies.ready(p) for p in policies.list()[0]), timeout=timeout, interval=0.5,
               process=operator.process, what="the warm-up policy Ready")
    delete_all(policies, operator, ["warm-up"], timeout)


def one_at_a_time(policies: Policies, operator: Operator, groups: dict[str, str], timeout: float) -> Json:
    """Policies created one after the other, each once the previous is Ready: apply -> Ready without a burst."""
    watch = ReadyWatch(policies, set(groups))
    watch.start()
    latencies = []
    try:
        wait_until(watch.listed.is_set, timeout=timeout, interval=POLL_INTERVAL, what="the watch listing")
        for name, group in groups.items():
            sent = time.monotonic()
            policies.create(name, group)

            def seen(wanted: str = name) -> bool:
                return wanted in watch.first_ready or watch.error is not None

            wait_until(seen, timeout=timeout, interval=0.005, process=operator.process, what=f"{name} Ready")
            watch.raise_error()
            latencies.append(watch.first_ready[name] - sent)
    finally:
        watch.stop()
    delete_all(policies, operator, groups, timeout)
    return stats_ms(latencies)


def delete_all(policies: Policies, operator: Operator, names: Iterable[str], timeout: float) -> None:
    """Delete these policies and wait until the namespace has none left, so that the next phase starts empty."""
    for name in names:
        policies.delete(name)
    wait_until(lambda: not policies.list()[0], timeout=timeout, interval=0.5, process=operator.process,
               what="the policies deleted")


def converge(policies: Policies, operator: Operator, groups: dict[str, str], *, workers: int,
             timeout: float) -> Json:
    """Create every policy at once and time until all are Ready (see METHOD['convergence'])."""
    watch = ReadyWatch(policies, set(groups))
    watch.start()
    sent: dict[str, float] = {}
    acknowledged: dict[str, float] = {}

    def create(name: str) -> None:
        sent[name] = time.monotonic()
        policies.create(name, groups[name])
        acknowledged[name] = time.monotonic()

    try:
        started = time.monotonic()
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(create, groups))
        created = time.monotonic() - started
        deadline = started + timeout
        while True:
            wait_until(lambda: watch.all_ready.is_set() or watch.error is not None,
                       timeout=max(deadline - time.monotonic(), 0.0), interval=POLL_INTERVAL,
                       process=operator.process, what=f"all {len(groups)} policies Ready")
            watch.raise_error()
            converged = watch.all_ready_at - started
            items, _ = policies.list()
            if len(items) == len(groups) and all(policies.ready(p) for p in items):
                break
            time.sleep(POLL_INTERVAL)  # the list shows a policy lost Ready that the watch has not delivered yet
    finally:
        watch.stop()
    last_acknowledged = max(acknowledged.values()) - started
    return {"policies": len(groups), "seconds": round(converged, 3),
            "policies_per_s": round(len(groups) / converged, 1), "created_in_s": round(created, 3),
            "ready_after_last_create_s": round(converged - last_acknowledged, 3),
            "ready_lost": watch.lost,
            "apply_to_ready": stats_ms([watch.first_ready[name] - sent[name] for name in groups]),
            "apply_to_watched": stats_ms([watch.first_seen[name] - sent[name] for name in groups]),
            "operator_overhead": stats_ms([watch.first_ready[name] - watch.first_seen[name] for name in groups])}


def mqadmin_loop(cluster: RocketMQCluster, groups: Sequence[str]) -> Json:
    """`mqadmin updateSubGroup` per group per master, one after the other (see METHOD['mqadmin_loop'])."""
    floor = []
    for _ in range(3):
        begun = time.monotonic()
        result = cluster.mqadmin("noSuchSubCommand")
        floor.append(time.monotonic() - begun)
        if "not exist" not in result.stdout:
            raise RuntimeError(f"mqadmin with an unknown sub-command did not say so: {result.stdout[-500:]}")
    calls = []
    started = time.monotonic()
    for index, group in enumerate(groups):
        log.info("mqadmin loop: group %d/%d", index + 1, len(groups))
        for broker in cluster.brokers:
            begun = time.monotonic()
            result = cluster.mqadmin("updateSubGroup", "-b", broker.addr, "-g", group, "-r", str(MAX_RETRIES),
                                     "-q", str(RETRY_QUEUES))
            calls.append(time.monotonic() - begun)
            if "success" not in result.stdout:
                raise RuntimeError(f"mqadmin updateSubGroup {group} on {broker.name} failed:\n"
                                   f"{result.stdout[-1000:]}{result.stderr[-2000:]}")
    elapsed = time.monotonic() - started
    return {"groups_timed": len(groups), "calls_timed": len(calls), "seconds_timed": round(elapsed, 3),
            "seconds_per_group": round(elapsed / len(groups), 3), "per_call": stats_ms(calls),
            "jvm_start": stats_ms(floor)}


def against_mqadmin(measured: Json, size: int, converged_s: float) -> Json:
    """The loop's time for `size` groups, from the measured sample, and how many times longer it takes."""
    extrapolated = measured["groups_timed"] < size
    seconds = measured["seconds_per_group"] * size if extrapolated else measured["seconds_timed"]
    return {"seconds": round(seconds, 1), "extrapolated": extrapolated,
            "extrapolated_from_groups": measured["groups_timed"] if extrapolated else None,
            "operator_speedup": round(seconds / converged_s, 1)}


async def poll(check: Callable[[], Awaitable[bool]], operator: Operator, what: str) -> float:
    """Seconds until `check` holds, polled every POLL_INTERVAL; fails with the operator's log if it exits."""
    started = time.monotonic()
    while not await check():
        if not operator.process.running:
            raise operator.process.failure(f"exited while waiting for {what}")
        await asyncio.sleep(POLL_INTERVAL)
    return time.monotonic() - started


def bounded(phase: Coroutine[Any, Any, Json], operator: Operator, timeout: float, what: str) -> Json:
    """Run one timed phase to its end, or fail with the operator's log after `timeout` seconds."""

    async def run() -> Json:
        try:
            return await asyncio.wait_for(phase, timeout)
        except TimeoutError:
            raise operator.process.failure(f"no {what} within {timeout:g} s") from None

    return asyncio.run(run())


async def repair_drift(cluster: RocketMQCluster, operator: Operator, group: str, sweep_interval: float) -> Json:
    """Edit one group out of band on the first master and time until the operator put it back."""
    broker = cluster.brokers[0]
    async with ConnectionPool(request_timeout=15.0) as pool:
        admin = Admin(pool, [cluster.namesrv_addr])
        config = await admin.get_subscription_group(broker.addr, group)
        if config is None or config.retry_max_times != MAX_RETRIES:
            raise RuntimeError(f"{group} on {broker.name} is not as the policy asks before the edit: {config}")
        config.retry_max_times = DRIFTED_RETRIES
        await admin.update_subscription_group(broker.addr, config)

        async def reverted() -> bool:
            found = await admin.get_subscription_group(broker.addr, group)
            return found is not None and found.retry_max_times == MAX_RETRIES

        seconds = await poll(reverted, operator, f"drift of {group} repaired")
    return {"broker": broker.name, "repaired_s": round(seconds, 3), "sweep_interval_s": sweep_interval}


async def reapply_after_wipe(cluster: RocketMQCluster, operator: Operator, groups: Sequence[str]) -> Json:
    """Restart the last master with an empty store and time until every policy's group is back on it."""
    broker = cluster.brokers[-1]
    log.info("restarting %s with an empty store", broker.name)
    started = time.monotonic()
    await asyncio.to_thread(cluster.restart, broker.name, wipe_store=True)
    restarted = time.monotonic() - started
    log.info("%s registered again after %.1f s; waiting for %d groups", broker.name, restarted, len(groups))
    async with ConnectionPool(request_timeout=15.0) as pool:
        admin = Admin(pool, [cluster.namesrv_addr])

        async def all_back() -> bool:
            try:
                found = await admin.get_all_subscription_groups(broker.addr)
            except (RemotingError, OSError):
                return False  # the broker may refuse requests for a moment after it registered
            return all(g in found and found[g].retry_max_times == MAX_RETRIES for g in groups)

        reapplied = await poll(all_back, operator, f"all groups back on {broker.name}")
    return {"broker": broker.name, "groups": len(groups), "restart_s": round(restarted, 3),
            "reapplied_s": round(reapplied, 3)}


@dataclass(frozen=True)
class Settings:
    sweep_interval: float
    workers: int
    timeout: float
    profile_dir: Path | None
    memory_dir: Path | None
    operator_source: Path | None
    live_consumers: int


@dataclass(frozen=True)
class Bed:
    plane: ControlPlane
    cluster: RocketMQCluster
    client: Any  # the admin API client
    workdir: Path
    run_id: str  # in namespaces and group names, so runs never meet on a reused broker


def run_size(bed: Bed, size: int, settings: Settings, mqadmin_groups: int) -> tuple[Json, Json | None]:
    """Every measurement of one size with its own namespace and operator; the mqadmin sample when asked for one."""
    cluster = bed.cluster
    namespace = f"bench-{size}-{bed.run_id}"
    profile = settings.profile_dir / f"operator-{size}.prof" if settings.profile_dir else None
    memory = settings.memory_dir / f"memory-{size}.bin" if settings.memory_dir else None
    operator = Operator.start(bed.plane, namespace, sweep_interval=settings.sweep_interval, workdir=bed.workdir,
                              profile=profile, memory=memory, source=settings.operator_source)
    try:
        policies = Policies(bed.client, namespace, cluster.namesrv_addr, len(cluster.brokers))
        prefix = f"bench_{bed.run_id}_{size}_"
        warm_up(policies, operator, f"{prefix}warm_up", settings.timeout)
        memory_idle = operator.memory_mib()
        singles = {f"single-{index:02d}": f"{prefix}single_{index:02d}" for index in range(ONE_AT_A_TIME)}
        alone = one_at_a_time(policies, operator, singles, settings.timeout)
        log.info("size %d: %d policies one at a time, apply -> Ready p50 %.0f ms", size, ONE_AT_A_TIME, alone["p50_ms"])
        groups = {f"p-{index:05d}": f"{prefix}{index:05d}" for index in range(size)}
        log.info("size %d: creating %d policies with %d threads", size, size, settings.workers)
        convergence = converge(policies, operator, groups, workers=settings.workers, timeout=settings.timeout)
        log.info("size %d: all Ready after %.2f s", size, convergence["seconds"])
        memory_converged = operator.memory_mib()
        names = list(groups.values())
        mqadmin = mqadmin_loop(cluster, names[:mqadmin_groups]) if mqadmin_groups else None
        log.info("size %d: drift repair (sweep interval %g s)", size, settings.sweep_interval)
        drift = bounded(repair_drift(cluster, operator, names[len(names) // 2], settings.sweep_interval), operator,
                        settings.timeout, "drift repaired")
        wipe = bounded(reapply_after_wipe(cluster, operator, names), operator, settings.timeout,
                       "re-apply after the store wipe")
        live = None
        if 0 < settings.live_consumers <= size:
            log.info("size %d: sweeps without and with %d live consumers", size, settings.live_consumers)
            live = live_consumers(bed, operator, policies, names[:settings.live_consumers], settings.timeout)
        result = {"policies": size, "namespace": namespace, "one_at_a_time": alone, "convergence": convergence,
                  "drift": drift,
                  "store_wipe": wipe,
                  "live_consumers": live,
                  "operator": {"pid": operator.process.pid, "after_warm_up": memory_idle,
                               "after_convergence": memory_converged,
                               "at_end": operator.memory_mib(), "metrics": operator.metrics()}}
    finally:
        operator.stop()
    return result, mqadmin


def live_consumers(bed: Bed, operator: Operator, policies: Policies, groups: Sequence[str], timeout: float) -> Json:
    """Sweep time without and with one live official consumer in each of `groups` (METHOD["live_consumers"])."""
    operator.sweep_mean_ms(1, timeout)  # the sweep under way may still repair the store wipe: not counted
    without = operator.sweep_mean_ms(CENSUS_SWEEPS, timeout)
    topic = f"bench_fleet_{bed.run_id}"
    bed.cluster.create_topic(topic, queues=1)
    argv = javaprograms.compiled(bed.cluster.version).argv(
        "ConsumerFleet", "--namesrv", bed.cluster.namesrv_addr, "--topic", topic, "--groups", ",".join(groups),
        "--duration", str(timeout), home=bed.workdir / "fleet", options=java_probes.JVM_OPTIONS)
    (bed.workdir / "fleet").mkdir(exist_ok=True)
    fleet = ManagedProcess("consumer-fleet", argv, bed.workdir / "fleet.log", cwd=bed.workdir / "fleet")
    fleet.start()
    try:
        wait_until(lambda: f"started {len(groups)}" in fleet.log_tail(5), timeout=timeout, interval=0.5,
                   process=fleet, what="all consumers started")
        started = time.monotonic()
        wanted = set(groups)

        def all_listed() -> bool:
            found, _ = policies.list()
            return sum(bool(p.get("status", {}).get("consumers")) for p in found
                       if p["spec"]["consumerGroup"] in wanted) == len(wanted)

        wait_until(all_listed, timeout=timeout, interval=0.5, process=operator.process,
                   what=f"{len(groups)} policies listing their consumer")
        listed = time.monotonic() - started
        with_consumers = operator.sweep_mean_ms(CENSUS_SWEEPS, timeout)
    finally:
        fleet.stop()
    return {"consumers": len(groups), "sweeps_each": CENSUS_SWEEPS, "sweep_mean_ms_without": without,
            "listed_s": round(listed, 3), "sweep_mean_ms_with": with_consumers,
            "added_ms_per_sweep": round(with_consumers - without, 1)}


def parse_sizes(_: click.Context, __: click.Parameter, value: str) -> list[int]:
    try:
        sizes = [int(part) for part in value.split(",") if part.strip()]
    except ValueError:
        raise click.BadParameter("a comma-separated list of policy counts, e.g. 100,1000") from None
    if not sizes or min(sizes) < 1:
        raise click.BadParameter("at least one size, each at least 1")
    return sizes


@click.command()
@click.option("--sizes", default="100,1000", show_default=True, callback=parse_sizes,
              help="Policy counts, comma-separated (e.g. 100,1000,10000); each runs in its own namespace.")
@click.option("--sweep-interval", default=DEFAULT_SWEEP_INTERVAL, show_default=True, type=click.FloatRange(min=0.1),
              help="The operator's drift-sweep interval in seconds (the chart's default as shipped).")
@click.option("--mqadmin-groups", default=20, show_default=True, type=click.IntRange(1),
              help="Groups of the first size the mqadmin loop is timed on (2 JVMs each); extrapolated to larger "
                   "sizes.")
@click.option("--skip-mqadmin", is_flag=True, help="Do not time the mqadmin loop.")
@click.option("--create-workers", default=16, show_default=True, type=click.IntRange(1),
              help="Threads creating the policies.")
@click.option("--timeout", default=1800.0, show_default=True, type=click.FloatRange(min=1),
              help="Bound of each wait (convergence, drift, re-apply), in seconds.")
@click.option("--profile-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Run the operator under cProfile and keep operator-<size>.prof here (slows it down: numbers of "
                   "such a run are for finding hot spots, not for reporting).")
@click.option("--memory-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Run the operator under memray and keep, per size, its capture (memory-<size>.bin) and where the "
                   "memory live at its peak was allocated (memory-<size>.total.txt, .own.txt) here (slows it down: "
                   "for finding where the bytes go, not for reporting timings).")
@click.option("--operator-source", type=click.Path(file_okay=False, exists=True, path_type=Path), default=None,
              help="Run the operator from this checkout's operator/ (e.g. a git worktree of an earlier commit), "
                   "everything else from this one: a before/after on the same bed and benchmark.")
@click.option("--live-consumers", default=0, show_default=True, type=click.IntRange(0),
              help="At the end of each size of at least this many policies, time the sweep with one live official "
                   "consumer in each of that many groups (0: skip).")
def main(*, sizes: list[int], sweep_interval: float, mqadmin_groups: int, skip_mqadmin: bool, create_workers: int,
         timeout: float, profile_dir: Path | None, memory_dir: Path | None, operator_source: Path | None,
         live_consumers: int) -> None:
    """Convergence, apply->Ready, the mqadmin loop, drift repair, store-wipe re-apply and memory, as one JSON."""
    configure_logging()
    if profile_dir and memory_dir:
        raise click.UsageError("--profile-dir and --memory-dir each trace the operator: use one at a time")
    for kept in (profile_dir, memory_dir):
        if kept is not None:
            kept.mkdir(parents=True, exist_ok=True)
    settings = Settings(sweep_interval, create_workers, timeout, profile_dir and profile_dir.resolve(),
                        memory_dir and memory_dir.resolve(), operator_source and operator_source.resolve(),
                        live_consumers)
    workdir = Path(tempfile.mkdtemp(prefix="bench-convergence-"))
    plane = ControlPlane(workdir / "kubernetes")
    cluster = RocketMQCluster(versions.ROCKETMQ_5, workdir / "rocketmq")
    load = os.getloadavg()[0]
    results: list[Json] = []
    mqadmin: Json | None = None
    try:
        log.info("starting the control plane and RocketMQ %s (2 masters)", cluster.version)
        start_bed(plane, cluster)
        client = admin_client(plane.kubeconfig, create_workers + 1)  # one per creating thread, one for the watch
        bed = Bed(plane, cluster, client, workdir, uuid.uuid4().hex[:6])
        for index, size in enumerate(sizes):
            sample = min(mqadmin_groups, size) if index == 0 and not skip_mqadmin else 0
            result, measured = run_size(bed, size, settings, sample)
            results.append(result)
            mqadmin = mqadmin or measured
    finally:
        cluster.stop()
        plane.stop()
    shutil.rmtree(workdir)  # kept when anything failed: its logs are named in the error
    for result in results:
        if mqadmin is not None:
            result["mqadmin_loop"] = against_mqadmin(mqadmin, result["policies"], result["convergence"]["seconds"])
    report = {
        "benchmark": "convergence",
        "machine": machine(load),
        "versions": software(cluster.version, kubernetes=versions.KUBERNETES),
        "settings": {"brokers": len(cluster.brokers), "sizes": sizes, "sweep_interval_s": sweep_interval,
                     "create_workers": create_workers, "mqadmin_groups": None if skip_mqadmin else mqadmin_groups,
                     "profiled": profile_dir is not None, "memory_traced": memory_dir is not None,
                     "operator_source": str(operator_source) if operator_source else None,
                     "live_consumers": live_consumers},
        "method": METHOD,
        "mqadmin": mqadmin,
        "sizes": results,
    }
    click.echo(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
