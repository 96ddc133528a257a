"""The verbs the lab adds to `rocketmq-retry` (entry points of `rocketmq_retry.commands` in lab/pyproject.toml):
`setup`, `local`, `demo`, `kind`, and `chaos run` (experiments on the local bed, joining chaos's `chaos` group)."""

import json
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from rocketmq_retry.console import friendly_errors

from .bed import gobuild, maven, versions
from .bed.kind import lab as kind_lab
from .bed.prerequisites import MissingPrerequisite
from .bed.rocketmq import RocketMQCluster, UnknownPart
from .bed.stack import LocalStack
from .bed.topology import Topology

lab_errors = friendly_errors(missing=(MissingPrerequisite,))


@click.command()
@click.option("--rocketmq", "rocketmq_versions", multiple=True, default=versions.ROCKETMQ_VERSIONS,
              show_default=True, help="RocketMQ versions whose jars to resolve.")
@click.option("--kubernetes/--no-kubernetes", default=True, show_default=True,
              help="Also build kube-apiserver, kube-controller-manager, kubectl, etcd and Helm.")
@lab_errors
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


@click.group()
def local() -> None:
    """A local stack on loopback: etcd, kube-apiserver, controller-manager, name server, brokers; and the chaos
    experiments' faults on one of its RocketMQ parts, to try by hand."""


_state_option = click.option("--state-dir", type=click.Path(path_type=Path), default=None,
                             help="Where the stack keeps its state, stores and logs.")


@local.command()
@_state_option
@click.option("--rocketmq-version", default=versions.ROCKETMQ_5, show_default=True,
              type=click.Choice([*versions.ROCKETMQ_VERSIONS, *versions.ROCKETMQ_OLDER_LINES]))
@click.option("--brokers", default=2, show_default=True, type=click.IntRange(1, 8), help="Broker names.")
@click.option("--topology", type=click.Choice([str(t) for t in Topology]), default=str(Topology.MASTERS),
              show_default=True, help="A lone master per broker name; a master and a slave (async-master, "
              "sync-master); or two replicas and a controller that elects the master (controller, 5.x).")
@click.option("--kubernetes/--no-kubernetes", default=True, show_default=True)
@lab_errors
def up(state_dir: Path | None, rocketmq_version: str, brokers: int, topology: str, kubernetes: bool) -> None:
    """Bring the stack up (safe to re-run) and print where to reach it."""
    stack = LocalStack.at(state_dir)
    stack.up(rocketmq_version=rocketmq_version, brokers=brokers, topology=Topology(topology), kubernetes=kubernetes)
    status = stack.status()
    click.echo(f"kubeconfig:  {status['kubeconfig']}")
    click.echo(f"name server: {status['nameServer']}")
    if status["proxy"]:
        click.echo(f"gRPC proxy:  {status['proxy']}")


@local.command()
@_state_option
@lab_errors
def down(state_dir: Path | None) -> None:
    """Stop everything `up` started, and nothing else."""
    stack = LocalStack.at(state_dir)
    stopped = [p.name for p in stack.processes if p.running]
    stack.down()
    click.echo(f"stopped: {', '.join(stopped) or 'nothing was running'}")


@local.command()
@_state_option
def status(state_dir: Path | None) -> None:
    """Print the stack's endpoints and processes (each up, paused or down) as JSON; exit 1 unless all are up."""
    stack = LocalStack.at(state_dir)
    click.echo(json.dumps(stack.status(), indent=2))
    if not stack.healthy:
        sys.exit(1)


_part_argument = click.argument("part")


def _fault(state_dir: Path | None, part: str, fault: Callable[[RocketMQCluster, str], None]) -> None:
    """Apply `fault` to one part of the stack's RocketMQ cluster, keep the new PID of a restarted part (for `down` and
    `status`), and print the part's state as `local status` reports it."""
    stack = LocalStack.at(state_dir)
    if stack.rocketmq is None:
        raise click.UsageError(f"no local stack in {stack.root}: start one with `rocketmq-retry local up`")
    try:
        fault(stack.rocketmq, part)
    except UnknownPart as unknown:
        raise click.BadParameter(str(unknown), param_hint="PART") from None
    except ValueError as refused:  # --wipe of a part without a store
        raise click.UsageError(str(refused)) from None
    finally:
        stack.save()
    click.echo(f"{part}: {stack.rocketmq.part(part).state}")


@local.command()
@_part_argument
@_state_option
@lab_errors
def kill(state_dir: Path | None, part: str) -> None:
    """SIGKILL PART (namesrv, broker-a, broker-b, ...), as a crash would; `local restart` brings it back."""
    _fault(state_dir, part, RocketMQCluster.kill)


@local.command()
@_part_argument
@_state_option
@lab_errors
def pause(state_dir: Path | None, part: str) -> None:
    """SIGSTOP PART: alive, holding its connections, answering nothing (a long GC pause, a frozen VM)."""
    _fault(state_dir, part, RocketMQCluster.pause)


@local.command()
@_part_argument
@_state_option
@lab_errors
def resume(state_dir: Path | None, part: str) -> None:
    """SIGCONT PART after `local pause`."""
    _fault(state_dir, part, RocketMQCluster.resume)


@local.command()
@_part_argument
@click.option("--wipe", is_flag=True, help="Remove the broker's store first, as a disk replacement would.")
@_state_option
@lab_errors
def restart(state_dir: Path | None, part: str, wipe: bool) -> None:
    """Start PART again with the same config and port (stopping it first if it runs); returns once it listens and,
    for a broker, is registered with the name server."""
    _fault(state_dir, part, partial(RocketMQCluster.restart, wipe_store=wipe))


@click.command()
@_state_option
@click.option("--short", is_flag=True, help="Shorter chaos runs (what CI runs).")
@lab_errors
def demo(state_dir: Path | None, short: bool) -> None:
    """Run the main job on the embedded default and end with a report.

    Local stack, operator, a sample RetryPolicy, a broker killed under load and the retry ladder walked, then
    the verdicts, plots and journal. The stack keeps running afterwards; Ctrl-C tears it down.
    """
    from .demo import Demo  # noqa: PLC0415 - the `kubernetes` client and the operator's controller: for this verb only

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


@click.group()
def kind() -> None:
    """Chaos in a kind cluster built from local parts only (Docker engine, images, cluster, chart, chaos Jobs)."""


@kind.command(name="up")
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
@lab_errors
def kind_up(*, rocketmq_version: str, api_port: int | None, report_dir: Path | None, chaos: bool,
            node_fault: bool, ha: bool) -> None:
    """From nothing to verdicts: the cluster of kind-config.yaml, RocketMQ, the chart, the sample policy, chaos Jobs.

    Exits 1 when a verdict fails. The cluster keeps running afterwards: `rocketmq-retry kind down` removes it.
    """

    report_dir = report_dir or kind_lab.state_dir() / "reports" / time.strftime("%Y%m%d-%H%M%S")
    lab = kind_lab.Lab(kind_lab.LabOptions(rocketmq_version=rocketmq_version, api_port=api_port,
                                           report_dir=report_dir, chaos=chaos, node_fault=node_fault, ha=ha))
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


@kind.command(name="down")
@lab_errors
def kind_down() -> None:
    """Remove the lab's kind cluster and stop the Docker engine `kind up` started, nothing else."""
    removed = kind_lab.down()
    Console().print(f"removed: {', '.join(removed)}" if removed else "nothing of the kind lab was running")


@click.command(name="run")
@click.argument("experiment")
@_state_option
@click.option("--report-dir", type=click.Path(path_type=Path), default=None,
              help="Where to write the journal, verdict and plots (default: under the stack's state dir).")
@lab_errors
def chaos_run(experiment: str, state_dir: Path | None, report_dir: Path | None) -> None:
    """Run EXPERIMENT on the running local stack and print the verdict; exit 1 when the checker fails it.

    Experiments: broker-kill, broker-kill-without-retries, broker-kill-java-producer (the official DefaultMQProducer;
    broker-kill-java-async and broker-kill-java-oneway with its other send calls), broker-pause, name-server-kill,
    on a stack up with `--topology sync-master` sync-master-slave-kill, sync-master-slave-kill-retry-another-broker
    and sync-master-master-kill, retry-ladder, retry-ladder-broker-killed (on any topology: with slaves or in
    controller mode too), java-retry-ladder, java-retry-ladder-broker-killed, consume-timeout-overrun,
    orderly-retries-in-place, orderly-dead-letters-at-its-limit, broadcast-drops-failures (chaos/experiments/*.json
    run them under Chaos Toolkit).
    """
    from .chaos.runner import EXPERIMENTS, run_experiment  # noqa: PLC0415 - matplotlib: for this verb only

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
