"""kopf registrations for RetryPolicy: watch events to the reconciler's queue, deletions to the engine's reset.

Importing this module registers the handlers with kopf's default registry; `rocketmq-retry operator run` does so.
The operator's config, metrics and kopf peering (None when standalone) arrive in the memo (`memo.config`,
`memo.metrics`, `memo.peering`), set by the command line.
"""

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

import kopf

from rocketmq_retry.controller import FINALIZER, GROUP, PLURAL, VERSION
from rocketmq_retry.controller.engine import Runtime, finalize_record
from rocketmq_retry.controller.kubeapi import KubeApi
from rocketmq_retry.controller.masters import MasterWatch
from rocketmq_retry.controller.peering import Peering, PeeringGate
from rocketmq_retry.controller.reconciler import Reconciler
from rocketmq_retry.controller.records import ClaimKey, Claims, PolicyRecord, claim_key, record_from_body
from rocketmq_retry.controller.sweep import Sweeper, live_records
from rocketmq_retry.controller.workqueue import retry_delay
from rocketmq_retry.domain.spec import DeletionPolicy
from rocketmq_retry.reconcile.clients import Admins
from rocketmq_retry.reconcile.config import OperatorConfig

MAX_DELETE_RETRIES: Final = 10
# kopf's worker per object lingers this long after its last event, holding that event's body (kopf's default: 5 s).
# An event handler only queues the object (controller/reconciler.py), so a worker is done almost at once. kopf's
# number of workers stays unlimited (its default): with a limit and an index, kopf deadlocks at start when more objects
# than the limit are listed (or created before every watched kind is listed): the first workers wait for every object
# to be indexed, and the others wait for their slots.
WORKER_IDLE_TIMEOUT: Final = 0.1
_KOPF_EVENTS_OFF: Final = logging.CRITICAL + 1  # kopf's own per-handler Events; ours are posted explicitly
_OBSERVED: Final = "Handler 'observe' succeeded."


class _QuietObserve(logging.Filter):
    """kopf logs each success of an event handler at INFO: a line per watch event of every policy. The reconciler
    logs what changed instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.msg != _OBSERVED


logging.getLogger("kopf.objects").addFilter(_QuietObserve())


@kopf.index(GROUP, VERSION, PLURAL)
def policy_claims(body: kopf.Body, memo: Any, **_: Any) -> dict[ClaimKey | None, PolicyRecord]:
    """Every policy the operator sees, by the group it claims; complete before the first handler runs."""
    record = record_from_body(body)
    return {claim_key(record, memo.config): record}


@kopf.on.startup()
async def start(settings: kopf.OperatorSettings, memo: Any, **kwargs: Any) -> None:
    config: OperatorConfig = memo.config
    settings.persistence.finalizer = FINALIZER
    # kopf's bookkeeping in status.kopf (declared in the CRDs) rather than in annotations: a handler's outcome is then
    # one status write, not a status and a metadata write (and two watch events back).
    settings.persistence.progress_storage = kopf.StatusProgressStorage()
    settings.persistence.diffbase_storage = kopf.StatusDiffBaseStorage()
    settings.scanning.disabled = memo.fixed_namespaces
    settings.queueing.idle_timeout = WORKER_IDLE_TIMEOUT
    settings.posting.level = _KOPF_EVENTS_OFF
    peering: Peering | None = memo.peering
    kube = KubeApi.from_environment()
    if peering is not None:
        settings.peering.lifetime = peering.lifetime
    admins = Admins(config.broker_timeout)
    runtime = Runtime(config, admins.admin, kube, metrics=memo.metrics)
    leads = PeeringGate(peering, kube).leads if peering is not None else None
    sweeper = Sweeper(runtime, lambda: _known(kwargs), kube, leads=leads)
    reconciler = Reconciler(runtime, _claims(kwargs), kube, leads=leads)
    memo.admins = admins
    memo.runtime = runtime
    memo.reconciler = reconciler
    watch = MasterWatch(admins.admin, runtime.clusters, sweeper.sweep_once, call_timeout=config.broker_timeout)
    memo.background = [asyncio.create_task(reconciler.run(), name="rocketmq-retry reconcilers"),
                       asyncio.create_task(sweeper.run_forever(), name="rocketmq-retry drift sweep"),
                       asyncio.create_task(watch.run_forever(), name="rocketmq-retry master watch")]


@kopf.on.cleanup()
async def stop(memo: Any, **_: Any) -> None:
    background: list[asyncio.Task[None]] = memo.background
    for task in background:
        task.cancel()
    for task in background:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    admins: Admins = memo.admins
    await admins.close()


@kopf.on.event(GROUP, VERSION, PLURAL)
async def observe(event: kopf.RawEvent, body: kopf.Body, memo: Any, **_: Any) -> None:
    """Every watch event (and the listing at start): the reconciler decides whether the object needs work."""
    reconciler: Reconciler = memo.reconciler
    record = record_from_body(body)
    if event["type"] == "DELETED":
        reconciler.gone(record)
    else:
        reconciler.observe(record)


def resets_on_delete(spec: Mapping[str, Any], **_: Any) -> bool:
    """Only a Reset policy has work to do when deleted, so only it carries the finalizer (one write less per policy)."""
    return bool(spec.get("deletionPolicy") == DeletionPolicy.RESET)


@kopf.on.delete(GROUP, VERSION, PLURAL, when=resets_on_delete)
async def finalize(body: kopf.Body, retry: int, memo: Any, logger: logging.Logger | logging.LoggerAdapter[Any],
                   **kwargs: Any) -> None:
    runtime: Runtime = memo.runtime
    record = record_from_body(body)
    outcome = await finalize_record(runtime, record, _claims(kwargs), datetime.now(UTC))
    if not outcome.done and retry < MAX_DELETE_RETRIES:
        raise kopf.TemporaryError(outcome.message, delay=retry_delay(retry))
    if not outcome.done:
        kopf.event(body, type="Warning", reason="ResetFailed",
                   message=f"{outcome.message}; giving up after {retry} retries and releasing the object")
    logger.info("finalized: %s", outcome.message)


def _claims(kwargs: dict[str, Any]) -> Claims:
    """The index `policy_claims`, which kopf passes by its name."""
    index: kopf.Index[ClaimKey | None, PolicyRecord] = kwargs["policy_claims"]
    return index


def _known(kwargs: dict[str, Any]) -> list[PolicyRecord]:
    """Every policy of `policy_claims`."""
    return live_records(_claims(kwargs).values())
