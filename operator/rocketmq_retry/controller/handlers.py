"""kopf registrations for both kinds: indexes of the objects, watch events to the control loop, and the RetryPolicy
finalizer. Importing this module registers them with kopf's default registry; `rocketmq-retry operator run` does so.

The command line puts the OperatorConfig and the Metrics in kopf's memo; the startup handler builds the Operator
(controller/operator.py) from them and from kopf's indexes. The memo is read here and nowhere else.
"""

import asyncio
import logging
from collections.abc import Mapping
from typing import Any, Final

import kopf

from rocketmq_retry.controller import DLQ_KIND, DLQ_PLURAL, FINALIZER, GROUP, KIND, PLURAL, VERSION
from rocketmq_retry.controller.config import OperatorConfig
from rocketmq_retry.controller.dead_letters import dead_letter_claim
from rocketmq_retry.controller.loop import stop_quietly
from rocketmq_retry.controller.metrics import Metrics
from rocketmq_retry.controller.operator import Operator
from rocketmq_retry.controller.records import ClaimKey, PolicyRecord, claim_key, record_from_body
from rocketmq_retry.domain.spec import DeletionPolicy

# kopf's worker per object lingers this long after its last event, holding that event's body (kopf's default: 5 s).
# An event handler only queues the object, so a worker is done almost at once. kopf's number of workers stays
# unlimited (its default): with a limit and an index, kopf deadlocks at start when more objects than the limit are
# listed (or created before every watched kind is listed): the first workers wait for every object to be indexed,
# and the others wait for their slots.
WORKER_IDLE_TIMEOUT: Final = 0.1
_KOPF_EVENTS_OFF: Final = logging.CRITICAL + 1  # kopf's own per-handler Events; ours are posted explicitly
_OBSERVED: Final = "Handler 'observe' succeeded."


class _QuietObserve(logging.Filter):
    """kopf logs each success of an event handler at INFO: a line per watch event of every object. The loop logs
    what changed instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.msg != _OBSERVED


logging.getLogger("kopf.objects").addFilter(_QuietObserve())


def _config(memo: Any) -> OperatorConfig:
    config: OperatorConfig = memo.config
    return config


def _operator(memo: Any) -> Operator:
    operator: Operator = memo.operator
    return operator


# The index functions are coroutines although they never await: kopf runs a plain function in a thread of its
# executor, which for every watch event costs two hand-overs between threads and the GIL contention between them.
@kopf.index(GROUP, VERSION, PLURAL)
async def policy_claims(body: kopf.Body, memo: Any, **_: Any) -> dict[ClaimKey | None, PolicyRecord]:
    """Every RetryPolicy by the group it claims; kopf completes it before the first handler runs, so the oldest
    policy of a group is known before any of them writes."""
    record = record_from_body(body)
    return {claim_key(record, _config(memo)): record}


@kopf.index(GROUP, VERSION, DLQ_PLURAL)
async def dead_letter_claims(body: kopf.Body, memo: Any, **_: Any) -> dict[ClaimKey | None, PolicyRecord]:
    """Every DeadLetterQueue by the group whose dead letters it watches, for the same oldest-wins rule."""
    record = record_from_body(body)
    return {dead_letter_claim(record, _config(memo)): record}


@kopf.on.startup()
async def start(settings: kopf.OperatorSettings, memo: Any, **kwargs: Any) -> None:
    config = _config(memo)
    settings.persistence.finalizer = FINALIZER
    # kopf's bookkeeping in status.kopf (declared in the CRDs) rather than in annotations: a handler's outcome is then
    # one status write, not a status and a metadata write (and two watch events back).
    settings.persistence.progress_storage = kopf.StatusProgressStorage()
    settings.persistence.diffbase_storage = kopf.StatusDiffBaseStorage()
    settings.scanning.disabled = config.fixed_namespaces
    settings.queueing.idle_timeout = WORKER_IDLE_TIMEOUT
    settings.posting.level = _KOPF_EVENTS_OFF
    if config.peering is not None:
        settings.peering.lifetime = config.peering.lifetime
    metrics: Metrics = memo.metrics
    indexes: dict[str, kopf.Index[ClaimKey | None, PolicyRecord]] = kwargs  # kopf passes each index by its name
    memo.operator = Operator.build(config, metrics, indexes["policy_claims"], indexes["dead_letter_claims"])
    memo.running = asyncio.create_task(memo.operator.run(), name="rocketmq-retry operator")


@kopf.on.cleanup()
async def stop(memo: Any, **_: Any) -> None:
    running: asyncio.Task[None] = memo.running
    await stop_quietly(running)


@kopf.on.event(GROUP, VERSION, PLURAL)
async def observe(event: kopf.RawEvent, body: kopf.Body, memo: Any, **_: Any) -> None:
    """Every watch event (and the listing at start): the loop decides whether the object needs a pass."""
    _deliver(_operator(memo), KIND, event, body)


@kopf.on.event(GROUP, VERSION, DLQ_PLURAL)
async def observe_dead_letters(event: kopf.RawEvent, body: kopf.Body, memo: Any, **_: Any) -> None:
    _deliver(_operator(memo), DLQ_KIND, event, body)


def _deliver(operator: Operator, kind: str, event: kopf.RawEvent, body: kopf.Body) -> None:
    record = record_from_body(body)
    if event["type"] == "DELETED":
        operator.loop.gone(kind, record)
    else:
        operator.loop.observe(kind, record)


def resets_on_delete(spec: Mapping[str, Any], **_: Any) -> bool:
    """Only a Reset policy has work to do when deleted, so only it carries the finalizer (one write less per policy)."""
    return bool(spec.get("deletionPolicy") == DeletionPolicy.RESET)


@kopf.on.delete(GROUP, VERSION, PLURAL, when=resets_on_delete)
async def finalize(body: kopf.Body, retry: int, memo: Any, logger: logging.Logger | logging.LoggerAdapter[Any],
                   **_: Any) -> None:
    """A Reset policy's deletion: its owned fields back to RocketMQ's defaults, through the loop."""
    operator = _operator(memo)
    outcome = await operator.loop.finalize(KIND, record_from_body(body))
    if not outcome.done and retry < operator.config.max_delete_retries:
        raise kopf.TemporaryError(outcome.message, delay=operator.config.retry_delay(retry))
    if not outcome.done:
        kopf.event(body, type="Warning", reason="ResetFailed",
                   message=f"{outcome.message}; giving up after {retry} retries and releasing the object")
    logger.info("finalized: %s", outcome.message)
