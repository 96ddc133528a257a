"""The `rocketmq-retry` command line."""

import copy
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import ParamSpec, TypeVar

import click
from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

from .bed import gobuild, maven, versions
from .bed.artifacts import BuildFailed
from .bed.prerequisites import MissingPrerequisite
from .bed.processes import ProcessFailed
from .bed.stack import LocalStack
from .controller import config
from .controller.peering import DEFAULT_LIFETIME, Peering, own_identity, random_priority

P = ParamSpec("P")
R = TypeVar("R")
_stderr = Console(stderr=True)
log = logging.getLogger(__name__)


class KopfObjectFormatter(logging.Formatter):
    """Names the object of kopf's per-object lines (`[namespace/name] Handler 'finalize' succeeded.`), as kopf's own
    formatter does: kopf carries it only in the record's `k8s_ref`, which a plain format drops."""

    def format(self, record: logging.LogRecord) -> str:
        ref = getattr(record, "k8s_ref", None)
        if isinstance(ref, dict) and ref.get("name"):
            record = copy.copy(record)
            record.msg = f"[{'/'.join(str(part) for part in (ref.get('namespace'), ref['name']) if part)}] {record.msg}"
        return super().format(record)


def _friendly_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Known failures become one readable message and an exit code, not a traceback."""

    @wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except MissingPrerequisite as missing:
            _stderr.print(f"[bold red]missing prerequisite:[/] {missing}", highlight=False, soft_wrap=True)
            sys.exit(2)
        except (BuildFailed, ProcessFailed, TimeoutError, RuntimeError) as failure:
            _stderr.print(f"[bold red]error:[/] {failure}", highlight=False, soft_wrap=True)
            sys.exit(1)

    return wrapper


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
def main(verbose: bool) -> None:
    """Kubernetes API for RocketMQ consumer retries and dead letters, and its local test bed."""
    level = logging.DEBUG if verbose else logging.INFO
    if _stderr.is_terminal:
        handler: logging.Handler = RichHandler(console=_stderr, show_path=False)
        handler.setFormatter(KopfObjectFormatter("%(message)s"))
    else:  # CI logs and pipes: one plain, greppable line per record
        handler = logging.StreamHandler()
        handler.setFormatter(KopfObjectFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler])


@main.command()
@click.option("--rocketmq", "rocketmq_versions", multiple=True, default=versions.ROCKETMQ_VERSIONS,
              show_default=True, help="RocketMQ versions whose jars to resolve.")
@click.option("--kubernetes/--no-kubernetes", default=True, show_default=True,
              help="Also build kube-apiserver, kube-controller-manager, kubectl, etcd and Helm.")
@_friendly_errors
def setup(rocketmq_versions: tuple[str, ...], kubernetes: bool) -> None:
    """Install everything the bed needs into the user cache (reused when already there)."""
    started = time.monotonic()
    for version in rocketmq_versions:
        click.echo(f"RocketMQ {version} jars: {maven.rocketmq_lib(version)}")
    if kubernetes:
        click.echo(f"Kubernetes {versions.KUBERNETES}: {gobuild.kubernetes_bin()}")
        click.echo(f"etcd {versions.ETCD}: {gobuild.etcd_bin()}")
        click.echo(f"Helm {versions.HELM}: {gobuild.helm_bin()}")
    click.echo(f"set-up time: {time.monotonic() - started:.1f} s")


@main.group()
def local() -> None:
    """A local stack on loopback: etcd, kube-apiserver, controller-manager, name server, brokers."""


_state_option = click.option("--state-dir", type=click.Path(path_type=Path), default=None,
                             help="Where the stack keeps its state, stores and logs.")


@local.command()
@_state_option
@click.option("--rocketmq-version", default=versions.ROCKETMQ_5, show_default=True,
              type=click.Choice(list(versions.ROCKETMQ_VERSIONS)))
@click.option("--brokers", default=2, show_default=True, type=click.IntRange(1, 8))
@click.option("--kubernetes/--no-kubernetes", default=True, show_default=True)
@_friendly_errors
def up(state_dir: Path | None, rocketmq_version: str, brokers: int, kubernetes: bool) -> None:
    """Bring the stack up (safe to re-run) and print where to reach it."""
    stack = LocalStack.at(state_dir)
    stack.up(rocketmq_version=rocketmq_version, brokers=brokers, kubernetes=kubernetes)
    status = stack.status()
    click.echo(f"kubeconfig:  {status['kubeconfig']}")
    click.echo(f"name server: {status['nameServer']}")
    if status["proxy"]:
        click.echo(f"gRPC proxy:  {status['proxy']}")


@local.command()
@_state_option
@_friendly_errors
def down(state_dir: Path | None) -> None:
    """Stop everything `up` started, and nothing else."""
    stack = LocalStack.at(state_dir)
    stopped = [p.name for p in stack.processes if p.running]
    stack.down()
    click.echo(f"stopped: {', '.join(stopped) or 'nothing was running'}")


@local.command()
@_state_option
def status(state_dir: Path | None) -> None:
    """Print the stack's endpoints and processes as JSON (exit 1 if anything is down)."""
    stack = LocalStack.at(state_dir)
    click.echo(json.dumps(stack.status(), indent=2))
    if not stack.healthy:
        sys.exit(1)


@main.command()
@_state_option
@click.option("--short", is_flag=True, help="Shorter chaos runs (what CI runs).")
@_friendly_errors
def demo(state_dir: Path | None, short: bool) -> None:
    """Run the main job on the embedded default and end with a report.

    Local stack, operator, a sample RetryPolicy, a broker killed under load and the retry ladder walked, then
    the verdicts, plots and journal. The stack keeps running afterwards; Ctrl-C tears it down.
    """
    from .demo import Demo  # noqa: PLC0415 - it uses the `kubernetes` client, which `operator run` must not load

    stack = LocalStack.at(state_dir)
    console = Console()
    runner = Demo(stack, console, short=short)
    passed = runner.run()
    status = stack.status()
    console.print(f"kubeconfig:  {status['kubeconfig']}\nname server: {status['nameServer']}\n"
                  f"total: {time.monotonic() - runner.started:.0f} s; the stack keeps running: "
                  "`make down` (or `rocketmq-retry local down`) tears it down", highlight=False)
    if not passed:
        sys.exit(1)


@main.group(name="kind")
def kind_group() -> None:
    """Chaos in a kind cluster built from local parts only (Docker engine, images, cluster, chart, chaos Jobs)."""


@kind_group.command(name="up")
@click.option("--rocketmq", "rocketmq_version", type=click.Choice(versions.ROCKETMQ_VERSIONS),
              default=versions.ROCKETMQ_5, show_default=True, help="RocketMQ version of the broker image.")
@click.option("--api-port", type=click.IntRange(1, 65535), default=None,
              help="Port of the cluster's API server on 127.0.0.1 (default: a free one).")
@click.option("--report-dir", type=click.Path(path_type=Path), default=None,
              help="Where the chaos Jobs' reports (verdicts, journals, plots) are copied (default: the lab's state).")
@click.option("--chaos/--no-chaos", default=True, show_default=True, help="Run the in-cluster chaos Jobs.")
@click.option("--node-fault/--no-node-fault", default=True, show_default=True,
              help="Also pause the kind node of a broker under load.")
@click.option("--ha/--no-ha", default=True, show_default=True,
              help="Also run the chart with 2 replicas and delete the leading pod in a burst of policies.")
@_friendly_errors
def kind_up(*, rocketmq_version: str, api_port: int | None, report_dir: Path | None, chaos: bool,
            node_fault: bool, ha: bool) -> None:
    """From nothing to verdicts: the cluster of kind-config.yaml, RocketMQ, the chart, the sample policy, chaos Jobs.

    Exits 1 when a verdict fails. The cluster keeps running afterwards: `rocketmq-retry kind down` removes it.
    """
    from .bed.kind.lab import Lab, LabOptions, state_dir  # noqa: PLC0415 - the lab is not the operator's

    report_dir = report_dir or state_dir() / "reports" / time.strftime("%Y%m%d-%H%M%S")
    lab = Lab(LabOptions(rocketmq_version=rocketmq_version, api_port=api_port, report_dir=report_dir, chaos=chaos,
                         node_fault=node_fault, ha=ha))
    run = lab.up()
    console = Console()
    console.print_json(data={"steps_s": run.steps, "facts": run.facts})
    table = Table(title=f"Chaos verdicts in kind (RocketMQ {rocketmq_version})")
    for column in ("experiment", "verdict", "why"):
        table.add_column(column)
    for name, verdict in run.verdicts.items():
        reasons = [r for v in verdict.get("experiments", {}).values() for r in v.get("reasons", [])]
        table.add_row(name, "[green]PASS[/green]" if verdict.get("passed") else "[red]FAIL[/red]",
                      "\n".join(reasons) or "-")
    console.print(table)
    console.print(f"kubeconfig: {lab.cluster.kubeconfig}; reports in {report_dir}; "
                  "`rocketmq-retry kind down` removes the cluster", highlight=False)
    if chaos and not run.passed:
        sys.exit(1)


@kind_group.command(name="down")
@_friendly_errors
def kind_down() -> None:
    """Remove the lab's kind cluster and stop the Docker engine `kind up` started, nothing else."""
    from .bed.kind.lab import down  # noqa: PLC0415

    removed = down()
    Console().print(f"removed: {', '.join(removed)}" if removed else "nothing of the kind lab was running")


@main.group(name="chaos")
def chaos_group() -> None:
    """Chaos experiments: broker faults while probes run, judged by a checker (needs the `chaos` extra)."""


@chaos_group.command(name="run")
@click.argument("experiment")
@_state_option
@click.option("--report-dir", type=click.Path(path_type=Path), default=None,
              help="Where to write the journal, verdict and plots (default: under the stack's state dir).")
@_friendly_errors
def chaos_run(experiment: str, state_dir: Path | None, report_dir: Path | None) -> None:
    """Run EXPERIMENT on the running local stack and print the verdict; exit 1 when the checker fails it.

    Experiments: broker-kill, broker-kill-without-retries, broker-kill-java-producer (the official DefaultMQProducer),
    broker-pause, name-server-kill, retry-ladder, retry-ladder-broker-killed, orderly-retries-in-place,
    broadcast-drops-failures (chaos/experiments/*.json run them under Chaos Toolkit).
    """
    from rocketmq_chaos.runner import EXPERIMENTS, run_experiment  # noqa: PLC0415 - the chaos extra loads here only

    if experiment not in EXPERIMENTS:
        raise click.BadParameter(f"choose one of {', '.join(EXPERIMENTS)}", param_hint="EXPERIMENT")
    report = run_experiment(experiment, stack=LocalStack.at(state_dir), report_dir=report_dir)
    verdicts = json.loads(report.verdict.read_text())
    console = Console()
    console.print(f"verdict: {'PASS' if verdicts['passed'] else 'FAIL'}; report in {report.directory}", highlight=False)
    for reason in (r for v in verdicts["experiments"].values() for r in v["reasons"]):
        console.print(f"  - {reason}", highlight=False)
    if not report.passed:
        sys.exit(1)


@chaos_group.command(name="kill-pods")
@click.option("-n", "--namespace", required=True, help="Namespace of the brokers; must be annotated "
              "rocketmq-retry.io/chaos=allowed.")
@click.option("-l", "--selector", required=True, help="Equality label selector of the broker pods, e.g. "
              "app=rocketmq,role=broker.")
@click.option("--mode", type=click.Choice(["one", "all", "fixed"]), default="one", show_default=True)
@click.option("--count", type=click.IntRange(min=1), default=1, show_default=True, help="Pods to delete in fixed mode.")
@click.option("--grace-period", type=click.IntRange(min=0), default=0, show_default=True)
@_friendly_errors
def chaos_kill_pods(namespace: str, selector: str, mode: str, count: int, grace_period: int) -> None:
    """Delete broker pods (in-cluster Job, or with the current kubeconfig) and print which."""
    from rocketmq_chaos.injectors import TargetNotAllowed  # noqa: PLC0415
    from rocketmq_chaos.journal import Journal  # noqa: PLC0415
    from rocketmq_chaos.pods import Mode, PodKiller  # noqa: PLC0415

    try:
        deleted = PodKiller(_core_v1_api(), Journal()).kill(
            namespace, selector, mode=Mode(mode), count=count, grace_period_seconds=grace_period)
    except (TargetNotAllowed, ValueError) as refused:
        raise click.UsageError(str(refused)) from None
    click.echo(f"deleted: {', '.join(deleted) or 'no pod matched'}")


def _core_v1_api() -> object:
    """A CoreV1Api with the pod's service account in a cluster, else with the current kubeconfig."""
    import kubernetes  # noqa: PLC0415

    try:
        kubernetes.config.load_incluster_config()  # type: ignore[no-untyped-call]
    except kubernetes.config.ConfigException:
        kubernetes.config.load_kube_config()  # type: ignore[no-untyped-call]
    return kubernetes.client.CoreV1Api()


def _delays_ms(_context: click.Context, _parameter: click.Parameter, value: str | None) -> tuple[int, ...] | None:
    if value is None:
        return None
    try:
        delays = tuple(int(part) for part in value.split(","))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of milliseconds") from None
    if not delays or min(delays) < 0:
        raise click.BadParameter(f"{value!r}: delays are whole milliseconds, at least one, none negative")
    return delays


@chaos_group.command(name="in-cluster")
@click.argument("experiment")
@click.option("--namesrv", required=True, help="The name server, host:port (e.g. rocketmq-namesrv.rocketmq:9876).")
@click.option("-n", "--namespace", required=True, help="Namespace of the broker pods; must be annotated "
              "rocketmq-retry.io/chaos=allowed for broker-pod-kill.")
@click.option("-l", "--selector", required=True, help="Equality label selector of every broker pod, e.g. "
              "app=rocketmq,role=broker.")
@click.option("--broker-label", default="broker", show_default=True,
              help="The pod label whose value is the pod's broker name.")
@click.option("--report-dir", type=click.Path(path_type=Path), required=True,
              help="Where to write the journal, verdict and plots.")
@click.option("--rate", type=click.FloatRange(min=1), default=100.0, show_default=True,
              help="Synchronous sends per second (broker-pod-kill, broker-under-load).")
@click.option("--duration", type=click.FloatRange(min=1), default=20.0, show_default=True,
              help="Seconds of load (broker-pod-kill, broker-under-load).")
@click.option("--fault-at", type=click.FloatRange(min=0), default=5.0, show_default=True,
              help="Seconds after the first stored message when the pod is deleted (broker-pod-kill).")
@click.option("--victim", default=None, help="Broker name whose pod is deleted (default: the last master).")
@click.option("--recovery-timeout", type=click.FloatRange(min=1), default=300.0, show_default=True,
              help="Seconds for the deleted broker to be registered again by its new pod.")
@click.option("--group", default=None, help="retry-ladder: a consumer group whose retryMaxTimes a RetryPolicy set "
              "(default: a group of the run's own).")
@click.option("--expected-delays-ms", default=None, callback=_delays_ms, metavar="MS,MS,...",
              help="retry-ladder: the expected ladder (default: the brokers' delay levels for the group's "
                   "retryMaxTimes, 3 retries for a group of the run's own).")
@click.option("--messages", type=click.IntRange(min=1), default=3, show_default=True,
              help="retry-ladder: messages failed on purpose.")
@click.option("--within", type=click.FloatRange(min=1), default=180.0, show_default=True,
              help="retry-ladder: seconds for every message to be dead-lettered.")
@click.option("--broker-cluster", default=None, help="Only this broker cluster's masters (default: every master).")
@click.option("--delay-levels", default=None,
              help="The brokers' messageDelayLevel (default: read from the masters' config).")
@_friendly_errors
def chaos_in_cluster(*, experiment: str, namesrv: str, namespace: str, selector: str, broker_label: str,
                     report_dir: Path, rate: float, duration: float, fault_at: float, victim: str | None,
                     recovery_timeout: float, group: str | None, expected_delays_ms: tuple[int, ...] | None,
                     messages: int, within: float, broker_cluster: str | None, delay_levels: str | None) -> None:
    """Run EXPERIMENT from inside the cluster (a Job) against RocketMQ pods; exit 1 when the checker fails it.

    Experiments: broker-pod-kill (a broker's pod deleted under load, waited for until its replacement registers),
    broker-under-load (load only; someone else injects the fault), retry-ladder (a failing consumer of --group).
    Writes the local runner's report into --report-dir and prints the verdict table, then the report directory as
    one `REPORT-TGZ <base64 tar.gz>` line and, last, `VERDICT-JSON <verdict.json>`, for `kubectl logs` to carry out.
    """
    from rocketmq_chaos.incluster import (  # noqa: PLC0415 - the chaos extra loads here only
        EXPERIMENTS,
        InCluster,
        Ladder,
        Load,
        report_log_lines,
        run_in_cluster,
    )
    from rocketmq_chaos.report import summary  # noqa: PLC0415
    from rocketmq_retry.remoting import RemotingError  # noqa: PLC0415

    if experiment not in EXPERIMENTS:
        raise click.BadParameter(f"choose one of {', '.join(EXPERIMENTS)}", param_hint="EXPERIMENT")
    where = InCluster(namesrv, namespace, selector, broker_label, cluster=broker_cluster, delay_levels=delay_levels,
                      recovery_timeout=recovery_timeout)
    try:
        report, verdicts = run_in_cluster(
            experiment, where, report_dir, load=Load(rate, duration, fault_at, victim),
            ladder=Ladder(group, expected_delays_ms, messages, within), core_api=_core_v1_api)
    except (ValueError, RemotingError) as failure:  # TargetNotAllowed is a ValueError
        raise click.ClickException(str(failure)) from None
    console = Console()
    if not console.is_terminal:  # a Job's log: wide enough for message ids and reasons
        console.width = 160
    console.print(summary(verdicts))
    click.echo(f"report: {report.directory}")
    for line in report_log_lines(report):
        click.echo(line)
    if not report.passed:
        sys.exit(1)


@main.group(name="operator")
def operator_group() -> None:
    """The kopf operator that applies RetryPolicy objects to RocketMQ brokers."""


def _priority(_context: click.Context, _parameter: click.Parameter, value: str) -> int:
    """An integer, or `random` for identical pods (the chart's replicas): kopf pauses every peer on equal priorities."""
    if value == "random":
        return random_priority()
    try:
        return int(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is neither an integer nor `random`") from None


def load_controller() -> None:
    """Register the operator's kopf handlers in a process that never loads the official `kubernetes` client.

    kopf imports `kubernetes` whenever it is installed (its model types and a login handler), and this project
    installs it for tests and tools; in the operator it would cost 10 MiB RSS (measured) for nothing, as the
    operator's own calls go through pykube-ng (controller/kubeapi.py). None in sys.modules makes `import kubernetes`
    fail, so kopf takes its path for an absent client and logs in through pykube-ng. A process that already loaded the
    client (a test invoking `operator run` in-process) keeps it.
    """
    sys.modules.setdefault("kubernetes", None)  # type: ignore[arg-type] # None: the documented import block
    # pykube-ng writes a kubeconfig's inline client certificate and key to temporary files with the process umask
    # (0644 by default) and never removes them: keep them readable by the operator's user only.
    os.umask(0o077)
    import rocketmq_retry.controller.handlers  # noqa: F401, PLC0415 - registers the handlers of both kinds


@operator_group.command(name="run")
@click.option("-n", "--namespace", "namespaces", multiple=True, help="Watch this namespace (repeatable; globs ok).")
@click.option("-A", "--all-namespaces", is_flag=True, help="Watch the whole cluster.")
@click.option("--peering", "peering_name", default=None,
              help="Run in this kopf peering (highest --priority is active); standalone without it.")
@click.option("--priority", default="0", show_default=True, callback=_priority, metavar="INTEGER|random",
              help="Peering priority; `random` gives each of several identical replicas its own.")
@click.option("--peering-lifetime", type=click.IntRange(min=10), default=DEFAULT_LIFETIME, show_default=True,
              help="Seconds a peer counts as alive after its last keep-alive: a killed leader's successor takes "
                   "over within this time.")
@click.option("--liveness", "liveness_endpoint", default=None, help="Liveness URL, e.g. http://0.0.0.0:8080/healthz.")
@click.option("--default-namesrv", envvar=config.ENV_DEFAULT_NAMESRV, default=None,
              help="Name servers (host:port;host:port) for policies without spec.cluster.", show_envvar=True)
@click.option("--default-broker-cluster", envvar=config.ENV_DEFAULT_BROKER_CLUSTER, default=None,
              help="Broker cluster name of the default cluster.", show_envvar=True)
@click.option("--sweep-interval", type=click.FloatRange(min=0.1), envvar=config.ENV_SWEEP_INTERVAL,
              default=config.DEFAULT_SWEEP_INTERVAL, show_default=True,
              help="Seconds between drift sweeps.", show_envvar=True)
@click.option("--broker-timeout", type=click.FloatRange(min=0.1), envvar=config.ENV_BROKER_TIMEOUT,
              default=config.DEFAULT_BROKER_TIMEOUT, show_default=True,
              help="Seconds each name-server or broker call may take.", show_envvar=True)
@click.option("--dlq-interval", "dead_letter_interval", type=click.FloatRange(min=0.1),
              envvar=config.ENV_DEAD_LETTER_INTERVAL, default=config.DEFAULT_DEAD_LETTER_INTERVAL, show_default=True,
              help="Seconds between reads of a DeadLetterQueue's brokers (depth, age, redrive progress).",
              show_envvar=True)
@click.option("--metrics-port", type=click.IntRange(0, 65535), envvar=config.ENV_METRICS_PORT,
              default=config.DEFAULT_METRICS_PORT, show_default=True,
              help="Serve Prometheus metrics at :PORT/metrics on every interface; 0 disables.", show_envvar=True)
def operator_run(*, namespaces: tuple[str, ...], all_namespaces: bool, peering_name: str | None, priority: int,
                 peering_lifetime: int, liveness_endpoint: str | None, default_namesrv: str | None,
                 default_broker_cluster: str | None, sweep_interval: float, broker_timeout: float,
                 dead_letter_interval: float, metrics_port: int) -> None:
    """Run the operator in this process against the current kubeconfig (or in-cluster credentials)."""
    if bool(namespaces) == all_namespaces:
        raise click.UsageError("give either --namespace (one or more) or --all-namespaces")
    try:
        default_cluster = config.OperatorConfig.default_cluster_from(default_namesrv, default_broker_cluster)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--default-namesrv") from None
    peering = None
    if peering_name is not None:
        peering = Peering(peering_name, own_identity(), priority, peering_lifetime, clusterwide=all_namespaces)
        log.info("kopf peering %s: this replica is %s with priority %d", peering.name, peering.identity, priority)
    settings = config.OperatorConfig(namespaces=namespaces, peering=peering, liveness_endpoint=liveness_endpoint,
                                     metrics_port=metrics_port, default_cluster=default_cluster,
                                     broker_timeout=broker_timeout, sweep_interval=sweep_interval,
                                     dead_letter_interval=dead_letter_interval)
    load_controller()
    import kopf  # noqa: PLC0415 - kopf (loaded by load_controller) and the metrics load only for this verb

    from rocketmq_retry.controller.metrics import Metrics  # noqa: PLC0415

    metrics = Metrics()
    if settings.metrics_port:
        try:
            metrics.serve(settings.metrics_port)
        except OSError as error:
            raise click.BadParameter(f"cannot serve metrics: {error}", param_hint="--metrics-port") from None
    kopf.run(clusterwide=settings.clusterwide, namespaces=list(settings.namespaces), standalone=peering is None,
             peering_name=peering_name, priority=priority, liveness_endpoint=settings.liveness_endpoint,
             # Always our own id: kopf's default asks getpass.getuser(), which raises in a container whose uid has no
             # passwd entry (the chart's 65532 in the public python image too).
             identity=peering.identity if peering else own_identity(),  # type: ignore[arg-type] # kopf's NewType
             memo=kopf.Memo(config=settings, metrics=metrics))
