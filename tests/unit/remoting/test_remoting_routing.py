"""Queue lists from routes and the Java producer's queue choice, including latency fault avoidance."""

import random

import pytest

from rocketmq_retry.remoting.codes import Perm
from rocketmq_retry.remoting.errors import NoRoute
from rocketmq_retry.remoting.models import BrokerData, QueueData, TopicRoute
from rocketmq_retry.remoting.routing import FaultTable, MessageQueue, PublishInfo, QueueSelector, readable_queues

RW = int(Perm.READ | Perm.WRITE)


def _route(*queues: tuple[str, int, int], without_master: tuple[str, ...] = ()) -> TopicRoute:
    brokers = tuple(BrokerData(name, "c", {} if name in without_master else {0: f"127.0.0.1:{10911 + i}"})
                    for i, (name, _, _) in enumerate(queues))
    return TopicRoute(brokers, tuple(QueueData(name, count, count, perm, 0) for name, count, perm in queues))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_publish_info_lists_writable_queues_of_brokers_with_a_master_sorted_by_broker() -> None:
    route = _route(("b", 2, RW), ("a", 1, RW), ("ro", 2, int(Perm.READ)), ("gone", 2, RW), without_master=("gone",))
    info = PublishInfo.from_route("T", route)
    assert info.queues == (MessageQueue("T", "a", 0), MessageQueue("T", "b", 0), MessageQueue("T", "b", 1))
    assert set(info.masters) == {"a", "b", "ro"}
    assert [q.broker_name for q in readable_queues("T", route)] == ["a", "b", "b", "gone", "gone", "ro", "ro"]


def test_round_robin_covers_every_queue_and_never_repeats_the_last_broker_when_another_exists() -> None:
    info = PublishInfo.from_route("T", _route(("a", 2, RW), ("b", 2, RW)))
    selector = QueueSelector(FaultTable(Clock()), latency_fault_enabled=False, rng=random.Random(7))
    assert {selector.select(info, None) for _ in range(4)} == set(info.queues)
    for _ in range(20):
        assert selector.select(info, "a").broker_name == "b"


def test_a_single_broker_is_chosen_even_when_it_was_the_last_one() -> None:
    info = PublishInfo.from_route("T", _route(("a", 1, RW)))
    for enabled in (False, True):
        assert QueueSelector(FaultTable(), latency_fault_enabled=enabled).select(info, "a").broker_name == "a"


@pytest.mark.parametrize(("latency", "unavailable_for"), [(0.04, 0.0), (0.6, 2.0), (2.0, 5.0), (16.0, 30.0)])
def test_slow_answers_bench_a_broker_for_the_java_durations(latency: float, unavailable_for: float) -> None:
    clock = Clock()
    faults = FaultTable(clock)
    faults.update("a", latency, isolate=False, reachable=True)
    assert faults.available("a") is (unavailable_for == 0.0)
    clock.now += unavailable_for
    assert faults.available("a")


def test_failed_broker_is_avoided_for_ten_seconds_when_fault_avoidance_is_on() -> None:
    clock = Clock()
    info = PublishInfo.from_route("T", _route(("a", 2, RW), ("b", 2, RW)))
    selector = QueueSelector(FaultTable(clock), latency_fault_enabled=True, rng=random.Random(1))
    selector.faults.update("a", 0.001, isolate=True, reachable=False)
    assert {selector.select(info, None).broker_name for _ in range(10)} == {"b"}
    clock.now += 10.0
    assert {selector.select(info, None).broker_name for _ in range(10)} == {"a", "b"}


def test_without_fault_avoidance_a_failed_broker_keeps_its_turn() -> None:
    info = PublishInfo.from_route("T", _route(("a", 1, RW), ("b", 1, RW)))
    selector = QueueSelector(FaultTable(Clock()), latency_fault_enabled=False)
    selector.faults.update("a", 0.001, isolate=True, reachable=False)
    assert {selector.select(info, None).broker_name for _ in range(4)} == {"a", "b"}


def test_all_brokers_benched_still_yields_a_queue() -> None:
    info = PublishInfo.from_route("T", _route(("a", 1, RW), ("b", 1, RW)))
    selector = QueueSelector(FaultTable(Clock()), latency_fault_enabled=True)
    for name in "ab":
        selector.faults.update(name, 0.001, isolate=True, reachable=False)
    assert selector.select(info, "a") in info.queues


def test_a_topic_without_writable_queues_is_a_named_error() -> None:
    info = PublishInfo.from_route("T", _route(("a", 1, int(Perm.READ))))
    with pytest.raises(NoRoute, match="topic T has no writable queue"):
        QueueSelector(FaultTable(), latency_fault_enabled=False).select(info, None)
