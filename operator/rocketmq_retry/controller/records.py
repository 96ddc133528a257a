"""What the operator keeps of a RetryPolicy object, and the decision what to do with it (pure).

The decision combines the spec, the management annotations and the oldest-wins rule. A pass decides each policy
against only the policies that claim the same group (the claims index), so its cost does not grow with the number of
policies.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rocketmq_retry.controller import GROUP, KIND, VERSION
from rocketmq_retry.controller.config import OperatorConfig
from rocketmq_retry.domain.conditions import Outcome, Reason
from rocketmq_retry.domain.conflicts import Claim, resolve_ownership
from rocketmq_retry.domain.jsontypes import JsonObject
from rocketmq_retry.domain.management import Management, management
from rocketmq_retry.domain.spec import ClusterRef, RetryPolicySpec, SpecError, parse_spec
from rocketmq_retry.domain.timestamps import parse_timestamp
from rocketmq_retry.reconcile.apply import Intent, Mode


@dataclass(frozen=True, eq=False)
class PolicyRecord:
    namespace: str
    name: str
    uid: str
    generation: int
    created: datetime
    annotations: Mapping[str, str]
    spec: object  # as stored; parsed by `decide`, because stored objects may predate today's validation
    status: Mapping[str, Any] = field(default_factory=dict)
    deleting: bool = False

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def reference(self) -> JsonObject:
        """The object reference Events point at."""
        return {"apiVersion": f"{GROUP}/{VERSION}", "kind": KIND, "namespace": self.namespace, "name": self.name,
                "uid": self.uid}


def record_from_body(body: Mapping[str, Any]) -> PolicyRecord:
    metadata = body.get("metadata", {})
    return PolicyRecord(
        namespace=str(metadata.get("namespace", "")),
        name=str(metadata.get("name", "")),
        uid=str(metadata.get("uid", "")),
        generation=int(metadata.get("generation") or 0),
        created=parse_timestamp(str(metadata["creationTimestamp"])),
        annotations=dict(metadata.get("annotations") or {}),
        spec=_plain(body.get("spec")),
        status=_plain(body.get("status")) or {},
        deleting=metadata.get("deletionTimestamp") is not None,
    )


ClaimKey = tuple[str, str]  # (ClusterRef.key, consumer group) a valid spec claims
Claims = Mapping[ClaimKey | None, Iterable[PolicyRecord]]  # claim -> its claimants; None: invalid specs


@dataclass(frozen=True)
class Decision:
    """`intent` is None when nothing can be done (invalid spec); `outcome` is set when it does not come from brokers."""

    intent: Intent | None
    cluster: ClusterRef | None
    outcome: Outcome | None
    conflict_with: str | None = None


def target(record: PolicyRecord, config: OperatorConfig) -> tuple[RetryPolicySpec, ClusterRef]:
    """The parsed spec and the cluster it targets; SpecError when either is unusable."""
    spec = parse_spec(record.spec)
    return spec, config.cluster_for(spec.cluster)


def claim_key(record: PolicyRecord, config: OperatorConfig) -> ClaimKey | None:
    """The group `record` claims, the key of the claims index; None when its spec is unusable."""
    try:
        spec, cluster = target(record, config)
    except SpecError:
        return None
    return cluster.key, spec.consumer_group


def decide(record: PolicyRecord, claims: Claims, config: OperatorConfig) -> Decision:
    """What to do with `record`, given the claims the operator knows (`record` itself may be among them)."""
    invalid, targets = _parsed([record], config)
    if invalid:
        return invalid[record.ref]
    [(_, spec, cluster)] = targets
    rivals = [other for other in claims.get((cluster.key, spec.consumer_group), ()) if other.ref != record.ref]
    return _owned([*targets, *_parsed(rivals, config)[1]])[record.ref]


_Target = tuple[PolicyRecord, RetryPolicySpec, ClusterRef]


def _parsed(records: Iterable[PolicyRecord], config: OperatorConfig) -> tuple[dict[str, Decision], list[_Target]]:
    """The InvalidSpec decisions of unusable specs, and the parsed target of every other record."""
    invalid: dict[str, Decision] = {}
    targets: list[_Target] = []
    for record in records:
        try:
            targets.append((record, *target(record, config)))
        except SpecError as error:
            invalid[record.ref] = Decision(None, None, Outcome(Reason.INVALID_SPEC, str(error)))
    return invalid, targets


def _owned(targets: Sequence[_Target]) -> dict[str, Decision]:
    """Decisions for parsed policies, the oldest of those claiming a group owning it."""
    ownership = resolve_ownership(
        Claim(record.namespace, record.name, record.created, cluster.key, spec.consumer_group)
        for record, spec, cluster in targets)
    return {record.ref: _decision(record, spec, cluster, ownership[record.ref].conflict_with)
            for record, spec, cluster in targets}


def _decision(record: PolicyRecord, spec: RetryPolicySpec, cluster: ClusterRef, owner: str | None) -> Decision:
    observe = Intent(record.ref, spec, Mode.OBSERVE)
    if owner is not None:
        message = (f"consumer group {spec.consumer_group} on cluster {cluster.key} is managed by the older "
                   f"RetryPolicy {owner}; delete one of the two policies")
        return Decision(observe, cluster, Outcome(Reason.CONFLICT, message), owner)
    found = management(record.annotations)
    if found is Management.UNMANAGED:
        return Decision(observe, cluster,
                        Outcome(Reason.UNMANAGED, "managed=false: the operator writes nothing for this policy"))
    if found is Management.PAUSED:
        return Decision(observe, cluster,
                        Outcome(Reason.PAUSED, "reconciliation is paused: the operator writes nothing to the brokers"))
    return Decision(Intent(record.ref, spec, Mode.APPLY), cluster, None)


def _plain(value: Any) -> Any:
    """A deep copy in plain dicts and lists: kopf hands out read-only views that must not outlive the handler."""
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value
