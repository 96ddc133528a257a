"""RetryPolicy on the control loop, with the in-memory cluster: status, conflicts, annotations, deletion, credentials,
drift repair."""

import json
import logging

import pytest

from rocketmq_retry.controller import handlers
from rocketmq_retry.controller.config import OperatorConfig
from rocketmq_retry.controller.secrets import SecretUnavailable
from rocketmq_retry.domain.spec import AclSecretRef
from rocketmq_retry.remoting.acl import Credentials
from tests.unit.controller.loopbed import CONFIG, NAMESRV, LoopBed, policy_spec, ready, record
from tests.unit.fakes import FakeAdmin, FakeBroker, java_push_consumer, two_masters


async def test_a_new_policy_is_applied_and_reported() -> None:
    bed = LoopBed(two_masters())
    bed.apply(record("orders", policy_spec("orders"), generation=4))
    await bed.settle()

    [status] = bed.sink.statuses("ns/orders")
    assert ready(status)[:2] == ("True", "Synced")
    assert status["observedGeneration"] == 4
    assert (status["synced"], status["syncedMasters"], status["totalMasters"]) == ("2/2", 2, 2)
    assert [b["state"] for b in status["brokers"]] == ["Applied", "Applied"]
    assert status["brokers"][0]["lastAppliedTime"] == "2026-01-02T03:04:05Z"
    assert status["conflictWith"] is None
    assert status["ladders"][0]["retries"] == 3
    assert status["warnings"][0].startswith("ClientOverridesMaxRetries: ")
    assert [(e.type, e.reason) for e in bed.sink.messages] == [("Normal", "Synced")]
    assert bed.admin.broker("broker-a").groups["orders"]["retryMaxTimes"] == 3


async def test_an_unchanged_reason_posts_no_event_and_keeps_times() -> None:
    bed = LoopBed(two_masters())
    bed.apply(record("orders", policy_spec("orders")))
    await bed.settle()
    await bed.advance(300)  # five minutes of sweeps

    bed.loop.resync("RetryPolicy")
    await bed.settle()
    assert len(bed.sink.patches) == 1  # nothing changed, nothing written
    assert bed.sink.events == [("ns/orders", "Synced")]
    kept = bed.memory.current(record("orders", {})).status
    assert kept["conditions"][0]["lastTransitionTime"] == "2026-01-02T03:04:05Z"
    assert kept["brokers"][0]["lastAppliedTime"] == "2026-01-02T03:04:05Z"


async def test_invalid_spec_is_terminal_and_touches_no_broker() -> None:
    bed = LoopBed(two_masters())
    bed.admin.namesrv_down = True  # would fail if contacted
    bed.apply(record("bad", {"cluster": NAMESRV, "consumerGroup": "bad group", "maxRetries": -1}))
    await bed.advance(60)

    [status] = bed.sink.statuses("ns/bad")
    assert ready(status)[:2] == ("False", "InvalidSpec")
    assert "spec.consumerGroup" in ready(status)[2]
    assert "spec.maxRetries" in ready(status)[2]
    assert "brokers" not in status
    assert {c["type"] for c in status["conditions"]} == {"Ready", "Stalled"}
    assert bed.admins_built == []


async def test_the_default_cluster_serves_policies_without_one() -> None:
    without = LoopBed(two_masters())
    without.apply(record("orders", {"consumerGroup": "orders", "maxRetries": 1}))
    await without.settle()
    assert ready(without.sink.patches[-1][1])[1:] == (
        "InvalidSpec", "spec.cluster: not set, and the operator has no default cluster (--default-namesrv)")

    config = OperatorConfig(batch_window=0.0, default_cluster=OperatorConfig.default_cluster_from("127.0.0.1:9876"))
    with_default = LoopBed(two_masters(), config=config)
    with_default.apply(record("orders", {"consumerGroup": "orders", "maxRetries": 1}))
    await with_default.settle()
    assert ready(with_default.sink.patches[-1][1])[1] == "Synced"


async def test_the_older_policy_owns_the_group_and_the_newer_one_reports_a_conflict() -> None:
    bed = LoopBed(two_masters())
    older = record("first", policy_spec("orders", 4), age=60)
    newer = record("second", {"cluster": {"nameServers": "127.0.0.1:9876;127.0.0.1:9876"}, "consumerGroup": "orders",
                              "maxRetries": 7})
    elsewhere = record("third", {"cluster": {"nameServers": "10.0.0.1:9876"}, "consumerGroup": "orders"})
    bed.apply(older, newer, elsewhere)
    await bed.settle()

    status = bed.sink.statuses("ns/second")[-1]
    assert ready(status)[:2] == ("False", "Conflict")
    assert "ns/first" in ready(status)[2]
    assert status["conflictWith"] == "ns/first"
    assert [b["state"] for b in status["brokers"]] == ["Unmanaged", "Unmanaged"]
    assert ("Warning", "Conflict") in [(e.type, e.reason) for e in bed.sink.messages]
    assert bed.admin.broker("broker-a").groups["orders"]["retryMaxTimes"] == 4
    assert ready(bed.sink.statuses("ns/third")[-1])[1] != "Conflict"  # the same group on another cluster


@pytest.mark.parametrize(("annotations", "reason"), [
    ({"rocketmq-retry.io/pause-reconciliation": "true"}, "ReconciliationPaused"),
    ({"rocketmq-retry.io/managed": "false"}, "Unmanaged"),
])
async def test_paused_or_unmanaged_policies_write_nothing(annotations: dict[str, str], reason: str) -> None:
    bed = LoopBed(two_masters())
    bed.apply(record("orders", policy_spec("orders"), annotations=annotations))
    await bed.advance(120)

    [status] = bed.sink.statuses("ns/orders")
    assert ready(status)[:2] == ("Unknown", reason)
    assert status["synced"] == "0/2"
    assert all(not broker.writes for broker in bed.admin.brokers.values())


async def test_a_failed_broker_is_named_and_retried_with_backoff_until_it_clears() -> None:
    bed = LoopBed(two_masters())
    bed.admin.broker("broker-b").down = True
    bed.apply(record("orders", policy_spec("orders")))
    await bed.settle()

    status = bed.sink.patches[-1][1]
    assert ready(status)[:2] == ("False", "PartiallyApplied")
    assert ready(status)[2].startswith("applied on 1 of 2 master brokers; broker-b: ")
    assert status["synced"] == "1/2"
    assert {c["type"] for c in status["conditions"]} == {"Ready", "Reconciling"}

    await bed.advance(CONFIG.retry_first + CONFIG.retry_first * 2)  # two retries, the broker still down
    assert bed.admin.broker("broker-a").group_reads == 3
    bed.admin.broker("broker-b").down = False
    await bed.advance(CONFIG.retry_first * 4)
    assert ready(bed.sink.patches[-1][1])[1] == "Synced"
    reads = bed.admin.broker("broker-a").group_reads
    await bed.advance(CONFIG.sweep_interval - 1)
    assert bed.admin.broker("broker-a").group_reads == reads  # Synced is not retried


async def test_finalize_resets_only_when_the_policy_says_so_and_owns_the_group() -> None:
    bed = LoopBed(two_masters())
    spec = policy_spec("orders", 3)
    owner = record("first", {**spec, "deletionPolicy": "Reset"}, age=60)
    bed.apply(owner)
    await bed.settle()

    retained = record("kept", {**spec, "deletionPolicy": "Retain"}, age=90, uid="uid-kept", deleting=True)
    loser = record("second", {**spec, "deletionPolicy": "Reset"}, deleting=True)
    for finalizing in [loser, retained]:
        outcome = await bed.finalize(finalizing)
        assert outcome.done, outcome.message
        assert bed.admin.broker("broker-a").groups["orders"]["retryMaxTimes"] == 3
        bed.delete(finalizing)
    unmanaged = record("first", owner.spec, age=60, annotations={"rocketmq-retry.io/managed": "false"},
                       deleting=True)
    assert (await bed.finalize(unmanaged)).message == "unmanaged: the group config is left as it is"

    outcome = await bed.finalize(record("first", owner.spec, age=60, deleting=True))

    assert outcome.done
    assert "2 master broker(s)" in outcome.message
    assert {b.groups["orders"]["retryMaxTimes"] for b in bed.admin.brokers.values()} == {16}


async def test_finalize_reports_a_broker_it_could_not_reset() -> None:
    bed = LoopBed(two_masters())
    owner = record("first", policy_spec("orders", deletionPolicy="Reset"))
    bed.apply(owner)
    await bed.settle()
    bed.admin.broker("broker-a").down = True

    outcome = await bed.finalize(record("first", owner.spec, deleting=True))

    assert not outcome.done
    assert outcome.message.startswith("cannot reset on broker-a: ")


def test_only_reset_policies_carry_the_finalizer() -> None:
    assert handlers.resets_on_delete({"deletionPolicy": "Reset"})
    assert not handlers.resets_on_delete({"deletionPolicy": "Retain"})
    assert not handlers.resets_on_delete({})


class Secrets:
    def __init__(self, secret: str = "sk") -> None:  # noqa: S107 - a test value
        self.secret = secret

    async def credentials(self, namespace: str, ref: AclSecretRef) -> Credentials:
        if ref.name == "missing":
            raise SecretUnavailable(f"Secret {namespace}/{ref.name} not found")
        return Credentials("ak", self.secret, security_token=self.secret)


async def test_acl_credentials_come_from_the_policys_secret_or_the_reason_says_why_not() -> None:
    bed = LoopBed(two_masters(), secrets=Secrets())
    bed.apply(record("signed", policy_spec("orders", cluster={**NAMESRV, "aclSecretRef": {"name": "rocketmq-acl"}})),
              record("unsigned", policy_spec("other", cluster={**NAMESRV, "aclSecretRef": {"name": "missing"}})))
    await bed.settle()

    assert ready(bed.sink.statuses("ns/signed")[-1])[1] == "Synced"
    assert bed.admins_built == [("*@127.0.0.1:9876", Credentials("ak", "sk", security_token="sk"))]
    status = bed.sink.statuses("ns/unsigned")[-1]
    assert ready(status) == ("False", "AclSecretUnavailable", "cannot read the ACL Secret: Secret ns/missing not found")
    assert {c["type"] for c in status["conditions"]} == {"Ready", "Reconciling"}  # retried: it may appear later
    assert ("ns/unsigned", "AclSecretUnavailable") in bed.sink.events
    assert len(bed.admins_built) == 1  # no admin was built for the policy without credentials


async def test_secret_values_reach_no_status_event_or_log(caplog: pytest.LogCaptureFixture) -> None:
    secret = "s3cr3t-value-never-shown"
    bed = LoopBed(two_masters(), secrets=Secrets(secret))
    bed.admin.broker("broker-b").down = True  # a failing pass, so failure messages are checked too

    with caplog.at_level(logging.DEBUG):
        bed.apply(record("orders", policy_spec("orders", cluster={**NAMESRV, "aclSecretRef": {"name": "acl"}})))
        await bed.advance(30)
        logging.getLogger("test").info("admins built: %s", bed.admins_built)

    assert "Credentials(access_key='ak')" in caplog.text
    shown = [json.dumps(bed.sink.patches), repr(bed.sink.messages), caplog.text]
    assert not [text for text in shown if secret in text]


async def test_drift_and_lost_stores_are_repaired_in_one_batch_and_reported_once() -> None:
    bed = LoopBed(two_masters())
    bed.apply(record("a", policy_spec("a", 1)), record("b", policy_spec("b", 2)))
    await bed.settle()
    assert bed.admin.broker("broker-a").writes == [["a", "b"]]
    bed.sink.patches.clear()
    bed.sink.events.clear()

    bed.loop.resync("RetryPolicy")
    await bed.settle()
    assert (bed.sink.patches, bed.sink.events) == ([], [])
    assert bed.admin.broker("broker-a").writes == [["a", "b"]]

    bed.admin.broker("broker-a").groups["a"]["retryMaxTimes"] = 16  # edited by hand
    bed.admin.broker("broker-b").groups.clear()  # restarted with an empty store
    await bed.advance(120)
    bed.loop.resync("RetryPolicy")
    await bed.settle()

    assert bed.admin.broker("broker-a").writes[-1] == ["a"]
    assert bed.admin.broker("broker-b").writes[-1] == ["a", "b"]
    assert {b.groups["a"]["retryMaxTimes"] for b in bed.admin.brokers.values()} == {1}
    assert sorted(ref for ref, _ in bed.sink.patches) == ["ns/a", "ns/b"]  # lastAppliedTime moved
    applied = {b["name"]: b["lastAppliedTime"] for b in bed.sink.statuses("ns/b")[-1]["brokers"]}
    assert applied == {"broker-a": "2026-01-02T03:04:05Z", "broker-b": "2026-01-02T03:06:05Z"}
    assert bed.sink.events == []  # still Synced
    assert bed.sample("rocketmq_retry_drift_corrections_total", cluster="*@127.0.0.1:9876") == 3


async def test_a_broker_going_down_changes_status_and_posts_one_event() -> None:
    bed = LoopBed(two_masters())
    bed.apply(record("a", policy_spec("a", 1)))
    await bed.settle()
    bed.admin.broker("broker-b").down = True

    bed.loop.resync("RetryPolicy")
    await bed.settle()
    bed.loop.resync("RetryPolicy")
    await bed.settle()

    assert bed.sink.events == [("ns/a", "Synced"), ("ns/a", "PartiallyApplied")]
    assert bed.sink.patches[-1][1]["synced"] == "1/2"
    assert len(bed.sink.patches) == 2


async def test_the_conflict_loser_takes_over_when_the_owner_is_deleted() -> None:
    bed = LoopBed(two_masters())
    owner = record("first", policy_spec("orders", 4), age=60)
    loser = record("second", policy_spec("orders", 7))
    bed.apply(owner, loser)
    await bed.settle()
    assert bed.admin.broker("broker-a").groups["orders"]["retryMaxTimes"] == 4
    assert bed.sink.statuses("ns/second")[-1]["conflictWith"] == "ns/first"

    bed.delete(owner)
    await bed.settle()

    assert {b.groups["orders"]["retryMaxTimes"] for b in bed.admin.brokers.values()} == {7}
    assert bed.sink.patches[-1][0] == "ns/second"
    assert bed.sink.patches[-1][1]["conflictWith"] is None
    assert bed.sink.events[-1] == ("ns/second", "Synced")


async def test_event_passes_reuse_a_recent_read_and_fresh_passes_always_read() -> None:
    bed = LoopBed(two_masters())
    bed.apply(record("a", policy_spec("a", 1)))
    await bed.settle()
    bed.apply(record("b", policy_spec("b", 2)))
    await bed.settle()

    assert bed.admin.broker("broker-a").group_reads == 1
    assert {name: group["retryMaxTimes"] for name, group in bed.admin.broker("broker-a").groups.items()} == {
        "a": 1, "b": 2}
    bed.admin.broker("broker-a").groups["a"]["retryMaxTimes"] = 16  # edited by hand: only a fresh read sees it

    bed.loop.resync("RetryPolicy")
    await bed.settle()

    assert bed.admin.broker("broker-a").group_reads == 2
    assert bed.admin.broker("broker-a").groups["a"]["retryMaxTimes"] == 1


async def test_policies_alike_share_the_parts_of_their_statuses() -> None:
    """Kept for every policy, the brokers, ladders and warnings that policies have alike are one object each."""
    bed = LoopBed(two_masters())
    bed.apply(record("orders", policy_spec("orders")), record("invoices", policy_spec("invoices")))
    await bed.settle()

    orders, invoices = (bed.memory.current(record(name, {})).status for name in ("orders", "invoices"))
    assert orders["ladders"] == invoices["ladders"]
    for part in ("brokers", "ladders", "warnings"):
        assert all(mine is theirs for mine, theirs in zip(orders[part], invoices[part], strict=True)), part


async def test_the_sweep_reports_live_consumers_and_falls_back_to_the_assumed_view_when_they_leave() -> None:
    bed = LoopBed(two_masters())
    bed.apply(record("orders", policy_spec("orders")))  # maxRetries 3
    await bed.settle()
    clients = {"c-default": java_push_consumer(), "c-five": java_push_consumer(5),
               "c-orderly": java_push_consumer(orderly=True)}
    bed.admin.broker("broker-a").consumers["orders"] = ("CLUSTERING", clients)
    bed.loop.resync("RetryPolicy")
    await bed.settle()

    status = bed.memory.current(record("orders", {})).status
    assert [(c["kind"], c.get("deadLetterAfterRetries"), c["clients"]) for c in status["consumers"]] == [
        ("RemotingConcurrent", 5, ["c-five"]), ("RemotingConcurrent", 16, ["c-default"]),
        ("RemotingOrderly", None, ["c-orderly"])]
    differ = next(c for c in status["conditions"] if c["type"] == "EffectiveRetriesDiffer")
    assert (differ["status"], differ["reason"]) == ("True", "ClientLimits")
    assert "after 5" in differ["message"]
    assert "after 16" in differ["message"]
    assert not any(w.startswith("ClientOverridesMaxRetries") for w in status["warnings"])

    del bed.admin.broker("broker-a").consumers["orders"]
    bed.loop.resync("RetryPolicy")
    await bed.settle()
    status = bed.memory.current(record("orders", {})).status
    assert status.get("consumers") is None
    assert [c["type"] for c in status["conditions"]] == ["Ready"]
    assert status["warnings"][0].startswith("ClientOverridesMaxRetries: assumed")


async def _orders_written_with_a_slave() -> tuple[LoopBed, FakeAdmin, FakeBroker]:
    """Two masters, broker-a with a slave that has copied nothing yet, and policy `orders` written and settled."""
    admin = two_masters()
    slave = FakeBroker("broker-a", "127.0.0.1:10915", broker_id=1)
    admin.brokers[slave.addr] = slave
    bed = LoopBed(admin)
    bed.apply(record("orders", policy_spec("orders")))
    await bed.settle()
    return bed, admin, slave


async def test_a_slave_behind_its_master_is_looked_at_again_soon_then_left_to_the_sweep() -> None:
    bed, admin, slave = await _orders_written_with_a_slave()
    [status] = bed.sink.statuses("ns/orders")
    assert status["brokers"][0]["slaves"] == [{"brokerId": 1, "address": slave.addr, "holdsConfig": False,
                                               "message": "lacks the group: a slave copies its master's groups "
                                                          "every 10 s"}]
    reads = slave.group_reads

    await bed.advance(CONFIG.slave_check_interval)
    assert slave.group_reads == reads + 1  # looked at again well before the sweep
    slave.copy_from(admin.broker("broker-a"))
    await bed.advance(CONFIG.slave_check_interval)
    assert bed.sink.statuses("ns/orders")[-1]["brokers"][0]["slaves"][0]["holdsConfig"] is True
    assert [e.reason for e in bed.sink.messages] == ["Synced"]  # the masters' Ready is not the slaves' business

    slave.groups.clear()  # a slave that loses the group long after the write is read by the sweeps only
    await bed.advance(CONFIG.slave_catch_up)
    reads = slave.group_reads
    bed.loop.resync("RetryPolicy")
    await bed.advance(CONFIG.slave_check_interval * 3)
    assert slave.group_reads == reads + 1
    assert bed.sink.statuses("ns/orders")[-1]["brokers"][0]["slaves"][0]["holdsConfig"] is False


async def test_a_slave_that_never_copies_is_looked_at_for_a_while_after_the_write_then_by_the_sweeps() -> None:
    bed, _, slave = await _orders_written_with_a_slave()

    await bed.advance(CONFIG.slave_catch_up)
    assert slave.group_reads == 1 + CONFIG.slave_catch_up // CONFIG.slave_check_interval
    reads = slave.group_reads
    await bed.advance(CONFIG.slave_catch_up)  # this bed runs no sweep by itself
    assert slave.group_reads == reads
