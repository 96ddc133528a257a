"""kopf registrations for DeadLetterQueue: an index of the objects, and one daemon per object that ticks its worker.

Imported next to `handlers` by `rocketmq-retry operator run`, whose startup sets kopf's finalizer and Event settings
for both kinds. A daemon rather than event handlers, because a redrive outlives any event; kopf stops the daemon
when the object is deleted, the operator exits or another peer takes over, and the next daemon resumes the run.
"""

import asyncio
import contextlib
import logging
from datetime import UTC, datetime
from typing import Any, Final

import kopf

from rocketmq_retry.controller import DLQ_KIND, DLQ_PLURAL, GROUP, VERSION
from rocketmq_retry.controller.dead_letters import DeadLetterRuntime, DeadLetterWorker
from rocketmq_retry.controller.kubeapi import KindSink, KubeApi, KubeApiError
from rocketmq_retry.controller.records import PolicyRecord, record_from_body
from rocketmq_retry.controller.sweep import live_records
from rocketmq_retry.reconcile.clients import Admins

TICK: Final = 1.0  # seconds between looks at the spec; the brokers are read every dead_letter_interval
STOP_TIMEOUT: Final = 30.0  # a tick in progress may take a few broker timeouts


@kopf.index(GROUP, VERSION, DLQ_PLURAL)
def dead_letter_queue_index(body: kopf.Body, **_: Any) -> dict[str, PolicyRecord]:
    """Every DeadLetterQueue the operator sees, for the oldest-wins rule."""
    record = record_from_body(body)
    return {record.ref: record}


@kopf.on.startup()
async def start_dead_letters(memo: Any, **_: Any) -> None:
    admins = Admins(memo.config.broker_timeout)
    kube = KubeApi.from_environment()
    memo.dead_letter_admins = admins
    memo.dead_letters = DeadLetterRuntime(memo.config, admins.admin, kube, KindSink(kube, DLQ_PLURAL, DLQ_KIND),
                                          memo.metrics)


@kopf.on.cleanup()
async def stop_dead_letters(memo: Any, **_: Any) -> None:
    admins: Admins = memo.dead_letter_admins
    await admins.close()


@kopf.daemon(GROUP, VERSION, DLQ_PLURAL, cancellation_timeout=STOP_TIMEOUT)
async def watch_dead_letter_queue(body: kopf.Body, stopped: kopf.DaemonStopped, memo: Any,
                                  logger: logging.Logger | logging.LoggerAdapter[Any], **kwargs: Any) -> None:
    """Tick the object's worker until kopf stops the daemon; `body` is kopf's live view of the object."""
    worker = DeadLetterWorker(memo.dead_letters, record_from_body(body))
    try:
        while not stopped:
            try:
                await worker.tick(record_from_body(body), _known(kwargs), datetime.now(UTC))
            except KubeApiError as error:  # the API server's own message, e.g. the 403 naming what the role lacks
                logger.error("cannot write status or Events (retrying at the next tick): %s", error)
            except Exception:
                logger.exception("DeadLetterQueue pass failed; retrying at the next tick")
            await stopped.wait(TICK)
    finally:
        with contextlib.suppress(asyncio.CancelledError):
            await worker.close()


def _known(kwargs: dict[str, Any]) -> list[PolicyRecord]:
    index: kopf.Index[str, PolicyRecord] = kwargs["dead_letter_queue_index"]
    return live_records(index.values())
