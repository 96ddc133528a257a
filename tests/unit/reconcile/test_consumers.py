"""The census of live consumers: every master asked, each client asked once while it stays, failures kept apart."""

from rocketmq_retry.domain.consumers import ClientSettings, ConsumerKind
from rocketmq_retry.reconcile.consumers import Census
from rocketmq_retry.reconcile.reading import Master
from tests.unit.fakes import FakeAdmin, FakeBroker, java_push_consumer, two_masters

ADMIN = two_masters()
MASTERS = [Master(b.name, b.addr) for b in ADMIN.brokers.values()]


def _admin_with(**per_broker: dict[str, dict[str, str] | None]) -> FakeAdmin:
    admin = two_masters()
    for name, clients in per_broker.items():
        admin.broker(name.replace("_", "-")).consumers["orders"] = ("CLUSTERING", clients)
    return admin


async def test_clients_of_every_master_are_counted_once_and_asked_once() -> None:
    admin = _admin_with(broker_a={"c1": java_push_consumer(), "c2": java_push_consumer(5)},
                        broker_b={"c1": java_push_consumer(), "c3": java_push_consumer(orderly=True)})
    census = Census()
    assert census.consumers("orders") is None
    await census.take(admin, MASTERS, ["orders", "idle"], 1.0, limit=10)

    found = census.consumers("orders")
    assert found is not None
    assert [(c.client_id, c.settings) for c in found] == [
        ("c1", ClientSettings(-1, False)), ("c2", ClientSettings(5, False)), ("c3", ClientSettings(-1, True))]
    assert census.consumers("idle") == ()
    calls = sum(b.running_info_calls for b in admin.brokers.values())
    assert calls == 3

    await census.take(admin, MASTERS, ["orders"], 1.0, limit=10)  # nobody new: no client is asked again
    assert sum(b.running_info_calls for b in admin.brokers.values()) == calls


async def test_a_client_that_left_is_forgotten_and_asked_again_when_back() -> None:
    admin = _admin_with(broker_a={"c1": java_push_consumer()})
    census = Census()
    await census.take(admin, MASTERS, ["orders"], 1.0, limit=10)
    del admin.broker("broker-a").consumers["orders"]
    await census.take(admin, MASTERS, ["orders"], 1.0, limit=10)
    assert census.consumers("orders") == ()

    admin.broker("broker-a").consumers["orders"] = ("CLUSTERING", {"c1": java_push_consumer(2)})
    await census.take(admin, MASTERS, ["orders"], 1.0, limit=10)
    found = census.consumers("orders")
    assert found is not None
    assert found[0].settings == ClientSettings(2, False)


async def test_a_client_that_cannot_answer_is_listed_with_why() -> None:
    admin = _admin_with(broker_a={"c1": None})
    census = Census()
    await census.take(admin, MASTERS, ["orders"], 1.0, limit=10)
    found = census.consumers("orders")
    assert found is not None
    [consumer] = found
    assert consumer.kind is ConsumerKind.UNKNOWN
    assert consumer.unanswered is not None
    assert "The Consumer <orders> <c1> not online" in consumer.unanswered


async def test_a_master_down_leaves_the_others_view_and_all_down_keeps_the_last_census() -> None:
    admin = _admin_with(broker_a={"c1": java_push_consumer()}, broker_b={"c2": java_push_consumer()})
    census = Census()
    admin.broker("broker-b").down = True
    await census.take(admin, MASTERS, ["orders"], 1.0, limit=10)
    found = census.consumers("orders")
    assert found is not None
    assert [c.client_id for c in found] == ["c1"]

    admin.broker("broker-a").down = True
    await census.take(admin, MASTERS, ["orders"], 1.0, limit=10)
    assert census.consumers("orders") == found


async def test_the_retry_backlog_is_counted_per_master_and_a_master_that_cannot_tell_is_left_out() -> None:
    admin = two_masters()
    admin.broker("broker-a").retry_offsets = {"orders": [(10, 4), (3, 5)]}  # a committed offset past the end: 0
    census = Census()
    assert census.retry_backlog("orders") is None
    await census.take(admin, MASTERS, ["orders"], 1.0, limit=10)
    assert census.retry_backlog("orders") == {"broker-a": 6, "broker-b": 0}

    admin.broker("broker-b").down = True
    await census.take(admin, MASTERS, ["orders"], 1.0, limit=10)
    assert census.retry_backlog("orders") == {"broker-a": 6}


async def test_a_census_covers_at_most_its_limit_of_groups_those_seen_longest_ago_first() -> None:
    admin = two_masters()
    census = Census()
    groups = ["a", "b", "c", "d", "e"]
    await census.take(admin, MASTERS, groups, 1.0, limit=2)
    assert [group for group in groups if census.consumers(group) is not None] == ["a", "b"]

    admin.broker("broker-a").consumers["a"] = ("CLUSTERING", {"c1": java_push_consumer()})
    await census.take(admin, MASTERS, groups, 1.0, limit=2)
    assert [group for group in groups if census.consumers(group) is not None] == ["a", "b", "c", "d"]
    assert census.consumers("a") == ()  # its turn comes again after the groups never seen
    await census.take(admin, MASTERS, groups, 1.0, limit=2)  # e, then a
    assert census.consumers("e") == ()
    found = census.consumers("a")
    assert found is not None
    assert [consumer.client_id for consumer in found] == ["c1"]


async def test_a_proxys_grpc_clients_follow_the_group_and_are_never_asked() -> None:
    """Only the proxy lists its gRPC clients; a client a master lists too is the master's (asked through it), and a
    remoting client seen only on the proxy is asked through the proxy."""
    proxy = FakeBroker("proxy", "127.0.0.1:8080")
    admin = FakeAdmin([*two_masters().brokers.values(), proxy])
    admin.broker("broker-a").consumers["orders"] = ("CLUSTERING", {"10.0.0.1@4242#77": java_push_consumer(5)})
    proxy.consumers["orders"] = ("CLUSTERING", {"app-7f9c@12@0@k2f8x9ab": None,
                                                "10.0.0.1@4242#77": java_push_consumer(),
                                                "10.0.0.2@99#5": java_push_consumer(2)})
    census = Census()
    await census.take(admin, MASTERS, ["orders"], 1.0, limit=10, proxies=[Master("proxy", proxy.addr)])

    found = {consumer.client_id: consumer for consumer in census.consumers("orders") or ()}
    assert {client_id: consumer.kind for client_id, consumer in found.items()} == {
        "app-7f9c@12@0@k2f8x9ab": ConsumerKind.GRPC, "10.0.0.1@4242#77": ConsumerKind.CONCURRENT,
        "10.0.0.2@99#5": ConsumerKind.CONCURRENT}
    assert found["10.0.0.1@4242#77"].settings == ClientSettings(5, False)  # the master's answer, not the proxy's
    assert found["app-7f9c@12@0@k2f8x9ab"].unanswered is None
    assert proxy.running_info_calls == 1  # the remoting client seen only there

    proxy.down = True
    await census.take(admin, MASTERS, ["orders"], 1.0, limit=10, proxies=[Master("proxy", proxy.addr)])
    assert [consumer.client_id for consumer in census.consumers("orders") or ()] == ["10.0.0.1@4242#77"]
