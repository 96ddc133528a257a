"""`rocketmq-retry dlq list|export`: a consumer group's pending dead letters, read without moving or marking one.

The dead letters are those a redrive would move (reconcile/browse.py), chosen by the selector a redrive takes
(domain/selection.py), so `--from-spec` shows one by one what a dry run of the object only counts. The group is named
either by a DeadLetterQueue object, whose cluster and ACL Secret are resolved as the operator resolves them, or by
flags for a cluster without the operator.
"""

import asyncio
import json
import sys
from collections.abc import Callable, Mapping
from contextlib import aclosing
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import IO, Any, Final, NamedTuple

import click
from rich.console import Console
from rich.table import Table

from rocketmq_retry.console import friendly_errors
from rocketmq_retry.controller import DLQ_KIND, DLQ_PLURAL, config
from rocketmq_retry.controller.secrets import SecretUnavailable
from rocketmq_retry.domain.browsing import COLUMNS, DeadLetter, record, row
from rocketmq_retry.domain.dead_letters import DeadLetterQueueSpec, parse_dead_letter_spec
from rocketmq_retry.domain.selection import Selector, read_selector
from rocketmq_retry.domain.spec import ClusterRef, Problems, SpecError
from rocketmq_retry.reconcile.browse import PendingDeadLetters
from rocketmq_retry.reconcile.clients import Admins
from rocketmq_retry.reconcile.reading import ReadFailed
from rocketmq_retry.remoting.acl import Credentials

# The selector's fields as the flags that set them, so a refused flag is named as the user typed it.
SELECTOR_FLAGS: Final = {"messageIds": "--id", "tags": "--tag", "keys": "--key", "storedAfter": "--stored-after",
                         "storedBefore": "--stored-before"}


class BrowseFailed(RuntimeError):
    """What stops a `dlq` verb: a broker, the API server or the object could not be read (friendly_errors: exit 1)."""


@dataclass(frozen=True)
class Target:
    """Whose dead letters, on which cluster, with which credentials, chosen how."""

    spec: DeadLetterQueueSpec
    cluster: ClusterRef
    selector: Selector = field(default_factory=Selector)
    limit: int | None = None
    credentials: Credentials | None = None


class ObjectRef(NamedTuple):
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{DLQ_KIND} {self.namespace}/{self.name}"


@dataclass(frozen=True)
class Request:
    """The verb's flags, checked: a DeadLetterQueue, or the target the flags name in full."""

    named: ObjectRef | Target
    default_cluster: ClusterRef | None  # for an object without spec.cluster
    selector: Selector | None  # None: the object's spec.redrive.selector (--from-spec)
    limit: int | None
    call_timeout: float


def selector_from_flags(ids: tuple[str, ...], tags: tuple[str, ...], keys: tuple[str, ...],
                        stored_after: str | None, stored_before: str | None) -> Selector:
    """The selector of the flags, validated as `spec.redrive.selector` is; click.BadParameter naming each flag."""
    raw = {"messageIds": list(ids) or None, "tags": list(tags) or None, "keys": list(keys) or None,
           "storedAfter": stored_after, "storedBefore": stored_before}
    problems = Problems()
    selector = read_selector(raw, "selector", problems)
    if selector is None:
        message = "; ".join(problems.items)
        for name, flag in SELECTOR_FLAGS.items():
            message = message.replace(f"selector.{name}", flag)
        raise click.BadParameter(message, param_hint="the selector")
    return selector


def object_target(found: Mapping[str, Any], default_cluster: ClusterRef | None, *,
                  from_spec: bool) -> Target:
    """The target a DeadLetterQueue object names: its group, its cluster (`spec.cluster`, else the operator's
    default) and, `from_spec`, the selector and maxMessages of its `spec.redrive`. BrowseFailed when unusable."""
    metadata = found.get("metadata") or {}
    name = ObjectRef(metadata.get("namespace", ""), metadata.get("name", ""))
    try:
        spec = parse_dead_letter_spec(found.get("spec"))
        cluster = config.OperatorConfig(default_cluster=default_cluster).cluster_for(spec.cluster)
    except SpecError as error:
        raise BrowseFailed(f"{name}: {error}") from None
    if not from_spec or spec.redrive is None:
        return Target(spec, cluster)
    return Target(spec, cluster, spec.redrive.selector, spec.redrive.max_messages)


def narrowed(target: Target, selector: Selector | None, limit: int | None) -> Target:
    """`target` with the flags' selector (None keeps the object's) and the lower of both limits."""
    limits = [value for value in (target.limit, limit) if value is not None]
    return replace(target, selector=target.selector if selector is None else selector, limit=min(limits, default=None))


async def resolve(request: Request) -> Target:
    """The target of the flags, or of the DeadLetterQueue read with the current kubeconfig and its ACL Secret."""
    if isinstance(request.named, Target):
        return request.named
    # kopf and aiohttp load only for this path: a cluster named by flags needs no Kubernetes at all.
    import aiohttp  # noqa: PLC0415
    import kopf  # noqa: PLC0415

    from rocketmq_retry.controller.kubeapi import KubeApi, KubeApiError  # noqa: PLC0415

    ref = request.named
    kube = KubeApi.from_environment(timeout=request.call_timeout, calls_at_once=1)
    try:
        found = await kube.custom_object(ref.namespace, ref.name, plural=DLQ_PLURAL)
        target = object_target(found, request.default_cluster, from_spec=request.selector is None)
        secret = target.cluster.acl_secret_ref
        credentials = None if secret is None else await kube.credentials(ref.namespace, secret)
    except KubeApiError as error:
        raise BrowseFailed(f"cannot read {ref}: {error}") from None
    except (SecretUnavailable, aiohttp.ClientError, kopf.LoginError) as error:
        raise BrowseFailed(f"{ref}: {error}") from None
    finally:
        await kube.close()
    return narrowed(replace(target, credentials=credentials), request.selector, request.limit)


def read_dead_letters(request: Request, emit: Callable[[DeadLetter], None]) -> PendingDeadLetters:
    """Pass every selected pending dead letter to `emit`, in (broker, queue, offset) order; the finished read."""

    async def run() -> PendingDeadLetters:
        target = await resolve(request)
        admins = Admins(request.call_timeout)
        pending = PendingDeadLetters(admins.admin(target.cluster, target.credentials), target.cluster, target.spec,
                                     target.selector, limit=target.limit, call_timeout=request.call_timeout)
        try:
            async with aclosing(pending.read()) as dead_letters:
                async for dead in dead_letters:
                    emit(dead)
        except ReadFailed as error:
            raise BrowseFailed(f"dead letters of {target.spec.consumer_group}: {error}") from None
        finally:
            await admins.close()
        return pending

    return asyncio.run(run())


def summary(pending: PendingDeadLetters, verb: str, now: datetime) -> str:
    """The line after a listing or an export: how many of how many, and why none when none."""
    if pending.selected == 0:
        return pending.why_nothing(now)
    stopped = f"; stopped at the limit of {pending.limit}, more may be pending" \
        if pending.selected == pending.limit else ""
    return (f"{verb} {pending.selected} of {pending.scanned} pending dead letter(s) of {pending.spec.consumer_group} "
            f"({pending.selector.describe()}){stopped}")


def _object_ref(value: str) -> ObjectRef:
    namespace, slash, name = value.partition("/")
    if not (namespace and slash and name) or "/" in name:
        raise click.BadParameter(f"{value!r} is not NAMESPACE/NAME of a {DLQ_KIND}", param_hint="TARGET")
    return ObjectRef(namespace, name)


def request_from(options: Mapping[str, Any]) -> Request:
    """The request of a verb's flags (those of `_target_options`); click usage errors for contradicting ones."""
    target, name_servers, group = options["target"], options["name_servers"], options["group"]
    selecting = any(options[name] for name in ("ids", "tags", "keys", "stored_after", "stored_before"))
    if (target is None) != any(options[name] for name in ("name_servers", "group", "broker_cluster")):
        raise click.UsageError("name a DeadLetterQueue (NAMESPACE/NAME), or give --name-servers and --group; "
                               "not both")
    if target is None and (name_servers is None or group is None):
        raise click.UsageError("--name-servers and --group go together")
    if options["from_spec"] and (target is None or selecting):
        raise click.UsageError("--from-spec takes the selector of a DeadLetterQueue's spec.redrive: name the object "
                               "and give no --id, --tag, --key, --stored-after or --stored-before")
    try:
        default = config.OperatorConfig.default_cluster_from(options["default_namesrv"],
                                                             options["default_broker_cluster"])
        cluster = config.OperatorConfig.default_cluster_from(name_servers, options["broker_cluster"])
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--name-servers or --default-namesrv") from None
    selector = None if options["from_spec"] else selector_from_flags(
        options["ids"], options["tags"], options["keys"], options["stored_after"], options["stored_before"])
    named = _object_ref(target) if target is not None or cluster is None \
        else Target(DeadLetterQueueSpec(group), cluster, selector or Selector(), options["limit"])
    return Request(named, default, selector, options["limit"], options["broker_timeout"])


def _target_options(command: Callable[..., None]) -> Callable[..., None]:
    """The flags both verbs take: which group, which dead letters, how long a call may take."""
    options = [
        click.argument("target", required=False, metavar="[NAMESPACE/NAME]"),
        click.option("--name-servers", help="Without a DeadLetterQueue: the cluster's name servers, host:port;..."),
        click.option("--group", help="Without a DeadLetterQueue: the consumer group whose dead letters to read."),
        click.option("--broker-cluster", help="Without a DeadLetterQueue: only the masters of this broker cluster."),
        click.option("--default-namesrv", envvar=config.ENV_DEFAULT_NAMESRV, show_envvar=True,
                     help="For a DeadLetterQueue without spec.cluster: the operator's default name servers."),
        click.option("--default-broker-cluster", envvar=config.ENV_DEFAULT_BROKER_CLUSTER, show_envvar=True,
                     help="For a DeadLetterQueue without spec.cluster: the operator's default broker cluster."),
        click.option("--id", "ids", multiple=True, help="A message id: client (UNIQ_KEY), offset or first-sent id "
                                                        "(repeatable)."),
        click.option("--tag", "tags", multiple=True, help="A tag (repeatable)."),
        click.option("--key", "keys", multiple=True, help="A key (repeatable)."),
        click.option("--stored-after", help="Dead-lettered at or after this RFC 3339 time."),
        click.option("--stored-before", help="Dead-lettered before this RFC 3339 time."),
        click.option("--from-spec", is_flag=True,
                     help="The selector and maxMessages of the DeadLetterQueue's spec.redrive: what a run would move."),
        click.option("--max", "limit", type=click.IntRange(min=1), help="At most this many dead letters."),
        click.option("--broker-timeout", type=click.FloatRange(min=0.1), envvar=config.ENV_BROKER_TIMEOUT,
                     default=config.DEFAULT_BROKER_TIMEOUT, show_default=True, show_envvar=True,
                     help="Seconds each name-server, broker or API server call may take."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@click.group(name="dlq")
def dlq() -> None:
    """Browse and export a consumer group's pending dead letters: those a redrive would move. Reading moves nothing,
    commits no offset and creates no group."""


@dlq.command(name="list")
@_target_options
@friendly_errors()
def dlq_list(**options: Any) -> None:
    """Print the pending dead letters: a table on a terminal, tab-separated lines with a header in a pipe."""
    request = request_from(options)
    out = Console(highlight=False)
    if out.is_terminal:
        table = Table(title="Pending dead letters", title_justify="left")
        for column in COLUMNS:  # a narrow terminal folds cells: an ellipsis would cut the ids a user copies
            table.add_column(column, overflow="fold")
        pending = read_dead_letters(request, lambda dead: table.add_row(*row(dead)))
        if table.row_count:
            out.print(table)
    else:
        click.echo("\t".join(COLUMNS))
        pending = read_dead_letters(request, lambda dead: click.echo("\t".join(row(dead))))
    click.echo(summary(pending, "listed", datetime.now(UTC)), err=True)


@dlq.command(name="export")
@_target_options
@click.option("-o", "--output", type=click.File("w", encoding="utf-8"), default="-", show_default=True,
              help="The JSON Lines file to write; - for stdout.")
@friendly_errors()
def dlq_export(output: IO[str], **options: Any) -> None:
    """Write the pending dead letters as JSON Lines, one object per dead letter: ids, keys, tags, store time,
    reconsume times, original topic, position, failure bookkeeping, every property and the body in base64."""

    def write(dead: DeadLetter) -> None:
        output.write(json.dumps(record(dead), ensure_ascii=False) + "\n")

    pending = read_dead_letters(request_from(options), write)
    output.flush()
    where = "stdout" if output is sys.stdout else getattr(output, "name", "the output")
    click.echo(f"{summary(pending, 'exported', datetime.now(UTC))} to {where}", err=True)
