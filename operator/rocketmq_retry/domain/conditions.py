"""Status conditions: `Ready` for people and Argo CD, `Reconciling`/`Stalled` for kstatus (Flux, kpt, cli-utils).

Reasons separate what needs a spec change (terminal: InvalidSpec, Conflict; Stalled=True) from what the operator keeps
retrying on its own (BrokerUnreachable, AclSecretUnavailable, PartiallyApplied, Progressing; Reconciling=True). A
missing ACL Secret is retryable: it is a separate object, often created after the policy. Reconciling and Stalled
have "abnormal-true" polarity and, as Flux does, are present only while True. Every condition carries the
generation it describes, set on every outcome, failures included, so a GitOps tool never mistakes an old Ready=True
for the current spec.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Final

from rocketmq_retry.domain.jsontypes import JsonObject, JsonValue
from rocketmq_retry.domain.timestamps import format_timestamp

READY: Final = "Ready"
RECONCILING: Final = "Reconciling"
STALLED: Final = "Stalled"
EFFECTIVE_RETRIES_DIFFER: Final = "EffectiveRetriesDiffer"
RETRIES_NOT_APPLICABLE: Final = "RetriesNotApplicable"
MAX_MESSAGE_LENGTH: Final = 32768  # metav1.Condition.message


class Reason(StrEnum):
    SYNCED = "Synced"
    PROGRESSING = "Progressing"
    PARTIALLY_APPLIED = "PartiallyApplied"
    BROKER_UNREACHABLE = "BrokerUnreachable"
    ACL_SECRET_UNAVAILABLE = "AclSecretUnavailable"  # noqa: S105 - a condition reason, not a secret
    INVALID_SPEC = "InvalidSpec"
    CONFLICT = "Conflict"
    PAUSED = "ReconciliationPaused"
    UNMANAGED = "Unmanaged"


TERMINAL_REASONS: Final = frozenset({Reason.INVALID_SPEC, Reason.CONFLICT})
RETRYABLE_REASONS: Final = frozenset({Reason.PROGRESSING, Reason.PARTIALLY_APPLIED, Reason.BROKER_UNREACHABLE,
                                      Reason.ACL_SECRET_UNAVAILABLE})
# Observed conditions are present only while there is something observed: live consumers of the group.
OBSERVED_TYPES: Final = frozenset({EFFECTIVE_RETRIES_DIFFER, RETRIES_NOT_APPLICABLE})
_OWNED_TYPES: Final = frozenset({READY, RECONCILING, STALLED}) | OBSERVED_TYPES


@dataclass(frozen=True)
class Outcome:
    """The result of one reconciliation, as the conditions should tell it."""

    reason: Reason
    message: str

    @property
    def ready(self) -> str:
        if self.reason is Reason.SYNCED:
            return "True"
        if self.reason in (Reason.PROGRESSING, Reason.PAUSED, Reason.UNMANAGED):
            return "Unknown"
        return "False"


@dataclass(frozen=True)
class Observation:
    """A condition that reports what was observed (OBSERVED_TYPES), not the outcome of applying the spec."""

    type: str
    status: str
    reason: str
    message: str


def build_conditions(outcome: Outcome, previous: Sequence[Mapping[str, JsonValue]] | None, generation: int,
                     now: datetime, observations: Sequence[Observation] = ()) -> list[JsonObject]:
    """The new `status.conditions`: Ready, then Reconciling or Stalled when true, then the observations, then other
    writers' conditions."""
    earlier = {str(condition.get("type")): condition for condition in previous or ()}
    wanted = [(READY, outcome.ready)]
    if outcome.reason in RETRYABLE_REASONS:
        wanted.append((RECONCILING, "True"))
    if outcome.reason in TERMINAL_REASONS:
        wanted.append((STALLED, "True"))
    conditions = [condition(kind, status, str(outcome.reason), outcome.message, generation=generation,
                            earlier=earlier.get(kind), now=now)
                  for kind, status in wanted]
    conditions += [condition(seen.type, seen.status, seen.reason, seen.message, generation=generation,
                             earlier=earlier.get(seen.type), now=now) for seen in observations]
    conditions += [dict(entry) for kind, entry in earlier.items() if kind not in _OWNED_TYPES]
    return conditions


def condition(kind: str, status: str, reason: str, message: str, *, generation: int,
              earlier: Mapping[str, JsonValue] | None, now: datetime) -> JsonObject:
    """One condition in the metav1.Condition shape; `earlier` is the same type's previous entry, if any."""
    return {
        "type": kind,
        "status": status,
        "observedGeneration": generation,
        "lastTransitionTime": _transition_time(earlier, status, now),
        "reason": reason,
        "message": message[:MAX_MESSAGE_LENGTH],
    }


def _transition_time(earlier: Mapping[str, JsonValue] | None, status: str, now: datetime) -> str:
    """Keep the previous transition time while the status stays the same, so it tells when the state began."""
    if earlier is not None and earlier.get("status") == status:
        kept = earlier.get("lastTransitionTime")
        if isinstance(kept, str) and kept:
            return kept
    return format_timestamp(now)
