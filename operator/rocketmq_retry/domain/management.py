"""The annotations that take a policy out of the operator's hands, as annotations rather than spec fields.

They are switches a person flips during an incident, which GitOps tools must not revert (Strimzi proposal 051).
"""

from collections.abc import Mapping
from enum import StrEnum
from typing import Final

MANAGED_ANNOTATION: Final = "rocketmq-retry.io/managed"
PAUSE_ANNOTATION: Final = "rocketmq-retry.io/pause-reconciliation"


class Management(StrEnum):
    MANAGED = "Managed"
    PAUSED = "Paused"  # no writes; deletion and its deletionPolicy are still honoured
    UNMANAGED = "Unmanaged"  # no writes, and deletion leaves the group as it is whatever the deletionPolicy


def management(annotations: Mapping[str, str] | None) -> Management:
    """How far the operator may act on a policy with these annotations; unmanaged overrides paused."""
    found = annotations or {}
    if found.get(MANAGED_ANNOTATION, "").strip().lower() == "false":
        return Management.UNMANAGED
    if found.get(PAUSE_ANNOTATION, "").strip().lower() == "true":
        return Management.PAUSED
    return Management.MANAGED
