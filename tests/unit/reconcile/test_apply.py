"""reconcile_cluster against an in-memory cluster: what is written, where, and the per-broker outcome."""

from datetime import UTC, datetime

from rocketmq_retry.domain.broker import DEFAULT_CUSTOMIZED_NEXT_MS, BrokerLine, default_group_config
from rocketmq_retry.domain.ladder import ClientProtocol
from rocketmq_retry.domain.spec import ClusterRef, parse_cluster, parse_spec
from rocketmq_retry.domain.status import BrokerState
from rocketmq_retry.domain.warnings import WarningCode
from rocketmq_retry.reconcile.apply import Intent, Mode, PolicyResult, reconcile_cluster
from rocketmq_retry.remoting.errors import BrokerError
from rocketmq_retry.remoting.models import TopicConfig
from tests.unit.fakes import FakeAdmin, FakeBroker, two_masters

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
CLUSTER: ClusterRef = parse_cluster({"nameServers": "127.0.0.1:9876"})
EXPONENTIAL = {"exponential": {"initial": "1s", "max": "1m", "multiplier": 2}}


def _intent(spec: dict[str, object], mode: Mode = Mode.APPLY, key: str = "ns/p") -> Intent:
    return Intent(key, parse_spec(spec), mode)


async def _run(admin: FakeAdmin, *intents: Intent, call_timeout: float = 1.0) -> dict[str, PolicyResult]:
    return await reconcile_cluster(admin, CLUSTER, intents, call_timeout=call_timeout, now=NOW)


async def test_creates_the_group_on_every_master_then_writes_nothing_more() -> None:
    admin = two_masters()
    intent = _intent({"consumerGroup": "orders", "maxRetries": 3, "retryQueues": 2, "backoff": EXPONENTIAL})

    result = (await _run(admin, intent))["ns/p"]

    assert [(b.name, b.state, b.last_applied, b.version) for b in result.brokers] == [
        ("broker-a", BrokerState.APPLIED, NOW, "V5_5_0"), ("broker-b", BrokerState.APPLIED, NOW, "V5_5_0")]
    for broker in admin.brokers.values():
        stored = broker.groups["orders"]
        assert (stored["retryMaxTimes"], stored["retryQueueNums"]) == (3, 2)
        assert stored["groupRetryPolicy"] == {"type": "EXPONENTIAL", "exponentialRetryPolicy": {
            "initial": 1000, "max": 60000, "multiplier": 2}}
        assert broker.writes == [["orders"]]
    assert [ladder.client for ladder in result.view.ladders] == [ClientProtocol.REMOTING, ClientProtocol.GRPC]
    assert result.view.ladders[1].delays_ms == (1000, 2000, 4000)

    again = (await _run(admin, intent))["ns/p"]
    assert all(b.state is BrokerState.APPLIED and b.last_applied is None for b in again.brokers)
    assert [broker.writes for broker in admin.brokers.values()] == [[["orders"]], [["orders"]]]


async def test_only_owned_fields_change_and_the_rest_of_the_group_stays() -> None:
    admin = two_masters()
    for broker in admin.brokers.values():
        broker.store(default_group_config("orders", BrokerLine.V5) | {"consumeEnable": False, "retryQueueNums": 4})

    await _run(admin, _intent({"consumerGroup": "orders", "maxRetries": 0}))

    stored = admin.broker("broker-a").groups["orders"]
    assert (stored["retryMaxTimes"], stored["retryQueueNums"], stored["consumeEnable"]) == (0, 4, False)
    assert stored["groupRetryPolicy"] == {"type": "CUSTOMIZED"}


async def test_a_policy_that_sets_nothing_creates_no_group() -> None:
    admin = two_masters()
    result = (await _run(admin, _intent({"consumerGroup": "orders"})))["ns/p"]
    assert {b.state for b in result.brokers} == {BrokerState.APPLIED}
    assert all(not broker.groups and not broker.writes for broker in admin.brokers.values())


async def test_a_dead_or_silent_broker_fails_alone() -> None:
    admin = two_masters()
    admin.broker("broker-a").down = True
    admin.broker("broker-b").stalled = True
    admin.brokers["127.0.0.1:10931"] = healthy = type(admin.broker("broker-a"))("broker-c", "127.0.0.1:10931")

    result = (await _run(admin, _intent({"consumerGroup": "orders", "maxRetries": 3}), call_timeout=0.2))["ns/p"]

    states = {b.name: (b.state, b.message) for b in result.brokers}
    assert states["broker-a"][0] is BrokerState.FAILED
    assert "ConnectionRefusedError" in str(states["broker-a"][1])
    assert states["broker-b"] == (BrokerState.FAILED, "broker-b (127.0.0.1:10921) runtime info: no answer within 0.2 s")
    assert states["broker-c"] == (BrokerState.APPLIED, None)
    assert healthy.groups["orders"]["retryMaxTimes"] == 3


async def test_name_servers_down_is_a_result_not_an_exception() -> None:
    admin = two_masters()
    admin.namesrv_down = True
    result = (await _run(admin, _intent({"consumerGroup": "orders", "maxRetries": 3})))["ns/p"]
    assert result.brokers == ()
    assert result.error is not None
    assert result.error.startswith("cannot list the cluster's masters: name servers: ")
    assert [w.code for w in result.view.warnings] == [WarningCode.CLIENT_OVERRIDES_MAX_RETRIES]


async def test_4x_brokers_get_no_group_retry_policy_and_say_why() -> None:
    admin = two_masters("V4_9_7")
    result = (await _run(admin, _intent({"consumerGroup": "orders", "maxRetries": 2, "backoff": EXPONENTIAL})))["ns/p"]
    stored = admin.broker("broker-a").groups["orders"]
    assert "groupRetryPolicy" not in stored
    assert stored["retryMaxTimes"] == 2
    assert [ladder.client for ladder in result.view.ladders] == [ClientProtocol.REMOTING]
    assert result.view.ladders[0].delays_ms == (10_000, 30_000)  # delay levels 3 and 4
    assert WarningCode.BACKOFF_IGNORED_ON_4X in {w.code for w in result.view.warnings}
    # 4.x drops the field, so the next pass must not see drift in it and write again.
    await _run(admin, _intent({"consumerGroup": "orders", "maxRetries": 2, "backoff": EXPONENTIAL}))
    assert admin.broker("broker-a").writes == [["orders"]]


async def test_retry_topics_are_made_and_grown_to_retry_queues_before_the_group_and_never_shrunk() -> None:
    admin = two_masters()
    small = TopicConfig("%RETRY%orders", read_queue_nums=1, write_queue_nums=1, perm=4, topic_sys_flag=2)
    admin.broker("broker-b").topics["%RETRY%orders"] = small

    result = (await _run(admin, _intent({"consumerGroup": "orders", "retryQueues": 4})))["ns/p"]

    a, b = admin.broker("broker-a"), admin.broker("broker-b")
    assert a.topics["%RETRY%orders"] == TopicConfig("%RETRY%orders", read_queue_nums=4, write_queue_nums=4, perm=6)
    grown = b.topics["%RETRY%orders"]
    assert (grown.read_queue_nums, grown.write_queue_nums, grown.perm, grown.topic_sys_flag) == (4, 4, 4, 2)
    assert [broker.topic_writes for broker in (a, b)] == [[["%RETRY%orders"]], [["%RETRY%orders"]]]
    assert WarningCode.RETRY_TOPIC_TOO_SMALL not in {w.code for w in result.view.warnings}

    b.topics["%RETRY%orders"] = TopicConfig("%RETRY%orders", read_queue_nums=8, write_queue_nums=8)
    await _run(admin, _intent({"consumerGroup": "orders", "retryQueues": 4}))
    assert b.topics["%RETRY%orders"].read_queue_nums == 8  # more queues than the group uses stay
    assert len(b.topic_writes) == 1


async def test_a_group_without_retry_queues_gets_its_retry_topic_at_the_groups_size() -> None:
    admin = two_masters()
    await _run(admin, _intent({"consumerGroup": "orders", "maxRetries": 2}))
    assert admin.broker("broker-a").topics["%RETRY%orders"].read_queue_nums == 1

    admin.broker("broker-a").groups["other"] = {"groupName": "other", "retryQueueNums": 3}
    await _run(admin, _intent({"consumerGroup": "other", "maxRetries": 2}))
    assert admin.broker("broker-a").topics["%RETRY%other"].read_queue_nums == 3


async def test_a_failed_retry_topic_write_fails_the_broker_and_leaves_the_group_unwritten() -> None:
    admin = two_masters()

    async def refuse(addr: str, configs: object) -> None:
        raise BrokerError(29, "The specified topic is longer than topic max length.", 18, addr)

    admin.create_or_update_topics = refuse  # type: ignore[method-assign]
    result = (await _run(admin, _intent({"consumerGroup": "orders", "retryQueues": 2})))["ns/p"]
    assert [(broker.state, "retry topic(s)" in (broker.message or "")) for broker in result.brokers] == [
        (BrokerState.FAILED, True), (BrokerState.FAILED, True)]
    assert all(not broker.groups for broker in admin.brokers.values())


async def test_facts_reach_the_warnings_and_a_pass_that_only_observes_reads_no_topics() -> None:
    admin = two_masters()
    admin.broker("broker-b").topics["%RETRY%orders"] = TopicConfig("%RETRY%orders", read_queue_nums=1,
                                                                    write_queue_nums=1)
    result = (await _run(admin, _intent({"consumerGroup": "orders", "retryQueues": 4}, Mode.OBSERVE)))["ns/p"]
    messages = {w.code: w.message for w in result.view.warnings}
    assert "broker-b (1)" in messages[WarningCode.RETRY_TOPIC_TOO_SMALL]
    assert "broker-a, broker-b" in messages[WarningCode.AUTO_CREATE_SUBSCRIPTION_GROUP]
    assert admin.broker("broker-a").topic_reads == 1

    await _run(admin, _intent({"consumerGroup": "orders", "maxRetries": 2}, Mode.OBSERVE))
    assert admin.broker("broker-a").topic_reads == 1  # no retryQueues and nothing to apply: no topic table


async def test_reset_restores_defaults_of_owned_fields_and_never_creates() -> None:
    admin = two_masters()
    spec = {"consumerGroup": "orders", "maxRetries": 3, "backoff": EXPONENTIAL, "deletionPolicy": "Reset"}
    await _run(admin, _intent(spec))
    admin.broker("broker-b").groups.clear()
    admin.broker("broker-a").groups["orders"]["retryQueueNums"] = 5  # not owned: must stay

    result = (await _run(admin, _intent(spec, Mode.RESET)))["ns/p"]

    stored = admin.broker("broker-a").groups["orders"]
    assert (stored["retryMaxTimes"], stored["retryQueueNums"], stored["groupRetryPolicy"]) == (
        16, 5, {"type": "CUSTOMIZED"})
    assert admin.broker("broker-b").groups == {}
    assert {b.state for b in result.brokers} == {BrokerState.APPLIED}


async def test_observe_reads_but_never_writes() -> None:
    admin = two_masters()
    result = (await _run(admin, _intent({"consumerGroup": "orders", "maxRetries": 3}, Mode.OBSERVE)))["ns/p"]
    assert {b.state for b in result.brokers} == {BrokerState.UNMANAGED}
    assert all(not broker.writes for broker in admin.brokers.values())
    assert result.view.ladders[0].retries == 3


async def test_many_policies_share_one_read_and_one_batched_write_per_broker() -> None:
    admin = two_masters()
    await _run(admin, _intent({"consumerGroup": "a", "maxRetries": 1}, key="ns/a"),
               _intent({"consumerGroup": "b", "maxRetries": 2}, key="ns/b"),
               _intent({"consumerGroup": "c", "maxRetries": 3}, Mode.OBSERVE, key="ns/c"))
    assert admin.broker("broker-a").writes == [["a", "b"]]
    admin.broker("broker-a").groups["b"]["retryMaxTimes"] = 9  # drift on one broker only

    results = await _run(admin, _intent({"consumerGroup": "a", "maxRetries": 1}, key="ns/a"),
                         _intent({"consumerGroup": "b", "maxRetries": 2}, key="ns/b"))

    assert admin.broker("broker-a").writes == [["a", "b"], ["b"]]
    assert admin.broker("broker-b").writes == [["a", "b"]]
    assert results["ns/b"].brokers[0].last_applied == NOW
    assert results["ns/a"].brokers[0].last_applied is None


ODD_POLICY = {"type": "FIBONACCI", "customizedRetryPolicy": {"next": ["1s", 2.5]}, "seed": 1}


async def test_an_odd_group_retry_policy_written_out_of_band_blocks_nothing() -> None:
    admin = two_masters()
    broker_a = admin.broker("broker-a")
    # Written by another tool on one master: an unclaimed group and a claimed one, both with a body no parser likes.
    broker_a.store(default_group_config("stranger", BrokerLine.V5) | {"groupRetryPolicy": ODD_POLICY})
    for group in ("odd", "fixed"):
        broker_a.store(default_group_config(group, BrokerLine.V5) | {"groupRetryPolicy": ODD_POLICY})

    results = await _run(admin, _intent({"consumerGroup": "orders", "maxRetries": 3, "backoff": EXPONENTIAL},
                                        key="ns/orders"),
                         _intent({"consumerGroup": "odd", "maxRetries": 4}, key="ns/odd"),
                         _intent({"consumerGroup": "fixed", "backoff": EXPONENTIAL}, key="ns/fixed"))

    for key in ("ns/orders", "ns/odd", "ns/fixed"):
        assert [(b.name, b.state, b.message) for b in results[key].brokers] == [
            ("broker-a", BrokerState.APPLIED, None), ("broker-b", BrokerState.APPLIED, None)], key
        assert results[key].error is None
    # The unclaimed group is neither read into a policy nor touched; the claimed one keeps its odd body, which
    # this policy does not own, and its policy says so; a policy owning backoff replaces the odd body.
    assert broker_a.groups["stranger"]["groupRetryPolicy"] == ODD_POLICY
    assert all("stranger" not in names for names in broker_a.writes[0])
    odd = broker_a.groups["odd"]
    assert (odd["retryMaxTimes"], odd["groupRetryPolicy"]) == (4, ODD_POLICY)
    assert broker_a.groups["fixed"]["groupRetryPolicy"] == {
        "type": "EXPONENTIAL", "exponentialRetryPolicy": {"initial": 1000, "max": 60000, "multiplier": 2}}
    warned = {key: [w for w in result.view.warnings if w.code is WarningCode.STORED_RETRY_POLICY_ODD]
              for key, result in results.items()}
    assert warned["ns/orders"] == warned["ns/fixed"] == []
    (warning,) = warned["ns/odd"]
    assert "broker-a (groupRetryPolicy.customizedRetryPolicy.next is not" in warning.message
    assert "broker-b" not in warning.message
    assert "set backoff in this policy" in warning.message
    # status.ladders show the broker default for gRPC clients rather than guess at the odd body
    assert results["ns/odd"].view.ladders[1].delays_ms == DEFAULT_CUSTOMIZED_NEXT_MS[:4]


def _with_slaves(version: str = "V4_9_7") -> FakeAdmin:
    """broker-a with a slave, broker-b with two."""
    return FakeAdmin([FakeBroker("broker-a", "127.0.0.1:10911", version),
                      FakeBroker("broker-b", "127.0.0.1:10921", version),
                      FakeBroker("broker-a", "127.0.0.1:10915", version, broker_id=1),
                      FakeBroker("broker-b", "127.0.0.1:10925", version, broker_id=1),
                      FakeBroker("broker-b", "127.0.0.1:10929", version, broker_id=2)])


def _slaves(result: PolicyResult) -> dict[str, list[tuple[int, bool | None]]]:
    return {b.name: [(s.broker_id, s.holds_config) for s in b.slaves] for b in result.brokers}


async def test_writes_only_to_masters_and_reports_each_slave_until_it_has_copied_its_master() -> None:
    admin = _with_slaves()
    intent = _intent({"consumerGroup": "orders", "maxRetries": 3, "retryQueues": 2})

    first = (await _run(admin, intent))["ns/p"]

    assert [(b.name, b.state) for b in first.brokers] == [("broker-a", BrokerState.APPLIED),
                                                          ("broker-b", BrokerState.APPLIED)]
    assert [b.addr for b in admin.brokers.values() if b.writes] == ["127.0.0.1:10911", "127.0.0.1:10921"]
    assert _slaves(first) == {"broker-a": [(1, False)], "broker-b": [(1, False), (2, False)]}
    assert first.brokers[0].slaves[0].message == "lacks the group: a slave copies its master's groups every 10 s"
    assert first.brokers[0].slaves_behind

    admin.brokers["127.0.0.1:10915"].copy_from(admin.brokers["127.0.0.1:10911"])
    admin.brokers["127.0.0.1:10925"].copy_from(admin.brokers["127.0.0.1:10921"])
    second = (await _run(admin, intent))["ns/p"]

    assert _slaves(second) == {"broker-a": [(1, True)], "broker-b": [(1, True), (2, False)]}
    assert not second.brokers[0].slaves_behind
    assert second.brokers[1].slaves_behind
    assert all(not b.writes for b in admin.brokers.values() if b.broker_id)


async def test_a_slave_with_an_older_copy_is_told_by_the_fields_it_lacks() -> None:
    admin = _with_slaves("V5_5_0")
    await _run(admin, _intent({"consumerGroup": "orders", "maxRetries": 3}))
    admin.brokers["127.0.0.1:10915"].copy_from(admin.brokers["127.0.0.1:10911"])

    result = (await _run(admin, _intent({"consumerGroup": "orders", "maxRetries": 5, "retryQueues": 2})))["ns/p"]

    slave = result.brokers[0].slaves[0]
    assert (slave.holds_config, slave.message) == (
        False, "lacks retryMaxTimes, retryQueueNums: a slave copies its master's groups every 10 s")


async def test_an_unreadable_slave_is_not_judged_and_does_not_fail_its_master() -> None:
    admin = _with_slaves()
    admin.brokers["127.0.0.1:10915"].down = True

    result = (await _run(admin, _intent({"consumerGroup": "orders", "maxRetries": 3})))["ns/p"]

    broker_a = result.brokers[0]
    assert broker_a.state is BrokerState.APPLIED
    assert [(s.holds_config, s.message) for s in broker_a.slaves] == [
        (None, "broker-a slave 1 (127.0.0.1:10915) subscription groups: "
               "127.0.0.1:10915: connect failed: ConnectionRefusedError(111)")]
    assert not broker_a.slaves_behind


async def test_slaves_of_an_observed_policy_are_listed_but_not_judged() -> None:
    admin = _with_slaves()

    result = (await _run(admin, _intent({"consumerGroup": "orders", "maxRetries": 3}, Mode.OBSERVE)))["ns/p"]

    assert _slaves(result) == {"broker-a": [(1, None)], "broker-b": [(1, None), (2, None)]}
