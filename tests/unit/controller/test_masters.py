"""The master watch: a master that appears in the name server's view gets its cluster swept at once."""

from collections.abc import Collection

from rocketmq_retry.controller.masters import MasterWatch, appeared
from rocketmq_retry.domain.spec import ClusterRef, parse_cluster
from rocketmq_retry.reconcile.reading import Master
from rocketmq_retry.remoting.acl import Credentials
from tests.unit.controller.loopbed import NAMESRV
from tests.unit.fakes import FakeAdmin, FakeBroker, two_masters

A, B = Master("broker-a", "127.0.0.1:10911"), Master("broker-b", "127.0.0.1:10921")
CLUSTER = parse_cluster(NAMESRV, "spec.cluster")


def test_only_masters_new_since_the_last_look_count_and_the_first_look_sees_no_change() -> None:
    assert appeared(None, frozenset({A, B})) == frozenset()
    assert appeared(frozenset({A, B}), frozenset({A, B})) == frozenset()
    assert appeared(frozenset({A}), frozenset({A, B})) == frozenset({B})
    assert appeared(frozenset({A, B}), frozenset({A})) == frozenset()
    assert appeared(frozenset({A}), frozenset({A, Master("broker-b", "127.0.0.1:10931")})) != frozenset()


class Sweeps:
    def __init__(self) -> None:
        self.swept: list[set[str]] = []

    def __call__(self, keys: Collection[str]) -> None:
        self.swept.append(set(keys))


def watch_of(admin: FakeAdmin, sweeps: Sweeps) -> MasterWatch:
    def admins(cluster: ClusterRef, credentials: Credentials | None) -> FakeAdmin:
        return admin

    return MasterWatch(admins, lambda: [CLUSTER], sweeps, call_timeout=1.0, interval=2.0)


async def test_a_master_that_leaves_and_comes_back_marks_its_cluster_for_a_sweep() -> None:
    admin, sweeps = two_masters(), Sweeps()
    watch = watch_of(admin, sweeps)
    broker_b = admin.brokers.pop(B.addr)

    assert await watch.look_once() == set()  # first look
    admin.namesrv_down = True
    assert await watch.look_once() == set()  # unreadable: skipped, the last view kept
    admin.namesrv_down = False
    admin.brokers[B.addr] = broker_b

    assert await watch.look_once() == {CLUSTER.key}
    assert await watch.look_once() == set()
    admin.brokers[B.addr] = FakeBroker("broker-c", "127.0.0.1:10931")
    assert await watch.look_once() == {CLUSTER.key}  # a broker added to the cluster
