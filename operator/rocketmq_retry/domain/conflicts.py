"""Which RetryPolicy owns a consumer group when several name the same group in the same cluster.

The oldest policy wins (creationTimestamp, as Strimzi's topic operator does), so creating a second policy can never
take a group away from a working one; ties, possible because timestamps have second precision, go to the
lexicographically smaller namespace/name, so every operator replica decides alike.
"""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Claim:
    """One policy's claim on a group: `cluster_key` identifies the cluster (ClusterRef.key)."""

    namespace: str
    name: str
    created: datetime
    cluster_key: str
    group: str

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class Ownership:
    claim: Claim
    owner: Claim

    @property
    def owns(self) -> bool:
        return self.owner == self.claim

    @property
    def conflict_with(self) -> str | None:
        """namespace/name of the policy that owns the group, when it is another one."""
        return None if self.owns else self.owner.ref


def resolve_ownership(claims: Iterable[Claim]) -> dict[str, Ownership]:
    """Ownership of every claim, keyed by the claim's namespace/name."""
    contenders: defaultdict[tuple[str, str], list[Claim]] = defaultdict(list)
    for claim in claims:
        contenders[claim.cluster_key, claim.group].append(claim)
    result: dict[str, Ownership] = {}
    for rivals in contenders.values():
        owner = min(rivals, key=lambda claim: (claim.created, claim.namespace, claim.name))
        result |= {claim.ref: Ownership(claim, owner) for claim in rivals}
    return result
