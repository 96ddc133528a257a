"""The verbs chaos adds to `rocketmq-retry` (entry point `chaos` of `rocketmq_retry.commands`): broker faults on
any RocketMQ the operator's client reaches, for in-cluster Jobs. `chaos run`, on the local bed, is the lab's."""

import sys
from pathlib import Path

import click
from rich.console import Console

from rocketmq_retry.console import friendly_errors
from rocketmq_retry.remoting import RemotingError

from .injectors import TargetNotAllowed
from .journal import Journal
from .pods import Mode, PodKiller


@click.group()
def chaos() -> None:
    """Chaos experiments: broker faults while probes run, judged by a checker."""


@chaos.command(name="kill-pods")
@click.option("-n", "--namespace", required=True, help="Namespace of the brokers; must be annotated "
              "rocketmq-retry.io/chaos=allowed.")
@click.option("-l", "--selector", required=True, help="Equality label selector of the broker pods, e.g. "
              "app=rocketmq,role=broker.")
@click.option("--mode", type=click.Choice(["one", "all", "fixed"]), default="one", show_default=True)
@click.option("--count", type=click.IntRange(min=1), default=1, show_default=True, help="Pods to delete in fixed mode.")
@click.option("--grace-period", type=click.IntRange(min=0), default=0, show_default=True)
@friendly_errors()
def chaos_kill_pods(namespace: str, selector: str, mode: str, count: int, grace_period: int) -> None:
    """Delete broker pods (in-cluster Job, or with the current kubeconfig) and print which."""
    try:
        deleted = PodKiller(_core_v1_api(), Journal()).kill(
            namespace, selector, mode=Mode(mode), count=count, grace_period_seconds=grace_period)
    except (TargetNotAllowed, ValueError) as refused:
        raise click.UsageError(str(refused)) from None
    click.echo(f"deleted: {', '.join(deleted) or 'no pod matched'}")


def _core_v1_api() -> object:
    """A CoreV1Api with the pod's service account in a cluster, else with the current kubeconfig."""
    import kubernetes  # noqa: PLC0415 - a second's import, for the verbs that call the API only

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


@chaos.command(name="in-cluster")
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
@friendly_errors()
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
    from .incluster import (  # noqa: PLC0415 - matplotlib and the probes load for this verb only
        EXPERIMENTS,
        InCluster,
        Ladder,
        Load,
        report_log_lines,
        run_in_cluster,
    )
    from .report import summary  # noqa: PLC0415

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
