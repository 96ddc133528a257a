"""In-cluster chaos, pure parts: the topology read from a name server, pod faults behind the rules, the way out."""

import base64
import io
import json
import tarfile
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from click.testing import CliRunner

from rocketmq_chaos import incluster
from rocketmq_chaos.incluster import (
    REPORT_PREFIX,
    VERDICT_PREFIX,
    group_ladder,
    report_log_lines,
    shared_retry_max_times,
)
from rocketmq_chaos.injectors import FaultNotPossible, TargetNotAllowed
from rocketmq_chaos.journal import Fault, Journal, Receive
from rocketmq_chaos.pods import ALLOW_ANNOTATION, Incarnation, PodInjector, is_replacement, parse_selector
from rocketmq_chaos.report import write_report
from rocketmq_chaos.topology import ClusterTopology, Master, discover_topology, masters_of, shared_delay_levels
from rocketmq_chaos.verdicts import judge_delivery
from rocketmq_retry.cli import main
from rocketmq_retry.remoting import ClusterInfo, ConnectionFailed, SubscriptionGroupConfig

from .journals import delivered, send

KIND_LEVELS = "1s 1s 1s 2s 3s 4s 5s 6s 7s 8s 9s 10s 11s 12s 13s 14s 15s 16s"
SELECTOR = "app=rocketmq,role=broker"


def cluster_info_body(masters: dict[str, str], *, slaves: dict[str, str] | None = None,
                      cluster: str = "kind") -> dict[str, Any]:
    """What GET_BROKER_CLUSTER_INFO answers: broker name -> {brokerId: addr}, cluster -> broker names."""
    table = {name: {"brokerName": name, "cluster": cluster, "brokerAddrs": {"0": addr}}
             for name, addr in masters.items()}
    table |= {name: {"brokerName": name, "cluster": cluster, "brokerAddrs": {"1": addr}}
              for name, addr in (slaves or {}).items()}
    return {"brokerAddrTable": table, "clusterAddrTable": {cluster: sorted(table)}}


# ---- topology ------------------------------------------------------------------------------------------------


def test_the_masters_are_the_broker_names_with_a_master_address_sorted() -> None:
    info = ClusterInfo.from_json(cluster_info_body({"broker-b": "10.0.0.2:10911", "broker-a": "10.0.0.1:10911"},
                                                   slaves={"broker-c": "10.0.0.3:10911"}))
    assert masters_of(info) == [Master("broker-a", "10.0.0.1:10911"), Master("broker-b", "10.0.0.2:10911")]
    assert masters_of(info, "kind") == masters_of(info)
    assert masters_of(info, "another-cluster") == []


def test_the_brokers_must_share_one_delay_level_setting() -> None:
    assert shared_delay_levels({"broker-a": KIND_LEVELS, "broker-b": KIND_LEVELS}) == KIND_LEVELS
    with pytest.raises(ValueError, match="do not share one messageDelayLevel"):
        shared_delay_levels({"broker-a": KIND_LEVELS, "broker-b": "1s 5s"})
    with pytest.raises(ValueError, match="do not share one messageDelayLevel"):
        shared_delay_levels({"broker-a": None})


def test_a_replaced_broker_keeps_its_name_and_place_with_its_new_address() -> None:
    topology = ClusterTopology("ns:9876", KIND_LEVELS, [Master("broker-a", "10.0.0.1:10911"),
                                                        Master("broker-b", "10.0.0.2:10911")])
    topology.moved("broker-b", "10.0.0.9:10911")
    assert topology.brokers == [Master("broker-a", "10.0.0.1:10911"), Master("broker-b", "10.0.0.9:10911")]
    assert topology.broker("broker-b").addr == "10.0.0.9:10911"
    with pytest.raises(KeyError, match="broker-x"):
        topology.moved("broker-x", "10.0.0.7:10911")


class FakeNameServer:
    """A name server and its brokers behind the admin calls the in-cluster code makes.

    `registered`: broker name -> the master address the name server hands out; `alive`: address -> the boot time of
    the broker process answering there (absent: nothing answers). `on_poll(n)` runs before the n-th cluster_info.
    """

    def __init__(self, registered: dict[str, str], alive: dict[str, str]) -> None:
        self.namesrv_addrs = ["rocketmq-namesrv.rocketmq:9876"]
        self.registered = registered
        self.alive = alive
        self.polls = 0
        self.on_poll: Callable[[int], None] = lambda _: None
        self.delay_levels = dict.fromkeys(alive, KIND_LEVELS)
        self.groups: dict[str, dict[str, SubscriptionGroupConfig]] = {}

    async def cluster_info(self) -> ClusterInfo:
        self.polls += 1
        self.on_poll(self.polls)
        return ClusterInfo.from_json(cluster_info_body(self.registered))

    def _reach(self, addr: str) -> None:
        if addr not in self.alive:
            raise ConnectionFailed(addr, "connect failed: OSError(113, 'No route to host')")

    async def broker_runtime_info(self, addr: str) -> dict[str, str]:
        self._reach(addr)
        return {"bootTimestamp": self.alive[addr], "brokerVersionDesc": "V5_5_0"}

    async def get_broker_config(self, addr: str) -> dict[str, str]:
        self._reach(addr)
        return {"messageDelayLevel": self.delay_levels[addr], "brokerClusterName": "kind"}

    async def get_subscription_group(self, addr: str, name: str) -> SubscriptionGroupConfig | None:
        self._reach(addr)
        return self.groups.get(addr, {}).get(name)


def two_brokers() -> FakeNameServer:
    return FakeNameServer({"broker-a": "10.0.0.1:10911", "broker-b": "10.0.0.2:10911"},
                          {"10.0.0.1:10911": "1000", "10.0.0.2:10911": "2000"})


async def test_the_topology_is_read_from_the_name_server_and_the_brokers_config() -> None:
    namesrv = two_brokers()
    topology = await discover_topology(namesrv)  # type: ignore[arg-type]
    assert topology == ClusterTopology("rocketmq-namesrv.rocketmq:9876", KIND_LEVELS,
                                       [Master("broker-a", "10.0.0.1:10911"), Master("broker-b", "10.0.0.2:10911")])
    namesrv.delay_levels["10.0.0.2:10911"] = "1s 5s 10s"
    with pytest.raises(ValueError, match="do not share"):
        await discover_topology(namesrv)  # type: ignore[arg-type]
    given = await discover_topology(namesrv, delay_levels="1s 2s")  # type: ignore[arg-type]
    assert given.delay_levels == "1s 2s"
    with pytest.raises(ValueError, match="knows no master broker of cluster 'other'"):
        await discover_topology(namesrv, cluster="other")  # type: ignore[arg-type]


async def test_the_ladder_of_a_group_is_the_brokers_levels_for_its_retry_max_times() -> None:
    namesrv = two_brokers()
    topology = await discover_topology(namesrv)  # type: ignore[arg-type]
    namesrv.groups = {addr: {"orders": SubscriptionGroupConfig("orders", retry_max_times=3)} for addr in namesrv.alive}
    assert await group_ladder(namesrv, topology, "orders") == (1000, 2000, 3000)  # type: ignore[arg-type]
    assert await group_ladder(namesrv, topology, None) == (1000, 2000, 3000)  # type: ignore[arg-type]
    namesrv.groups["10.0.0.2:10911"] = {}
    with pytest.raises(ValueError, match="group orders is not on broker-b: apply its RetryPolicy first"):
        await group_ladder(namesrv, topology, "orders")  # type: ignore[arg-type]


def test_the_masters_must_agree_on_retry_max_times() -> None:
    assert shared_retry_max_times("orders", {"broker-a": 5, "broker-b": 5}) == 5
    with pytest.raises(ValueError, match="different retryMaxTimes"):
        shared_retry_max_times("orders", {"broker-a": 5, "broker-b": 3})


# ---- pod faults ----------------------------------------------------------------------------------------------


class FakeCore:
    """The CoreV1Api calls PodKiller makes, over pods in memory; `deleted` records every deletion."""

    def __init__(self, annotations: dict[str, str] | None, pods: dict[str, dict[str, str]],
                 on_delete: Callable[[str], object] = lambda _: None) -> None:
        self.annotations = annotations
        self.pods = pods
        self.deleted: list[tuple[str, str, int]] = []
        self.on_delete = on_delete

    def read_namespace(self, name: str) -> Any:
        return SimpleNamespace(metadata=SimpleNamespace(annotations=self.annotations))

    def list_namespaced_pod(self, namespace: str, *, label_selector: str) -> Any:
        wanted = parse_selector(label_selector)
        return SimpleNamespace(items=[
            SimpleNamespace(metadata=SimpleNamespace(name=name, labels=labels, deletion_timestamp=None))
            for name, labels in self.pods.items() if all(labels.get(k) == v for k, v in wanted.items())])

    def delete_namespaced_pod(self, name: str, namespace: str, *, grace_period_seconds: int) -> None:
        self.deleted.append((namespace, name, grace_period_seconds))
        self.on_delete(name)


def broker_pods() -> dict[str, dict[str, str]]:
    return {f"broker-{b}-0": {"app": "rocketmq", "role": "broker", "broker": f"broker-{b}"} for b in "ab"}


def injector(core: FakeCore, namesrv: FakeNameServer, topology: ClusterTopology, journal: Journal,
             **options: Any) -> PodInjector:
    return PodInjector(core, namesrv, topology, journal, namespace="rocketmq", selector=SELECTOR, poll_interval=0,
                       **options)


async def test_a_namespace_not_opted_in_is_refused_and_nothing_is_deleted() -> None:
    namesrv = two_brokers()
    topology = await discover_topology(namesrv)  # type: ignore[arg-type]
    for annotations in (None, {ALLOW_ANNOTATION: "yes"}, {"other": "allowed"}):
        core, journal = FakeCore(annotations, broker_pods()), Journal()
        async with injector(core, namesrv, topology, journal) as pods:
            with pytest.raises(TargetNotAllowed, match=f"not annotated {ALLOW_ANNOTATION}=allowed"):
                await pods.kill("broker-b")
        assert (core.deleted, journal.events) == ([], [])


async def test_only_the_allowed_brokers_can_be_hurt_and_pods_cannot_be_paused() -> None:
    namesrv = two_brokers()
    topology = await discover_topology(namesrv)  # type: ignore[arg-type]
    core = FakeCore({ALLOW_ANNOTATION: "allowed"}, broker_pods())
    async with injector(core, namesrv, topology, Journal(), allowed={"broker-b"}) as pods:
        with pytest.raises(TargetNotAllowed, match="'broker-a' is not an allowed target"):
            await pods.kill("broker-a")
        with pytest.raises(FaultNotPossible, match="cannot be paused"):
            await pods.pause("broker-b")
    assert core.deleted == []
    with pytest.raises(ValueError, match="key=value"):
        PodInjector(core, namesrv, topology, Journal(), namespace="rocketmq", selector="app")


async def test_a_killed_broker_is_back_only_when_a_new_process_registers_its_name() -> None:
    """The old pod answers a moment after the delete, the name server hands out its dead address for a while, then
    the new pod registers at a new address: only that counts, and the topology follows it."""
    namesrv = two_brokers()
    topology = await discover_topology(namesrv)  # type: ignore[arg-type]

    def name_server_catches_up(poll: int) -> None:
        if poll == 3:  # kubelet killed the old process; the name server still has its address
            del namesrv.alive["10.0.0.2:10911"]
        if poll == 6:  # the replacement pod booted and registered
            namesrv.alive["10.0.0.9:10911"] = "3000"
            namesrv.registered["broker-b"] = "10.0.0.9:10911"

    namesrv.on_poll = name_server_catches_up
    core, journal = FakeCore({ALLOW_ANNOTATION: "allowed"}, broker_pods()), Journal()
    async with injector(core, namesrv, topology, journal) as pods:
        await pods.kill("broker-b")
        assert core.deleted == [("rocketmq", "broker-b-0", 0)]  # broker-a's pod untouched, no grace
        await pods.restart("broker-b")
    assert namesrv.polls == 6
    assert topology.broker("broker-b").addr == "10.0.0.9:10911"
    assert topology.broker("broker-a").addr == "10.0.0.1:10911"
    faults = journal.of(Fault)
    assert [(f.action, f.target) for f in faults] == [("kill", "rocketmq/broker-b-0"), ("restart", "broker-b")]
    assert faults[0].t <= faults[1].t


async def test_a_broker_that_never_comes_back_times_out_naming_it() -> None:
    namesrv = two_brokers()
    topology = await discover_topology(namesrv)  # type: ignore[arg-type]
    core = FakeCore({ALLOW_ANNOTATION: "allowed"}, broker_pods(),
                    on_delete=lambda _: namesrv.alive.pop("10.0.0.2:10911"))
    journal = Journal()
    async with injector(core, namesrv, topology, journal, recovery_timeout=0.05) as pods:
        await pods.kill("broker-b")
        with pytest.raises(TimeoutError, match="broker broker-b was not registered again by a new broker within"):
            await pods.restart("broker-b")
    assert topology.broker("broker-b").addr == "10.0.0.2:10911"
    assert [f.action for f in journal.of(Fault)] == ["kill"]


async def test_a_kill_that_matches_no_pod_says_so() -> None:
    namesrv = two_brokers()
    topology = await discover_topology(namesrv)  # type: ignore[arg-type]
    core = FakeCore({ALLOW_ANNOTATION: "allowed"}, {"broker-b-0": {"app": "rocketmq", "role": "broker"}})
    async with injector(core, namesrv, topology, Journal()) as pods:
        with pytest.raises(RuntimeError, match="matches app=rocketmq,role=broker,broker=broker-b"):
            await pods.kill("broker-b")


def test_a_replacement_is_a_new_address_or_a_new_boot() -> None:
    before = Incarnation("10.0.0.2:10911", "2000")
    assert is_replacement(before, Incarnation("10.0.0.9:10911", "2000"))
    assert is_replacement(before, Incarnation("10.0.0.2:10911", "3000"))  # the new pod got the old IP
    assert not is_replacement(before, Incarnation("10.0.0.2:10911", "2000"))
    assert not is_replacement(Incarnation("10.0.0.2:10911", None), Incarnation("10.0.0.2:10911", "3000"))


# ---- judging a store that did not survive --------------------------------------------------------------------


def test_what_the_victim_stored_before_it_came_back_empty_is_counted_apart_not_lost() -> None:
    journal = Journal([
        send(1.0, "on-b-before", "broker-b"), send(2.0, "on-a", "broker-a"), Fault(3.0, "kill", "rocketmq/broker-b-0"),
        send(4.0, "on-a-failed-over", "broker-a", failed=("broker-b",)), Fault(10.0, "restart", "broker-b"),
        send(11.0, "on-b-after", "broker-b"), *delivered("on-a", "on-a-failed-over")])
    kept = judge_delivery(journal)
    assert kept.lost == ("on-b-after", "on-b-before")

    emptied = judge_delivery(journal, store_lost_by="broker-b")
    assert emptied.lost_with_store == ("on-b-before",)
    assert emptied.lost == ("on-b-after",)  # stored by the new broker: it must arrive
    assert not emptied.passed

    journal.record(delivered("on-b-after")[0])
    assert judge_delivery(journal, store_lost_by="broker-b").passed
    journal.events = [e for e in journal.events if not (isinstance(e, Receive) and e.msg_id == "on-a")]
    assert judge_delivery(journal, store_lost_by="broker-b").lost == ("on-a",)  # the survivor's losses count


# ---- the way out of a Job: its log -------------------------------------------------------------------------


def test_the_report_leaves_through_two_log_lines(tmp_path: Path) -> None:
    journal = Journal([send(1.0, "m1", "broker-a"), *delivered("m1")])
    report = write_report(tmp_path / "report", journal, {"broker-pod-kill": judge_delivery(journal)})
    archive_line, verdict_line = report_log_lines(report)

    assert verdict_line.startswith(VERDICT_PREFIX)
    assert "\n" not in verdict_line
    assert json.loads(verdict_line.removeprefix(VERDICT_PREFIX)) == json.loads(report.verdict.read_text())
    archive = base64.b64decode(archive_line.removeprefix(REPORT_PREFIX))
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        assert sorted(tar.getnames()) == ["journal.jsonl", "send-latency.png", "verdict.json"]
        verdict_file = tar.extractfile("verdict.json")
        assert verdict_file is not None
        assert verdict_file.read() == report.verdict.read_bytes()


def _in_cluster(args: list[str], tmp_path: Path) -> Any:
    return CliRunner().invoke(main, ["chaos", "in-cluster", *args, "--namesrv=ns:9876", "--namespace=rocketmq",
                                     f"--selector={SELECTOR}", f"--report-dir={tmp_path / 'report'}"])


@pytest.mark.parametrize("acknowledged", [True, False])
def test_the_verb_prints_the_verdict_last_and_exits_by_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          acknowledged: bool) -> None:
    seen: dict[str, Any] = {}

    def run(experiment: str, where: incluster.InCluster, report_dir: Path, **options: Any) -> Any:
        seen.update(experiment=experiment, where=where, **options)
        journal = Journal([send(1.0, "m1", "broker-a"), *(delivered("m1") if acknowledged else [])])
        verdicts = {experiment: judge_delivery(journal)}
        return write_report(report_dir, journal, verdicts), verdicts

    monkeypatch.setattr(incluster, "run_in_cluster", run)
    result = _in_cluster(["broker-pod-kill", "--rate=50", "--victim=broker-a"], tmp_path)

    assert result.exit_code == (0 if acknowledged else 1), result.output
    lines = result.output.splitlines()
    assert lines[-1].startswith(VERDICT_PREFIX)
    assert json.loads(lines[-1].removeprefix(VERDICT_PREFIX))["passed"] is acknowledged
    assert lines[-2].startswith(REPORT_PREFIX)
    assert "Chaos verdicts" in result.output
    assert (seen["load"].rate, seen["load"].victim) == (50, "broker-a")
    assert seen["where"] == incluster.InCluster("ns:9876", "rocketmq", SELECTOR)
    assert (tmp_path / "report" / "verdict.json").is_file()


def test_the_verb_refuses_unknown_experiments_and_malformed_ladders(tmp_path: Path) -> None:
    unknown = _in_cluster(["broker-pause"], tmp_path)
    assert unknown.exit_code == 2
    assert "choose one of broker-pod-kill, broker-under-load, retry-ladder" in unknown.output
    malformed = _in_cluster(["retry-ladder", "--expected-delays-ms=1s,2s"], tmp_path)
    assert malformed.exit_code == 2
    assert "not a comma-separated list of milliseconds" in malformed.output
