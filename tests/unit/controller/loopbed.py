"""The control loop with both kinds over the in-memory cluster, on a clock the test moves: what the unit tests of the
controller drive."""

import asyncio
from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from rocketmq_retry.controller import DLQ_KIND, KIND
from rocketmq_retry.controller.config import OperatorConfig
from rocketmq_retry.controller.dead_letters import Begin, DeadLetterQueues, EngineFactory, Observe, dead_letter_claim
from rocketmq_retry.controller.loop import ControlLoop, Finalized, Kind
from rocketmq_retry.controller.metrics import Metrics
from rocketmq_retry.controller.policies import RetryPolicies
from rocketmq_retry.controller.publisher import StatusMemory
from rocketmq_retry.controller.records import ClaimKey, PolicyRecord, claim_key
from rocketmq_retry.controller.secrets import SecretReader
from rocketmq_retry.controller.statuses import PolicyEvent
from rocketmq_retry.domain.jsontypes import JsonObject
from rocketmq_retry.domain.spec import AclSecretRef, ClusterRef
from rocketmq_retry.remoting.acl import Credentials
from tests.unit.fakes import FakeAdmin, FakeClock

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
NAMESRV = {"nameServers": "127.0.0.1:9876"}
CLUSTER = "*@127.0.0.1:9876"  # the key of NAMESRV
# No batch window: a pass starts at the next look at the clock, so a test sees each pass it causes.
CONFIG = OperatorConfig(batch_window=0.0)


async def settle(clock: FakeClock, loop: ControlLoop) -> None:
    """Run what is due now to its end: due timers, the passes and writes they start, and what those queue."""
    for _ in range(1000):
        fired = clock.fire_due()
        running = loop.busy()
        if running:
            await asyncio.gather(*running)
        elif not fired:
            await asyncio.sleep(0)  # a task the passes started (a redrive) may queue more
            if not clock.fire_due() and not loop.busy():
                return
    raise AssertionError("the loop did not settle in 1000 steps")


async def advance(clock: FakeClock, loop: ControlLoop, seconds: float) -> None:
    """Move the clock by `seconds`, settling at every timer on the way."""
    until = clock.elapsed + seconds
    await settle(clock, loop)
    while (due := clock.next_due()) is not None and due <= until:
        clock.elapsed = max(clock.elapsed, due)
        await settle(clock, loop)
    clock.elapsed = until
    await settle(clock, loop)


class RecordingSink:
    def __init__(self) -> None:
        self.patches: list[tuple[str, JsonObject]] = []
        self.events: list[tuple[str, str]] = []
        self.messages: list[PolicyEvent] = []
        self.refuse = 0  # status writes to refuse before accepting
        self.refused = 0

    async def patch_status(self, record: PolicyRecord, status: JsonObject) -> None:
        if self.refused < self.refuse:
            self.refused += 1
            raise ConnectionError("the API server is away")
        self.patches.append((record.ref, status))

    async def post_event(self, record: PolicyRecord, event: PolicyEvent) -> None:
        self.events.append((record.ref, event.reason))
        self.messages.append(event)

    def statuses(self, ref: str) -> list[JsonObject]:
        return [status for written, status in self.patches if written == ref]


class NoSecrets:
    async def credentials(self, namespace: str, ref: AclSecretRef) -> Credentials:
        raise AssertionError("no object here references a Secret")


def record(name: str, spec: dict[str, Any], *, age: int = 0, generation: int = 1, uid: str | None = None,
           annotations: dict[str, str] | None = None, status: dict[str, Any] | None = None,
           deleting: bool = False) -> PolicyRecord:
    return PolicyRecord("ns", name, uid or f"uid-{name}", generation, NOW - timedelta(seconds=age),
                        annotations or {}, spec, status or {}, deleting)


def policy_spec(group: str, retries: int = 3, **more: Any) -> dict[str, Any]:
    return {"cluster": NAMESRV, "consumerGroup": group, "maxRetries": retries, **more}


def ready(status: dict[str, Any]) -> tuple[str, str, str]:
    condition = next(c for c in status["conditions"] if c["type"] == "Ready")
    return condition["status"], condition["reason"], condition["message"]


class Index(defaultdict[ClaimKey | None, list[PolicyRecord]]):
    """A kopf index as the loop reads it: objects by claim, one version of each, and no key without objects."""

    def __init__(self) -> None:
        super().__init__(list)

    def put(self, claim: ClaimKey | None, record: PolicyRecord) -> None:
        self.remove(record)
        self[claim].append(record)

    def remove(self, record: PolicyRecord) -> None:
        for claim, claimants in list(self.items()):
            claimants[:] = [known for known in claimants if known.uid != record.uid]
            if not claimants:
                del self[claim]


@dataclass(frozen=True)
class DeadLetterFakes:
    observe: Observe
    begin: Begin
    engine: EngineFactory


class LoopBed:
    def __init__(self, admin: FakeAdmin, *, config: OperatorConfig = CONFIG, secrets: SecretReader | None = None,
                 dead_letters: DeadLetterFakes | None = None, leading: bool | None = None) -> None:
        """`dead_letters`: the DeadLetterQueue kind on the loop too, reading and redriving through these."""
        self.admin = admin
        self.config = config
        self.clock = FakeClock(NOW)
        self.sink = RecordingSink()
        self.memory = StatusMemory()
        self.metrics = Metrics()
        self.policy_index = Index()
        self.dead_letter_index = Index()
        self.admins_built: list[tuple[str, Credentials | None]] = []
        self.policies = RetryPolicies(config, self.policy_index, admins=self._admin, secrets=secrets or NoSecrets(),
                                      sink=self.sink, memory=self.memory, metrics=self.metrics)
        self.leading = leading
        self.leadership_asked = 0
        self.dead_letters = None if dead_letters is None else DeadLetterQueues(
            config, self.dead_letter_index, admins=self._admin, secrets=secrets or NoSecrets(), sink=self.sink,
            metrics=self.metrics, observe=dead_letters.observe, begin=dead_letters.begin, engine=dead_letters.engine)
        kinds: list[Kind] = [self.policies, *([] if self.dead_letters is None else [self.dead_letters])]
        self.loop = ControlLoop(config, kinds, self.memory, clock=self.clock,
                                leads=None if leading is None else self._leads)
        if self.dead_letters is not None:
            self.dead_letters.wake = lambda uid: self.loop.wake(DLQ_KIND, uid)

    def _admin(self, cluster: ClusterRef, credentials: Credentials | None) -> FakeAdmin:
        self.admins_built.append((cluster.key, credentials))
        return self.admin

    async def _leads(self, namespaces: Collection[str]) -> bool:
        assert set(namespaces) == {"ns"}
        self.leadership_asked += 1
        return bool(self.leading)

    def apply(self, *records: PolicyRecord) -> None:
        """Watch events of these policies, after kopf indexed them."""
        for policy in records:
            self.policy_index.put(claim_key(policy, self.config), policy)
            self.loop.observe(KIND, policy)

    def apply_dead_letters(self, *records: PolicyRecord) -> None:
        for queue in records:
            self.dead_letter_index.put(dead_letter_claim(queue, self.config), queue)
            self.loop.observe(DLQ_KIND, queue)

    def delete(self, policy: PolicyRecord) -> None:
        """kopf's index drops the object before its DELETED event is handled."""
        self.policy_index.remove(policy)
        self.loop.gone(KIND, policy)

    def echo(self, policy: PolicyRecord) -> PolicyRecord:
        """The watch event the operator's own last status write brings back."""
        echoed = replace(policy, status=self.memory.current(policy).status)
        self.apply(echoed)
        return echoed

    async def settle(self) -> None:
        await settle(self.clock, self.loop)

    async def advance(self, seconds: float) -> None:
        await advance(self.clock, self.loop, seconds)

    async def finalize(self, policy: PolicyRecord) -> Finalized:
        self.policy_index.put(claim_key(policy, self.config), policy)
        pending = asyncio.ensure_future(self.loop.finalize(KIND, policy))
        await self.settle()
        return await pending

    def sample(self, name: str, **labels: str) -> float | None:
        return self.metrics.registry.get_sample_value(name, labels)
