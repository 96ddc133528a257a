from datetime import UTC, datetime

import pytest

from rocketmq_retry.domain.conditions import MAX_MESSAGE_LENGTH, Outcome, Reason, build_conditions
from rocketmq_retry.domain.jsontypes import JsonObject

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
LATER = datetime(2024, 5, 1, 13, 0, tzinfo=UTC)


def by_type(conditions: list[JsonObject]) -> dict[str, JsonObject]:
    return {str(condition["type"]): condition for condition in conditions}


@pytest.mark.parametrize(
    ("reason", "statuses"),
    [
        (Reason.SYNCED, {"Ready": "True"}),
        (Reason.PROGRESSING, {"Ready": "Unknown", "Reconciling": "True"}),
        (Reason.PARTIALLY_APPLIED, {"Ready": "False", "Reconciling": "True"}),
        (Reason.BROKER_UNREACHABLE, {"Ready": "False", "Reconciling": "True"}),
        (Reason.ACL_SECRET_UNAVAILABLE, {"Ready": "False", "Reconciling": "True"}),
        (Reason.INVALID_SPEC, {"Ready": "False", "Stalled": "True"}),
        (Reason.CONFLICT, {"Ready": "False", "Stalled": "True"}),
        (Reason.PAUSED, {"Ready": "Unknown"}),
        (Reason.UNMANAGED, {"Ready": "Unknown"}),
    ],
)
def test_reasons_map_to_kstatus_conditions(reason: Reason, statuses: dict[str, str]) -> None:
    conditions = build_conditions(Outcome(reason, "m"), None, 3, NOW)
    assert {str(c["type"]): c["status"] for c in conditions} == statuses
    assert all(c["reason"] == str(reason) and c["observedGeneration"] == 3 for c in conditions)
    assert all(c["lastTransitionTime"] == "2024-05-01T12:00:00Z" for c in conditions)


def test_transition_time_is_kept_while_the_status_holds() -> None:
    first = build_conditions(Outcome(Reason.PARTIALLY_APPLIED, "1 of 2"), None, 1, NOW)
    second = by_type(build_conditions(Outcome(Reason.BROKER_UNREACHABLE, "0 of 2"), first, 2, LATER))
    assert second["Ready"]["lastTransitionTime"] == "2024-05-01T12:00:00Z"
    assert second["Ready"]["reason"] == "BrokerUnreachable"
    assert second["Ready"]["observedGeneration"] == 2
    third = by_type(build_conditions(Outcome(Reason.SYNCED, "ok"), list(second.values()), 2, LATER))
    assert third["Ready"]["lastTransitionTime"] == "2024-05-01T13:00:00Z"
    assert "Reconciling" not in third


def test_missing_previous_transition_time_is_replaced() -> None:
    previous: list[JsonObject] = [{"type": "Ready", "status": "True"}]
    (ready,) = build_conditions(Outcome(Reason.SYNCED, "ok"), previous, 1, LATER)
    assert ready["lastTransitionTime"] == "2024-05-01T13:00:00Z"


def test_other_writers_conditions_are_kept_and_ours_replaced() -> None:
    previous: list[JsonObject] = [
        {"type": "Stalled", "status": "True", "reason": "InvalidSpec"},
        {"type": "example.com/Audited", "status": "True", "reason": "Done", "message": "",
         "lastTransitionTime": "2020-01-01T00:00:00Z"},
    ]
    conditions = build_conditions(Outcome(Reason.SYNCED, "ok"), previous, 4, NOW)
    assert [c["type"] for c in conditions] == ["Ready", "example.com/Audited"]
    assert conditions[1] == previous[1]


def test_long_messages_are_cut_to_the_api_limit() -> None:
    (ready, _) = build_conditions(Outcome(Reason.PARTIALLY_APPLIED, "x" * (MAX_MESSAGE_LENGTH + 5)), None, 1, NOW)
    assert len(str(ready["message"])) == MAX_MESSAGE_LENGTH
