"""`rocketmq-retry dlq list|export` without brokers: the flags (a target, a selector, refused contradictions), a
DeadLetterQueue object resolved as the operator resolves it, the output in a pipe and as JSON Lines, and failures as
one line with exit code 1."""

import asyncio
import json
from collections.abc import AsyncGenerator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from rocketmq_lab.bed.ports import free_port
from rocketmq_retry import dlq_cli
from rocketmq_retry.cli import main
from rocketmq_retry.controller.kubeapi import KubeApi, KubeApiError
from rocketmq_retry.controller.secrets import SecretUnavailable
from rocketmq_retry.dlq_cli import (
    BrowseFailed,
    ObjectRef,
    Request,
    Target,
    narrowed,
    object_target,
    resolve,
    selector_from_flags,
)
from rocketmq_retry.domain.browsing import DeadLetter
from rocketmq_retry.domain.dead_letters import DeadLetterQueueSpec
from rocketmq_retry.domain.selection import Selector
from rocketmq_retry.domain.spec import AclSecretRef, ClusterRef, Endpoint, parse_cluster
from rocketmq_retry.remoting.acl import Credentials
from rocketmq_retry.remoting.message import MessageExt

NAMESERVERS = "ns-a:9876"
DEFAULT = parse_cluster({"nameServers": "default-ns:9876"}, "default cluster")
LETTERS = [DeadLetter(broker, MessageExt(topic="%DLQ%orders", body=f"{broker} {offset}".encode(),
                                         queue_offset=offset, reconsume_times=1,
                                         properties={"UNIQ_KEY": f"ID{broker[-1]}{offset}", "KEYS": f"k{offset}",
                                                     "TAGS": "paid", "RETRY_TOPIC": "orders"}))
           for broker in ("broker-a", "broker-b") for offset in (0, 1)]


def dlq_object(**spec: Any) -> dict[str, Any]:
    return {"metadata": {"namespace": "team-a", "name": "orders"}, "spec": {"consumerGroup": "orders", **spec}}


class FakePending:
    """PendingDeadLetters over LETTERS, selected and limited as the real read does."""

    def __init__(self, admin: object, cluster: ClusterRef, spec: DeadLetterQueueSpec, selector: Selector, *,
                 limit: int | None = None, call_timeout: float) -> None:
        self.spec, self.selector, self.limit = spec, selector, limit
        self.scanned = self.selected = 0
        self.absent_ids = selector.message_ids

    def why_nothing(self, now: datetime) -> str:
        return self.selector.why_nothing(self.scanned, now, self.absent_ids)

    async def read(self) -> AsyncGenerator[DeadLetter, None]:
        for dead in LETTERS:
            self.scanned += 1
            if self.selector.matches(dead.message):
                self.selected += 1
                yield dead
                if self.selected == self.limit:
                    return


@pytest.fixture
def pending(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dlq_cli, "PendingDeadLetters", FakePending)


def dlq(*args: str) -> Any:
    return CliRunner().invoke(main, ["dlq", *args])


def test_selector_flags_are_the_selector_of_a_redrive() -> None:
    selector = selector_from_flags(("7f0000010001ab2c0000000000000001",), ("paid", "refunded"), ("order-1",),
                                   "2026-05-01T08:00:00+02:00", "2026-05-02T00:00:00Z")
    assert selector == Selector(frozenset({"7F0000010001AB2C0000000000000001"}), frozenset({"paid", "refunded"}),
                                frozenset({"order-1"}), datetime(2026, 5, 1, 6, tzinfo=UTC),
                                datetime(2026, 5, 2, tzinfo=UTC))
    assert selector_from_flags((), (), (), None, None) == Selector()


def test_an_invalid_selector_flag_is_refused_by_its_name() -> None:
    refused = r"--id\[0\]: 'not-an-id' is not a RocketMQ message id.*; --stored-after: 'yesterday' is not"
    with pytest.raises(click.BadParameter, match=refused):
        selector_from_flags(("not-an-id",), (), (), "yesterday", None)
    result = dlq("list", "--name-servers", NAMESERVERS, "--group", "orders", "--stored-before", "2026-05-01")
    assert result.exit_code == 2
    assert "--stored-before: '2026-05-01' is not an RFC 3339 time with a zone" in result.stderr


@pytest.mark.parametrize(("args", "says"), [
    ((), "name a DeadLetterQueue (NAMESPACE/NAME), or give --name-servers and --group"),
    (("team-a/orders", "--group", "orders"), "not both"),
    (("--name-servers", NAMESERVERS), "--name-servers and --group go together"),
    (("--name-servers", NAMESERVERS, "--group", "orders", "--from-spec"), "--from-spec takes the selector"),
    (("team-a/orders", "--from-spec", "--tag", "paid"), "give no --id, --tag"),
    (("orders",), "'orders' is not NAMESPACE/NAME of a DeadLetterQueue"),
    (("--name-servers", "ns-a", "--group", "orders"), "'ns-a' is not host:port"),
])
def test_contradicting_or_missing_flags_are_usage_errors(args: tuple[str, ...], says: str) -> None:
    result = dlq("list", *args)
    assert result.exit_code == 2
    assert says in result.stderr


def test_an_unreachable_name_server_is_one_line_naming_it_and_exit_code_1() -> None:
    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    result = dlq("export", "--name-servers", address, "--group", "orders", "--broker-timeout", "2")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: dead letters of orders: name servers: ")
    assert address in result.stderr
    assert "Traceback" not in result.output


def test_list_in_a_pipe_is_a_header_and_one_tab_separated_line_per_dead_letter(pending: None) -> None:
    result = dlq("list", "--name-servers", NAMESERVERS, "--group", "orders", "--key", "k1")
    assert result.exit_code == 0, result.output
    assert [line.split("\t")[0] for line in result.stdout.splitlines()] == ["ID", "IDa1", "IDb1"]
    assert result.stdout.splitlines()[1].split("\t")[1:] == [
        "k1", "paid", "1970-01-01T00:00:00.000Z", "1", "orders", "broker-a/0/1", ""]
    assert result.stderr == "listed 2 of 4 pending dead letter(s) of orders (keys k1)\n"


def test_export_writes_one_json_object_per_dead_letter_up_to_max(pending: None, tmp_path: Path) -> None:
    output = tmp_path / "out.jsonl"
    result = dlq("export", "--name-servers", NAMESERVERS, "--group", "orders", "--max", "3", "-o", str(output))
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert [record["msgId"] for record in records] == ["IDa0", "IDa1", "IDb0"]
    assert result.stderr == (f"exported 3 of 3 pending dead letter(s) of orders (every dead letter); stopped at the "
                             f"limit of 3, more may be pending to {output}\n")


def test_a_selection_of_nothing_says_why(pending: None) -> None:
    result = dlq("list", "--name-servers", NAMESERVERS, "--group", "orders", "--id", "7F0000010001AB2C0000000000000009")
    assert result.exit_code == 0
    assert result.stdout == "\t".join(dlq_cli.COLUMNS) + "\n"
    assert "none of the 4 pending dead letter(s) was selected: 1 of 1 message id(s) are not pending" in result.stderr


def test_an_object_targets_its_own_cluster_else_the_operators_default() -> None:
    own = object_target(dlq_object(cluster={"nameServers": NAMESERVERS, "aclSecretRef": {"name": "acl"}}), DEFAULT,
                        from_spec=False)
    assert own.spec.consumer_group == "orders"
    assert own.cluster.name_servers == (Endpoint("ns-a", 9876),)
    assert own.cluster.acl_secret_ref == AclSecretRef("acl", "accessKey", "secretKey")
    assert object_target(dlq_object(), DEFAULT, from_spec=False).cluster == DEFAULT
    with pytest.raises(BrowseFailed, match=r"DeadLetterQueue team-a/orders: spec.cluster: not set.*--default-namesrv"):
        object_target(dlq_object(), None, from_spec=False)


def test_from_spec_takes_the_selector_and_max_messages_of_the_objects_redrive() -> None:
    redrive = {"requestId": "r1", "maxMessages": 50,
               "selector": {"tags": ["paid"], "storedAfter": "2026-05-01T00:00:00Z"}}
    target = object_target(dlq_object(redrive=redrive), DEFAULT, from_spec=True)
    assert (target.selector, target.limit) == (Selector(tags=frozenset({"paid"}),
                                                        stored_after=datetime(2026, 5, 1, tzinfo=UTC)), 50)
    assert object_target(dlq_object(redrive=redrive), DEFAULT, from_spec=False).selector == Selector()
    assert object_target(dlq_object(), DEFAULT, from_spec=True) == Target(DeadLetterQueueSpec("orders"), DEFAULT)
    assert narrowed(target, None, 10).limit == 10  # --max lowers the spec's maxMessages, never raises it
    assert narrowed(target, None, 80).limit == 50
    assert narrowed(target, Selector(), None).selector == Selector()


def test_from_spec_refuses_an_invalid_selector_naming_the_field() -> None:
    redrive = {"requestId": "r1", "selector": {"storedBefore": "soon"}}
    with pytest.raises(BrowseFailed, match=r"team-a/orders: spec.redrive.selector.storedBefore: 'soon' is not"):
        object_target(dlq_object(redrive=redrive), DEFAULT, from_spec=True)


class FakeKube:
    """KubeApi's two reads, from a dict of objects and one Secret's credentials."""

    def __init__(self, objects: dict[tuple[str, str], dict[str, Any]]) -> None:
        self.objects = objects
        self.closed = False

    async def custom_object(self, namespace: str, name: str, *, plural: str) -> dict[str, Any]:
        assert plural == "deadletterqueues"
        if (namespace, name) not in self.objects:
            raise KubeApiError(404, "Not Found", f'deadletterqueues "{name}" not found')
        return self.objects[namespace, name]

    async def credentials(self, namespace: str, ref: AclSecretRef) -> Credentials:
        if ref.name != "acl":
            raise SecretUnavailable(f"Secret {namespace}/{ref.name} not found")
        return Credentials("ak", "sk")

    async def close(self) -> None:
        self.closed = True


def resolving(monkeypatch: pytest.MonkeyPatch, found: dict[str, Any]) -> FakeKube:
    kube = FakeKube({("team-a", "orders"): found})
    monkeypatch.setattr(KubeApi, "from_environment", classmethod(lambda cls, **_: kube))
    return kube


def test_an_object_is_read_with_its_acl_secret_and_the_flags_narrow_its_selection(
        monkeypatch: pytest.MonkeyPatch) -> None:
    redrive = {"requestId": "r1", "maxMessages": 50, "selector": {"tags": ["paid"]}}
    kube = resolving(monkeypatch, dlq_object(cluster={"nameServers": NAMESERVERS, "aclSecretRef": {"name": "acl"}},
                                             redrive=redrive))
    target = asyncio.run(resolve(Request(ObjectRef("team-a", "orders"), None, None, 5, 1.0)))
    assert (target.spec.consumer_group, target.selector, target.limit, target.credentials) == (
        "orders", Selector(tags=frozenset({"paid"})), 5, Credentials("ak", "sk"))
    assert kube.closed


@pytest.mark.parametrize(("found", "message"), [
    ({}, 'cannot read DeadLetterQueue team-a/orders: 404 Not Found: deadletterqueues "orders" not found'),
    (dlq_object(cluster={"nameServers": NAMESERVERS, "aclSecretRef": {"name": "gone"}}),
     "DeadLetterQueue team-a/orders: Secret team-a/gone not found"),
])
def test_an_object_that_cannot_be_read_is_one_line_naming_it(monkeypatch: pytest.MonkeyPatch, found: dict[str, Any],
                                                             message: str) -> None:
    kube = resolving(monkeypatch, found)
    kube.objects = {key: value for key, value in kube.objects.items() if value}
    result = dlq("list", "team-a/orders")
    assert result.exit_code == 1
    assert result.stderr == f"error: {message}\n"
    assert kube.closed
