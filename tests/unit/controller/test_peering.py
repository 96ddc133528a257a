"""kopf peering: the leadership rule the control loop shares with kopf, the gate, and the command line's wiring."""

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import kopf
import pytest
from click.testing import CliRunner

from rocketmq_retry.cli import main
from rocketmq_retry.controller.peering import RANDOM_PRIORITY_MAX, Peering, PeeringGate, leads
from rocketmq_retry.domain.jsontypes import JsonValue
from tests.unit.controller.loopbed import NOW


def _peer(priority: int | None, seen: timedelta | None = timedelta(0), lifetime: int | None = 60) -> JsonValue:
    """A peer entry as kopf writes it, `seen` before NOW; None leaves a field out, as an older kopf might."""
    entry: dict[str, JsonValue] = {}
    if priority is not None:
        entry["priority"] = priority
    if seen is not None:
        entry["lastseen"] = (NOW - seen).isoformat()
    if lifetime is not None:
        entry["lifetime"] = lifetime
    return entry


@pytest.mark.parametrize(("others", "expected"), [
    ({}, True),
    ({"me": _peer(5)}, True),  # only our own keep-alive
    ({"low": _peer(4)}, True),
    ({"high": _peer(6)}, False),
    ({"same": _peer(5)}, False),  # kopf freezes every peer with the same priority
    ({"high-but-dead": _peer(6, seen=timedelta(seconds=61))}, True),
    ({"high-short-lived": _peer(6, seen=timedelta(seconds=11), lifetime=10)}, True),
    ({"high-never-seen": _peer(6, seen=None)}, False),  # kopf counts a peer without lastseen as alive
    ({"no-priority": _peer(None)}, True),  # kopf's default priority 0 < 5
    ({"gone": None, "low": _peer(1)}, True),  # a peer kopf removed on exit
], ids=["empty", "self", "lower", "higher", "equal", "higher-dead", "short-lifetime", "no-lastseen",
        "default-priority", "removed"])
def test_a_replica_leads_unless_a_live_peer_has_its_priority_or_more(others: dict[str, JsonValue],
                                                                      expected: bool) -> None:
    assert leads({"me": _peer(5), **others}, "me", 5, NOW) is expected


def test_a_missing_peering_object_means_waiting_as_kopf_does() -> None:
    assert leads(None, "me", 5, NOW) is False


class Reader:
    def __init__(self, statuses: Mapping[str | None, Mapping[str, JsonValue] | None]) -> None:
        self.statuses = statuses
        self.reads: list[str | None] = []

    async def peering_status(self, name: str, namespace: str | None) -> Mapping[str, JsonValue] | None:
        assert name == "rro"
        self.reads.append(namespace)
        return self.statuses.get(namespace)


def _alive(priority: int) -> Mapping[str, JsonValue]:
    return {"other": {"priority": priority, "lifetime": 60, "lastseen": datetime.now(UTC).isoformat()}}


async def test_the_gate_needs_the_lead_in_every_namespace_or_in_the_cluster_peering() -> None:
    namespaced = Reader({"a": _alive(1), "b": _alive(9)})
    gate = PeeringGate(Peering("rro", "me", 5), namespaced)
    assert await gate.leads(["a"]) is True
    assert await gate.leads(["a", "b"]) is False
    assert await gate.leads(["c"]) is False  # no KopfPeering there
    assert await gate.leads([]) is True
    clusterwide = Reader({None: _alive(1)})
    assert await PeeringGate(Peering("rro", "me", 5, clusterwide=True), clusterwide).leads(["a", "b"]) is True
    assert clusterwide.reads == [None]


def _run(monkeypatch: pytest.MonkeyPatch, *args: str) -> dict[str, Any]:
    """`operator run` up to kopf.run, whose arguments are returned instead of running an operator."""
    called: dict[str, Any] = {}
    monkeypatch.setattr(kopf, "run", lambda **kwargs: called.update(kwargs))
    monkeypatch.setenv("POD_ID", "rro-7d9c-x2")
    result = CliRunner().invoke(main, ["operator", "run", "--metrics-port", "0", *args])
    assert result.exit_code == 0, result.output
    return called


def test_peering_gives_kopf_the_pod_name_a_random_priority_and_the_lifetime(monkeypatch: pytest.MonkeyPatch) -> None:
    runs = [_run(monkeypatch, "-n", "team-a", "--peering", "rro", "--priority", "random", "--peering-lifetime", "15")
            for _ in range(3)]
    first = runs[0]
    assert (first["standalone"], first["peering_name"], first["identity"]) == (False, "rro", "rro-7d9c-x2")
    assert first["memo"].config.peering == Peering("rro", "rro-7d9c-x2", first["priority"], 15, clusterwide=False)
    priorities = {run["priority"] for run in runs}
    assert len(priorities) == 3  # identical pods, distinct priorities
    assert all(1 <= priority <= RANDOM_PRIORITY_MAX for priority in priorities)

    clusterwide = _run(monkeypatch, "-A", "--peering", "rro", "--priority", "7")
    assert (clusterwide["priority"], clusterwide["memo"].config.peering.clusterwide) == (7, True)
    standalone = _run(monkeypatch, "-n", "team-a")
    assert (standalone["standalone"], standalone["memo"].config.peering) == (True, None)


def test_a_priority_that_is_neither_an_integer_nor_random_is_refused() -> None:
    result = CliRunner().invoke(main, ["operator", "run", "-n", "a", "--peering", "rro", "--priority", "high"])
    assert result.exit_code == 2
    assert "neither an integer nor `random`" in result.output
