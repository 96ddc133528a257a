"""The retries live consumers really get, by kind of client, and the conditions they imply."""

import pytest

from rocketmq_retry.domain.consumers import (
    ClientSettings,
    ConsumerKind,
    LiveConsumer,
    consumers_view,
    is_grpc_client_id,
    limit_of,
    observations,
    settings_from_properties,
)

LEVELS_MS = (1000,) * 18


def _push(client_id: str, limit: int = -1, *, orderly: bool = False, model: str = "CLUSTERING") -> LiveConsumer:
    """A Java push consumer in a group whose latest heartbeat on the broker was a CLUSTERING one."""
    settings = ClientSettings(limit, orderly, broadcasting=model == "BROADCASTING")
    return LiveConsumer(client_id, "JAVA", 513, "CLUSTERING", "CONSUME_PASSIVELY", settings=settings)


@pytest.mark.parametrize(("consumer", "kind", "retries", "follows_group"), [
    (_push("a"), ConsumerKind.CONCURRENT, 16, False),
    (_push("a", 5), ConsumerKind.CONCURRENT, 5, False),
    (_push("a", 0), ConsumerKind.CONCURRENT, 0, False),
    (_push("a", orderly=True), ConsumerKind.ORDERLY, None, False),
    (_push("a", 4, orderly=True), ConsumerKind.ORDERLY, 4, False),
    (_push("a", 5, model="BROADCASTING"), ConsumerKind.BROADCAST, 0, False),
    (LiveConsumer("a", "PYTHON", 513, "CLUSTERING", "CONSUME_PASSIVELY", grpc=True), ConsumerKind.GRPC, 3, True),
    (LiveConsumer("a", "CPP", 400, "CLUSTERING", "CONSUME_PASSIVELY", unanswered="timeout"), ConsumerKind.UNKNOWN,
     None, False),
    (LiveConsumer("a", "CPP", 400, "BROADCASTING", "CONSUME_PASSIVELY", unanswered="timeout"), ConsumerKind.BROADCAST,
     0, False),
])
def test_each_kind_of_client_gets_its_own_limit(consumer: LiveConsumer, kind: ConsumerKind, retries: int | None,
                                                follows_group: bool) -> None:
    limit = limit_of(consumer, group_retries=3)
    assert (limit.kind, limit.retries, limit.follows_group) == (kind, retries, follows_group)


def test_instances_are_grouped_by_limit_and_summarised() -> None:
    view = consumers_view([_push("c2"), _push("c1"), _push("f", 5), _push("o", orderly=True),
                           _push("b", model="BROADCASTING")], 3, LEVELS_MS)
    lines = [(c.limit.kind, c.limit.retries, c.client_ids) for c in view.classes]
    assert lines == [(ConsumerKind.CONCURRENT, 5, ("f",)), (ConsumerKind.CONCURRENT, 16, ("c1", "c2")),
                     (ConsumerKind.ORDERLY, None, ("o",)), (ConsumerKind.BROADCAST, 0, ("b",))]
    assert view.instances == 5
    summaries = [c.summary for c in view.classes]
    assert summaries[0] == "5 retries: 1s x5; dead-lettered after 5s (the client's maxReconsumeTimes)"
    assert summaries[2] == "retried in place every 1s without limit; never dead-lettered"
    assert summaries[3].startswith("no retries")


def test_effective_retries_differ_names_each_count_and_its_instances() -> None:
    view = consumers_view([_push("a"), _push("b"), _push("f", 5), _push("o", orderly=True),
                           _push("x", model="BROADCASTING")], 3, LEVELS_MS)
    differ, applicable = observations(view)
    assert (differ.type, differ.status, differ.reason) == ("EffectiveRetriesDiffer", "True", "ClientLimits")
    assert "1 instance(s) after 5, 2 instance(s) after 16, 1 instance(s) never (orderly, no limit)" in differ.message
    assert (applicable.type, applicable.status) == ("RetriesNotApplicable", "True")
    assert applicable.message.startswith("1 instance(s) consume in BROADCASTING mode")


def test_clients_that_follow_the_group_do_not_differ() -> None:
    grpc = LiveConsumer("g", "JAVA", 513, "CLUSTERING", "CONSUME_PASSIVELY", grpc=True)
    differ, applicable = observations(consumers_view([_push("a", 3), grpc], 3, LEVELS_MS))
    assert (differ.status, differ.reason) == ("False", "AsGroup")
    assert applicable.status == "False"
    assert observations(None) == ()


@pytest.mark.parametrize(("properties", "expected"), [
    ({"maxReconsumeTimes": "-1", "PROP_CONSUMEORDERLY": "false", "suspendCurrentQueueTimeMillis": "1000"},
     ClientSettings(-1, False, 1000)),
    ({"maxReconsumeTimes": "5", "PROP_CONSUMEORDERLY": "true", "suspendCurrentQueueTimeMillis": "250"},
     ClientSettings(5, True, 250)),
    ({"maxReconsumeTimes": "7", "PROP_CONSUMEORDERLY": "false"}, ClientSettings(7, False, 1000)),
    ({"maxReconsumeTimes": "-1", "PROP_CONSUMEORDERLY": "false", "messageModel": "BROADCASTING"},
     ClientSettings(-1, False, 1000, broadcasting=True)),
    ({"PROP_CONSUMEORDERLY": "false"}, None),  # a lite pull consumer has no maxReconsumeTimes
    ({"maxReconsumeTimes": "many", "PROP_CONSUMEORDERLY": "false"}, None),
])
def test_settings_come_from_the_java_clients_running_info(properties: dict[str, str],
                                                          expected: ClientSettings | None) -> None:
    assert settings_from_properties(properties) == expected


@pytest.mark.parametrize(("client_id", "grpc"), [
    ("app-7f9c-x2@12@0@k2f8x9ab", True),  # a gRPC SDK's host@pid@index@base36
    ("10.0.0.1@4242#3105238478734", False),  # remoting, default instance name pid#nanoTime
    ("10.0.0.1@fleet", False),  # remoting, a named instance
    ("10.0.0.1@fleet@unit", False),  # remoting with a unit name
    ("10.0.0.1@orders@7@unit", False),  # four parts, but not pid and index
])
def test_grpc_clients_are_told_by_their_sdks_client_id(client_id: str, grpc: bool) -> None:
    assert is_grpc_client_id(client_id) is grpc
