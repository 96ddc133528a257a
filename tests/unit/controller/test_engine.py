"""The operator's decisions and status, with an in-memory cluster: conflicts, annotations, deletion, errors."""

import asyncio
import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from rocketmq_retry.controller import handlers
from rocketmq_retry.controller.engine import Runtime, SecretUnavailable, finalize_record, reconcile_record
from rocketmq_retry.controller.records import PolicyRecord
from rocketmq_retry.domain.spec import AclSecretRef, ClusterRef
from rocketmq_retry.reconcile.config import OperatorConfig
from rocketmq_retry.remoting.acl import Credentials
from tests.unit.fakes import FakeAdmin, claims, two_masters

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
NAMESRV = {"nameServers": "127.0.0.1:9876"}


class NoSecrets:
    async def credentials(self, namespace: str, ref: AclSecretRef) -> Credentials:
        raise AssertionError("no policy here references a Secret")


def runtime_for(admin: FakeAdmin, config: OperatorConfig | None = None) -> Runtime:
    def admins(cluster: ClusterRef, credentials: Credentials | None) -> FakeAdmin:
        return admin

    return Runtime(config or OperatorConfig(), admins, NoSecrets())


def record(name: str, spec: dict[str, Any], *, age: int = 0, generation: int = 1, uid: str | None = None,
           annotations: dict[str, str] | None = None, status: dict[str, Any] | None = None,
           deleting: bool = False) -> PolicyRecord:
    return PolicyRecord("ns", name, uid or f"uid-{name}", generation, NOW - timedelta(seconds=age),
                        annotations or {}, spec, status or {}, deleting)


def ready(status: dict[str, Any]) -> tuple[str, str, str]:
    condition = next(c for c in status["conditions"] if c["type"] == "Ready")
    return condition["status"], condition["reason"], condition["message"]


async def test_a_new_policy_is_applied_and_reported() -> None:
    admin = two_masters()
    policy = record("orders", {"cluster": NAMESRV, "consumerGroup": "orders", "maxRetries": 3}, generation=4)

    result = await reconcile_record(runtime_for(admin), policy, claims(policy), NOW)

    assert result.retry is False
    assert ready(result.status)[:2] == ("True", "Synced")
    assert result.status["observedGeneration"] == 4
    assert (result.status["synced"], result.status["syncedMasters"], result.status["totalMasters"]) == ("2/2", 2, 2)
    assert [b["state"] for b in result.status["brokers"]] == ["Applied", "Applied"]
    assert result.status["brokers"][0]["lastAppliedTime"] == "2026-01-02T03:04:05Z"
    assert result.status["conflictWith"] is None
    assert result.status["ladders"][0]["retries"] == 3
    assert result.status["warnings"][0].startswith("ClientOverridesMaxRetries: ")
    assert result.event is not None
    assert (result.event.type, result.event.reason) == ("Normal", "Synced")
    assert admin.broker("broker-a").groups["orders"]["retryMaxTimes"] == 3


async def test_an_unchanged_reason_posts_no_event_and_keeps_times() -> None:
    admin = two_masters()
    runtime = runtime_for(admin)
    policy = record("orders", {"cluster": NAMESRV, "consumerGroup": "orders", "maxRetries": 3})
    first = await reconcile_record(runtime, policy, claims(policy), NOW)

    later = NOW + timedelta(minutes=5)
    again = await reconcile_record(runtime, record("orders", policy.spec, status=first.status), claims(policy), later)

    assert again.event is None
    assert again.status["conditions"][0]["lastTransitionTime"] == "2026-01-02T03:04:05Z"
    assert again.status["brokers"][0]["lastAppliedTime"] == "2026-01-02T03:04:05Z"  # nothing was written later


async def test_invalid_spec_is_terminal_and_touches_no_broker() -> None:
    admin = two_masters()
    admin.namesrv_down = True  # would fail if contacted
    policy = record("bad", {"cluster": NAMESRV, "consumerGroup": "bad group", "maxRetries": -1})

    result = await reconcile_record(runtime_for(admin), policy, claims(policy), NOW)

    status, reason, message = ready(result.status)
    assert (status, reason, result.retry) == ("False", "InvalidSpec", False)
    assert "spec.consumerGroup" in message
    assert "spec.maxRetries" in message
    assert "brokers" not in result.status
    assert {c["type"] for c in result.status["conditions"]} == {"Ready", "Stalled"}


async def test_the_default_cluster_serves_policies_without_one() -> None:
    admin = two_masters()
    policy = record("orders", {"consumerGroup": "orders", "maxRetries": 1})

    without = await reconcile_record(runtime_for(admin), policy, claims(policy), NOW)
    assert ready(without.status)[1:] == (
        "InvalidSpec", "spec.cluster: not set, and the operator has no default cluster (--default-namesrv)")

    with_default = runtime_for(admin, OperatorConfig.build("127.0.0.1:9876"))
    result = await reconcile_record(with_default, policy, claims(policy), NOW)
    assert ready(result.status)[1] == "Synced"


async def test_the_older_policy_owns_the_group_and_the_newer_one_reports_a_conflict() -> None:
    admin = two_masters()
    runtime = runtime_for(admin)
    older = record("first", {"cluster": NAMESRV, "consumerGroup": "orders", "maxRetries": 4}, age=60)
    newer = record("second", {"cluster": {"nameServers": "127.0.0.1:9876;127.0.0.1:9876"},
                              "consumerGroup": "orders", "maxRetries": 7})
    await reconcile_record(runtime, older, claims(older, newer), NOW)

    result = await reconcile_record(runtime, newer, claims(older, newer), NOW)

    status, reason, message = ready(result.status)
    assert (status, reason, result.retry) == ("False", "Conflict", False)
    assert "ns/first" in message
    assert result.status["conflictWith"] == "ns/first"
    assert [b["state"] for b in result.status["brokers"]] == ["Unmanaged", "Unmanaged"]
    assert result.event is not None
    assert result.event.type == "Warning"
    assert admin.broker("broker-a").groups["orders"]["retryMaxTimes"] == 4
    # The same group on another cluster is no conflict.
    elsewhere = record("third", {"cluster": {"nameServers": "10.0.0.1:9876"}, "consumerGroup": "orders"})
    assert ready((await reconcile_record(runtime, elsewhere, claims(older, elsewhere), NOW)).status)[1] != "Conflict"


@pytest.mark.parametrize(("annotations", "reason"), [
    ({"rocketmq-retry.io/pause-reconciliation": "true"}, "ReconciliationPaused"),
    ({"rocketmq-retry.io/managed": "false"}, "Unmanaged"),
])
async def test_paused_or_unmanaged_policies_write_nothing(annotations: dict[str, str], reason: str) -> None:
    admin = two_masters()
    policy = record("orders", {"cluster": NAMESRV, "consumerGroup": "orders", "maxRetries": 3},
                    annotations=annotations)

    result = await reconcile_record(runtime_for(admin), policy, claims(policy), NOW)

    assert ready(result.status)[:2] == ("Unknown", reason)
    assert result.retry is False
    assert result.status["synced"] == "0/2"
    assert all(not broker.writes for broker in admin.brokers.values())


async def test_a_failed_broker_is_retried_and_named() -> None:
    admin = two_masters()
    admin.broker("broker-b").down = True
    policy = record("orders", {"cluster": NAMESRV, "consumerGroup": "orders", "maxRetries": 3})

    result = await reconcile_record(runtime_for(admin), policy, claims(policy), NOW)

    status, reason, message = ready(result.status)
    assert (status, reason, result.retry) == ("False", "PartiallyApplied", True)
    assert message.startswith("applied on 1 of 2 master brokers; broker-b: ")
    assert result.status["synced"] == "1/2"
    assert {c["type"] for c in result.status["conditions"]} == {"Ready", "Reconciling"}


async def test_finalize_resets_only_when_the_policy_says_so_and_owns_the_group() -> None:
    admin = two_masters()
    runtime = runtime_for(admin)
    spec = {"cluster": NAMESRV, "consumerGroup": "orders", "maxRetries": 3}
    owner = record("first", {**spec, "deletionPolicy": "Reset"}, age=60, deleting=True)
    await reconcile_record(runtime, owner, claims(owner), NOW)

    retained = record("kept", {**spec, "deletionPolicy": "Retain"}, age=90)
    loser = record("second", {**spec, "deletionPolicy": "Reset"}, deleting=True)
    unmanaged = record("first", owner.spec, age=60, annotations={"rocketmq-retry.io/managed": "false"})
    for finalizing, known in [(retained, [retained]), (loser, [owner, loser]), (unmanaged, [unmanaged])]:
        outcome = await finalize_record(runtime, finalizing, claims(*known), NOW)
        assert outcome.done
        assert admin.broker("broker-a").groups["orders"]["retryMaxTimes"] == 3

    outcome = await finalize_record(runtime, owner, claims(owner, loser), NOW)

    assert outcome.done
    assert "2 master broker(s)" in outcome.message
    assert {b.groups["orders"]["retryMaxTimes"] for b in admin.brokers.values()} == {16}


async def test_finalize_reports_a_broker_it_could_not_reset() -> None:
    admin = two_masters()
    runtime = runtime_for(admin)
    owner = record("first", {"cluster": NAMESRV, "consumerGroup": "orders", "maxRetries": 3,
                             "deletionPolicy": "Reset"})
    await reconcile_record(runtime, owner, claims(owner), NOW)
    admin.broker("broker-a").down = True

    outcome = await finalize_record(runtime, owner, claims(owner), NOW)

    assert not outcome.done
    assert outcome.message.startswith("cannot reset on broker-a: ")


def test_only_reset_policies_carry_the_finalizer() -> None:
    assert handlers.resets_on_delete({"deletionPolicy": "Reset"})
    assert not handlers.resets_on_delete({"deletionPolicy": "Retain"})
    assert not handlers.resets_on_delete({})


async def test_acl_credentials_come_from_the_policys_secret_or_the_reason_says_why_not() -> None:
    admin = two_masters()
    seen: list[tuple[str, Credentials | None]] = []

    class Secrets:
        async def credentials(self, namespace: str, ref: AclSecretRef) -> Credentials:
            if ref.name == "missing":
                raise SecretUnavailable(f"Secret {namespace}/{ref.name} not found")
            return Credentials("ak", "sk")

    def admins(cluster: ClusterRef, credentials: Credentials | None) -> FakeAdmin:
        seen.append((cluster.key, credentials))
        return admin

    runtime = Runtime(OperatorConfig(), admins, Secrets())
    signed = record("signed", {"cluster": {**NAMESRV, "aclSecretRef": {"name": "rocketmq-acl"}},
                               "consumerGroup": "orders", "maxRetries": 3})
    assert ready((await reconcile_record(runtime, signed, claims(signed), NOW)).status)[1] == "Synced"
    assert seen == [("*@127.0.0.1:9876", Credentials("ak", "sk"))]

    unsigned = record("unsigned", {"cluster": {**NAMESRV, "aclSecretRef": {"name": "missing"}},
                                   "consumerGroup": "other", "maxRetries": 3})
    result = await reconcile_record(runtime, unsigned, claims(unsigned), NOW)
    assert ready(result.status) == ("False", "AclSecretUnavailable",
                                    "cannot read the ACL Secret: Secret ns/missing not found")
    assert {c["type"] for c in result.status["conditions"]} == {"Ready", "Reconciling"}  # retried: it may appear later
    assert result.retry
    assert result.event is not None
    assert (result.event.type, result.event.reason) == ("Warning", "AclSecretUnavailable")
    assert len(seen) == 1  # no admin was built for the policy without credentials


async def test_secret_values_reach_no_status_event_or_log(caplog: pytest.LogCaptureFixture) -> None:
    secret = "s3cr3t-value-never-shown"
    admin = two_masters()
    admin.broker("broker-b").down = True  # a failing pass, so failure messages are checked too

    class Secrets:
        async def credentials(self, namespace: str, ref: AclSecretRef) -> Credentials:
            return Credentials("ak", secret, security_token=secret)

    def admins(cluster: ClusterRef, credentials: Credentials | None) -> FakeAdmin:
        logging.getLogger("test").info("admin for %s with %s", cluster.key, credentials)
        return admin

    runtime = Runtime(OperatorConfig(), admins, Secrets())
    policy = record("orders", {"cluster": {**NAMESRV, "aclSecretRef": {"name": "acl"}}, "consumerGroup": "orders"})

    with caplog.at_level(logging.DEBUG):
        result = await reconcile_record(runtime, policy, claims(policy), NOW)

    assert result.retry
    assert "with Credentials(access_key='ak')" in caplog.text
    # The status (also the requeue error's text) and the Event are all the operator writes or posts.
    shown = [json.dumps(result.status), repr(result.event), caplog.text]
    assert not [text for text in shown if secret in text]


async def test_a_burst_of_events_costs_a_couple_of_batched_passes_not_one_per_policy() -> None:
    admin = two_masters()
    runtime = runtime_for(admin)
    policies = [record(f"p{n}", {"cluster": NAMESRV, "consumerGroup": f"g{n}", "maxRetries": 3}) for n in range(50)]
    index = claims(*policies)

    results = await asyncio.gather(*(reconcile_record(runtime, policy, index, NOW) for policy in policies))

    assert {ready(result.status)[1] for result in results} == {"Synced"}
    writes = admin.broker("broker-a").writes
    assert len(writes) <= 2
    assert sorted(group for call in writes for group in call) == sorted(f"g{n}" for n in range(50))


def test_kopfs_line_per_observed_event_is_dropped_and_its_other_lines_kept() -> None:
    def line(message: str) -> logging.LogRecord:
        return logging.LogRecord("kopf.objects", logging.INFO, __file__, 1, message, None, None)

    quiet = logging.getLogger("kopf.objects").filters
    assert not all(f.filter(line("Handler 'observe' succeeded.")) for f in quiet)
    assert all(f.filter(line("Handler 'finalize' succeeded.")) for f in quiet)
