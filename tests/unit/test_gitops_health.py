"""Argo CD's verdict (examples/argocd/health.lua in Lua 5.1) and Flux's (kstatus) on our objects.

The fixtures are objects a real operator wrote, recorded by the e2e tests (ROCKETMQ_RETRY_RECORD_GITOPS=1); the
cases derived from them change one thing each, named in the case.
"""

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from rocketmq_retry.domain.conditions import RETRYABLE_REASONS, TERMINAL_REASONS, Outcome, Reason, build_conditions
from tests.gitops import EXPECTED, FIXTURES, argocd_health, kstatus, verdicts

RECORDED = sorted(FIXTURES.glob("retrypolicy-*.json"))


def _load(moment: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FIXTURES / f"retrypolicy-{moment}.json").read_text())
    return loaded


def test_every_moment_was_recorded_from_a_real_operator() -> None:
    assert {path.stem.removeprefix("retrypolicy-") for path in RECORDED} == set(EXPECTED)


@pytest.mark.parametrize("path", RECORDED, ids=lambda path: path.stem)
def test_recorded_objects_get_the_expected_verdicts(path: Path) -> None:
    obj = json.loads(path.read_text())
    assert verdicts(obj) == EXPECTED[path.stem.removeprefix("retrypolicy-")]


def test_the_argocd_message_carries_the_reason_and_the_operators_words() -> None:
    conflict = _load("conflict")
    assert argocd_health(conflict).message.startswith("Conflict: ")
    assert f"{conflict['metadata']['namespace']}/first" in argocd_health(conflict).message
    assert argocd_health(_load("partially-applied")).message.startswith("PartiallyApplied: ")


def test_a_spec_change_the_operator_has_not_seen_is_progressing_for_both() -> None:
    edited = _load("ready")
    edited["metadata"]["generation"] += 1
    assert verdicts(edited) == ("Progressing", "InProgress")
    assert "generation" in argocd_health(edited).message


def test_a_policy_being_deleted_is_progressing_in_argocd_and_terminating_in_kstatus() -> None:
    deleting = _load("ready")
    deleting["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert verdicts(deleting) == ("Progressing", "Terminating")


def _with_ready(base: dict[str, Any], reason: Reason) -> dict[str, Any]:
    """`base` with the conditions the domain writes for `reason`."""
    obj = copy.deepcopy(base)
    generation = obj["metadata"]["generation"]
    obj["status"]["conditions"] = build_conditions(Outcome(reason, f"because {reason}"), [], generation,
                                                   datetime.now(UTC))
    return obj


@pytest.mark.parametrize("reason", list(Reason), ids=str)
def test_every_ready_reason_of_the_domain_has_a_verdict_in_both_tools(reason: Reason) -> None:
    expected = {Reason.SYNCED: ("Healthy", "Current"), Reason.PAUSED: ("Suspended", "InProgress"),
                Reason.UNMANAGED: ("Suspended", "InProgress")}
    if reason in TERMINAL_REASONS:
        expected[reason] = ("Degraded", "Failed")
    if reason in RETRYABLE_REASONS:
        expected[reason] = ("Progressing", "InProgress")
    assert verdicts(_with_ready(_load("ready"), reason)) == expected[reason]


@pytest.mark.parametrize("reason", sorted(TERMINAL_REASONS), ids=str)
def test_a_terminal_ready_false_is_degraded_even_without_stalled(reason: Reason) -> None:
    obj = _with_ready(_load("ready"), reason)
    obj["status"]["conditions"] = [c for c in obj["status"]["conditions"] if c["type"] != "Stalled"]
    assert argocd_health(obj).status == "Degraded"


def _dead_letter_queue(backlog: str) -> dict[str, Any]:
    """The recorded Ready policy as a DeadLetterQueue with a BacklogHigh condition (no DLQ operator runs yet)."""
    obj = _load("ready")
    obj["kind"] = "DeadLetterQueue"
    obj["status"]["conditions"].append({"type": "BacklogHigh", "status": backlog, "reason": "AboveThreshold",
                                        "message": "1200 dead letters pending, alertThreshold 1000",
                                        "observedGeneration": obj["metadata"]["generation"],
                                        "lastTransitionTime": "2026-01-01T00:00:00Z"})
    return obj


def test_a_dead_letter_backlog_above_its_threshold_is_degraded_in_argocd_only() -> None:
    high = _dead_letter_queue("True")
    assert verdicts(high) == ("Degraded", "Current")  # kstatus knows only Ready, Reconciling and Stalled
    assert argocd_health(high).message == "AboveThreshold: 1200 dead letters pending, alertThreshold 1000"
    assert verdicts(_dead_letter_queue("False")) == ("Healthy", "Current")


def test_kstatus_mirror_follows_the_first_abnormal_condition_like_cli_utils() -> None:
    obj = _load("conflict")
    obj["status"]["conditions"].insert(0, {"type": "Reconciling", "status": "True", "reason": "Progressing",
                                           "message": "first"})
    assert kstatus(obj).status == "InProgress"  # cli-utils returns on the first of Reconciling/Stalled it meets
