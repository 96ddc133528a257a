"""Status comparison and Events: only real changes count."""

from rocketmq_retry.controller.statuses import status_changed, transition_event


def _status(reason: str, state: str = "True", when: str = "2026-01-01T00:00:00Z") -> dict[str, object]:
    return {"observedGeneration": 1, "conflictWith": None,
            "conditions": [{"type": "Ready", "status": state, "reason": reason, "message": "m",
                            "lastTransitionTime": when, "observedGeneration": 1}],
            "brokers": [{"name": "b", "state": "Applied", "lastAppliedTime": when}]}


def test_absent_keys_are_no_change_but_a_new_write_time_is() -> None:
    stored = _status("Synced")
    stored.pop("conflictWith")
    assert not status_changed(stored, _status("Synced"))
    assert status_changed(stored, _status("Synced", when="2026-02-02T00:00:00Z"))
    assert status_changed(stored, _status("PartiallyApplied", "False"))
    assert status_changed(stored, {**_status("Synced"), "conflictWith": "ns/other"})


def test_events_follow_the_ready_reason() -> None:
    assert transition_event(_status("Synced"), _status("Synced")) is None
    event = transition_event(_status("Synced"), _status("BrokerUnreachable", "False"))
    assert event is not None
    assert (event.type, event.reason, event.message) == ("Warning", "BrokerUnreachable", "m")
    first = transition_event({}, _status("Synced"))
    assert first is not None
    assert first.type == "Normal"
