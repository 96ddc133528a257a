"""The `rocketmq-retry` command line: the operator's verbs, plus the verbs other installed distributions add.

The operator's image installs this distribution alone, so it has the operator's verbs only. The lab (`setup`,
`local`, `demo`, `kind`, `chaos run`) and the chaos experiments (`chaos kill-pods`, `chaos in-cluster`) register
theirs under the entry-point group `rocketmq_retry.commands` (see `PluggableGroup`).
"""

import copy
import logging
import os
import sys
from importlib import metadata
from typing import Final

import click
from rich.logging import RichHandler

from .console import stderr as _stderr
from .controller import config
from .controller.peering import DEFAULT_LIFETIME, Peering, own_identity, random_priority
from .dlq_cli import dlq

COMMANDS: Final = "rocketmq_retry.commands"
LOG_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"  # without a terminal: the lines tools read
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


class PluggableGroup(click.Group):
    """The operator's verbs plus those registered under the entry-point group `rocketmq_retry.commands`.

    An entry point named `verb` adds a top-level verb; one named `group.verb` adds a verb to the group another
    distribution registered (the lab's `chaos run` drives the local bed, which the chaos distribution must not
    import, so it joins chaos's `chaos` group from the lab). A verb's entry points are loaded only when that verb is
    asked for (or `--help` lists them all), so `operator run` imports no other distribution. A verb that fails to
    load, or that two distributions both register, is an error naming the distribution: never a verb quietly missing.
    """

    @staticmethod
    def _registered() -> list[metadata.EntryPoint]:
        return list(metadata.entry_points(group=COMMANDS))

    @staticmethod
    def _load(entry: metadata.EntryPoint) -> click.Command:
        origin = f"{entry.dist.name} {entry.dist.version}" if entry.dist else "an installed distribution"
        try:
            command = entry.load()
        except Exception as error:  # whatever broke its import, the user must learn which plugin it was
            raise click.ClickException(f"the verb `{entry.name}` of {origin} ({entry.value}) failed to load: "
                                       f"{type(error).__name__}: {error}; reinstall {origin}, or uninstall it "
                                       "to drop its verbs") from error
        if not isinstance(command, click.Command):
            raise click.ClickException(f"the verb `{entry.name}` of {origin} ({entry.value}) is not a click command")
        return command

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *(e.name for e in self._registered() if "." not in e.name)})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            return command
        registered = self._registered()
        entries = [e for e in registered if e.name == cmd_name]
        if not entries:
            return None
        if len(entries) > 1:
            origins = ", ".join(e.dist.name if e.dist else e.value for e in entries)
            raise click.ClickException(f"the verb `{cmd_name}` is registered by {origins}: uninstall all but one")
        command = self._load(entries[0])
        for entry in (e for e in registered if e.name.startswith(f"{cmd_name}.")):
            if not isinstance(command, click.Group):
                raise click.ClickException(f"`{entry.name}` adds a verb to `{cmd_name}`, which is not a group")
            command.add_command(self._load(entry), entry.name.removeprefix(f"{cmd_name}."))
        self.add_command(command, cmd_name)
        return command


@click.group(cls=PluggableGroup)
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
def main(verbose: bool) -> None:
    """Kubernetes API for RocketMQ consumer retries and dead letters (the lab and chaos add their verbs when
    installed)."""
    level = logging.DEBUG if verbose else logging.INFO
    if _stderr.is_terminal:
        handler: logging.Handler = RichHandler(console=_stderr, show_path=False)
        handler.setFormatter(KopfObjectFormatter("%(message)s"))
    else:  # CI logs and pipes: one plain, greppable line per record
        handler = logging.StreamHandler()
        handler.setFormatter(KopfObjectFormatter(LOG_FORMAT))
    logging.basicConfig(level=level, handlers=[handler])


main.add_command(dlq)


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
    operator's own calls go over aiohttp (controller/kubeapi.py). None in sys.modules makes `import kubernetes`
    fail, so kopf takes its path for an absent client and logs in through pykube-ng, as the operator's calls do. A
    process that already loaded the client (a test invoking `operator run` in-process) keeps it.
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
@click.option("--default-proxies", envvar=config.ENV_DEFAULT_PROXIES, default=None,
              help="The default cluster's 5.x proxies, their remoting host:port;host:port: where its gRPC consumers "
                   "are seen.", show_envvar=True)
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
                 default_broker_cluster: str | None, default_proxies: str | None, sweep_interval: float,
                 broker_timeout: float,
                 dead_letter_interval: float, metrics_port: int) -> None:
    """Run the operator in this process against the current kubeconfig (or in-cluster credentials)."""
    if bool(namespaces) == all_namespaces:
        raise click.UsageError("give either --namespace (one or more) or --all-namespaces")
    try:
        default_cluster = config.OperatorConfig.default_cluster_from(default_namesrv, default_broker_cluster,
                                                                     default_proxies)
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
