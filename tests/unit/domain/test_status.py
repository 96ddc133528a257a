from dataclasses import replace
from datetime import UTC, datetime, timedelta

from rocketmq_retry.domain.conditions import Outcome, Reason
from rocketmq_retry.domain.ladder import ClientProtocol, Ladder, LadderSource
from rocketmq_retry.domain.management import MANAGED_ANNOTATION, PAUSE_ANNOTATION, Management, management
from rocketmq_retry.domain.status import (
    BrokerState,
    BrokerStatus,
    SlaveStatus,
    apply_outcome,
    ladder_status,
    masters_summary,
    slaves_catching_up,
)

APPLIED = BrokerStatus("a", BrokerState.APPLIED)
FAILED = BrokerStatus("b", BrokerState.FAILED, message="connect timed out")
PENDING = BrokerStatus("c", BrokerState.PENDING)


def test_broker_status_json_omits_unknowns() -> None:
    assert FAILED.to_json() == {"name": "b", "state": "Failed", "message": "connect timed out"}
    full = BrokerStatus("a", BrokerState.APPLIED, "10.0.0.1:10911", "V5_5_0", None,
                        datetime(2024, 5, 1, tzinfo=UTC))
    assert full.to_json() == {"name": "a", "state": "Applied", "address": "10.0.0.1:10911", "version": "V5_5_0",
                              "lastAppliedTime": "2024-05-01T00:00:00Z"}


def test_masters_summary() -> None:
    assert masters_summary([APPLIED, FAILED, PENDING]) == {"syncedMasters": 1, "totalMasters": 3, "synced": "1/3"}
    assert masters_summary([]) == {"syncedMasters": 0, "totalMasters": 0, "synced": "0/0"}


def test_apply_outcome() -> None:
    assert apply_outcome([APPLIED, APPLIED]) == Outcome(Reason.SYNCED, "applied on all 2 master brokers")
    assert apply_outcome([APPLIED, FAILED]) == Outcome(
        Reason.PARTIALLY_APPLIED, "applied on 1 of 2 master brokers; b: connect timed out")
    assert apply_outcome([FAILED, BrokerStatus("d", BrokerState.FAILED)]) == Outcome(
        Reason.BROKER_UNREACHABLE, "no master broker accepted the config: b: connect timed out; d: failed")
    assert apply_outcome([APPLIED, PENDING]).reason is Reason.PROGRESSING
    assert apply_outcome([]).reason is Reason.BROKER_UNREACHABLE


def test_ladder_status_uses_the_crd_field_names() -> None:
    ladder = Ladder(ClientProtocol.GRPC, LadderSource.GROUP_RETRY_POLICY, (1_000, 5_000), 10_000)
    assert ladder_status(ladder) == {
        "client": "gRPC", "source": "GroupRetryPolicy", "retries": 2, "delaysMillis": [1_000, 5_000],
        "finalWaitMillis": 10_000, "totalMillisToDeadLetter": 16_000, "summary": ladder.summary,
    }


def test_management_annotations() -> None:
    assert management(None) is Management.MANAGED
    assert management({MANAGED_ANNOTATION: "true", PAUSE_ANNOTATION: "false"}) is Management.MANAGED
    assert management({PAUSE_ANNOTATION: " True"}) is Management.PAUSED
    assert management({MANAGED_ANNOTATION: "FALSE", PAUSE_ANNOTATION: "true"}) is Management.UNMANAGED
    assert management({MANAGED_ANNOTATION: "no"}) is Management.MANAGED  # only an explicit "false" unmanages


def test_a_broker_lists_its_slaves_in_status_with_what_was_judged() -> None:
    broker = BrokerStatus("broker-a", BrokerState.APPLIED, "127.0.0.1:10911", slaves=(
        SlaveStatus(1, "127.0.0.1:10915", True), SlaveStatus(2, "127.0.0.1:10919", None, "connect failed")))

    assert broker.to_json()["slaves"] == [
        {"brokerId": 1, "address": "127.0.0.1:10915", "holdsConfig": True},
        {"brokerId": 2, "address": "127.0.0.1:10919", "message": "connect failed"}]
    assert "slaves" not in BrokerStatus("broker-b", BrokerState.APPLIED).to_json()


def test_slaves_are_caught_up_with_only_while_a_write_is_recent() -> None:
    written = datetime(2026, 1, 1, tzinfo=UTC)
    behind = BrokerStatus("broker-a", BrokerState.APPLIED, last_applied=written,
                          slaves=(SlaveStatus(1, "127.0.0.1:10915", False),))
    holding = replace(behind, slaves=(SlaveStatus(1, "127.0.0.1:10915", True),))
    failed = replace(behind, state=BrokerState.FAILED)

    assert slaves_catching_up([holding, behind], written + timedelta(seconds=29), 30.0)
    assert not slaves_catching_up([behind], written + timedelta(seconds=30), 30.0)
    assert not slaves_catching_up([holding, failed], written, 30.0)
    assert not slaves_catching_up([replace(behind, last_applied=None)], written, 30.0)
