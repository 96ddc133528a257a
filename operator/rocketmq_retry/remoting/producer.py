"""A producer with the official Java client's synchronous send semantics (`DefaultMQProducerImpl.sendDefaultImpl`).

1 + `retry_times_when_send_failed` attempts within one `send_timeout` budget, no pause between them, each
on a queue of another broker than the previous attempt when there is one; transport failures and the
retryable broker codes move on to the next attempt, other broker answers end the send. Every attempt is
recorded (broker, latency, error or the stored status), because the chaos probes judge failover from exactly that.
"""

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .admin import Admin
from .connection import ConnectionPool
from .errors import BrokerError, RemotingError
from .message import MessageIdGenerator
from .routing import FaultTable, MessageQueue, PublishInfo, QueueSelector
from .sending import RETRYABLE_RESPONSE_CODES, Message, SendReceipt, SendStatus, send_receipt, send_request

DEFAULT_PRODUCER_GROUP = "DEFAULT_PRODUCER"


@dataclass(frozen=True)
class SendAttempt:
    broker_name: str
    queue_id: int
    started: float  # monotonic seconds
    latency: float
    error: str | None  # None for an attempt the broker answered with a stored receipt
    status: SendStatus | None = None  # how the broker stored it, when it answered (error is None)


@dataclass(frozen=True)
class SendResult:
    msg_id: str
    receipt: SendReceipt
    attempts: tuple[SendAttempt, ...]

    @property
    def status(self) -> SendStatus:
        return self.receipt.status

    @property
    def brokers_tried(self) -> list[str]:
        return [attempt.broker_name for attempt in self.attempts]


class SendFailed(RemotingError):
    """Every attempt failed, the budget ran out, or the broker refused in a way not worth retrying."""

    def __init__(self, topic: str, msg_id: str, attempts: Sequence[SendAttempt], reason: str,
                 cause: RemotingError | None = None) -> None:
        tried = ", ".join(f"{a.broker_name}: {a.error}" for a in attempts) or "no attempt"
        super().__init__(f"send of {msg_id} to {topic} failed ({reason}); attempts: {tried}")
        self.topic = topic
        self.msg_id = msg_id
        self.attempts = tuple(attempts)
        self.cause = cause


class Producer:
    """Sends messages to a cluster found through its name servers; routes are refreshed every `route_ttl` s."""

    def __init__(self, pool: ConnectionPool, namesrv_addrs: Sequence[str], *,
                 group: str = DEFAULT_PRODUCER_GROUP, retry_times_when_send_failed: int = 2,
                 send_timeout: float = 3.0, route_ttl: float = 30.0, latency_fault_enabled: bool = False,
                 retry_another_broker_when_not_store_ok: bool = False,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.admin = Admin(pool, namesrv_addrs)
        self.group = group
        self.retry_times_when_send_failed = retry_times_when_send_failed
        self.send_timeout = send_timeout
        self.route_ttl = route_ttl
        self.retry_another_broker_when_not_store_ok = retry_another_broker_when_not_store_ok
        self.faults = FaultTable(clock)
        self._selector = QueueSelector(self.faults, latency_fault_enabled=latency_fault_enabled)
        self._clock = clock
        self._routes: dict[str, tuple[float, PublishInfo]] = {}
        self._ids = MessageIdGenerator()

    async def publish_info(self, topic: str, *, refresh: bool = False) -> PublishInfo:
        cached = self._routes.get(topic)
        if cached is None or refresh or self._clock() - cached[0] >= self.route_ttl:
            info = PublishInfo.from_route(topic, await self.admin.topic_route(topic))
            self._routes[topic] = (self._clock(), info)
            return info
        return cached[1]

    async def send(self, message: Message, *, reconsume_times: int | None = None,
                   max_reconsume_times: int | None = None, msg_id: str | None = None) -> SendResult:
        """Send with the Java client's retries; `msg_id` keeps a known id (a redriven message's), else a new one."""
        msg_id = msg_id or self._ids.next_id()
        begun = self._clock()
        attempts: list[SendAttempt] = []
        last_error: RemotingError | None = None
        try:
            info = await self.publish_info(message.topic)
        except RemotingError as error:
            raise SendFailed(message.topic, msg_id, attempts, "no route", error) from error
        queue: MessageQueue | None = None
        receipt: SendReceipt | None = None
        for attempt_number in range(1 + self.retry_times_when_send_failed):
            if attempt_number > 0:
                self._selector.reset()
            queue = self._selector.select(info, queue.broker_name if queue else None)
            started = self._clock()
            remaining = self.send_timeout - (started - begun)
            if remaining <= 0:
                raise SendFailed(message.topic, msg_id, attempts, f"send timeout {self.send_timeout} s spent",
                                 last_error)
            request = send_request(message, queue, producer_group=self.group, msg_id=msg_id,
                                   born_ms=int(time.time() * 1000), reconsume_times=reconsume_times,
                                   max_reconsume_times=max_reconsume_times)
            addr = info.masters[queue.broker_name]
            try:
                response = await self.admin.pool.invoke(addr, request, timeout=remaining)
                receipt = send_receipt(response, queue, addr)
            except BrokerError as error:
                attempts.append(self._attempt(queue, started, error, isolate=True, reachable=False))
                if error.code not in RETRYABLE_RESPONSE_CODES:
                    raise SendFailed(message.topic, msg_id, attempts, "broker refused", error) from error
                last_error = error
                continue
            except RemotingError as error:  # connection refused or lost, timeout, malformed answer
                attempts.append(self._attempt(queue, started, error, isolate=True, reachable=True))
                last_error = error
                continue
            attempts.append(self._attempt(queue, started, None, isolate=False, reachable=True,
                                          status=receipt.status))
            if receipt.status is SendStatus.SEND_OK or not self.retry_another_broker_when_not_store_ok:
                break
        if receipt is None:
            raise SendFailed(message.topic, msg_id, attempts, "every attempt failed", last_error)
        return SendResult(msg_id, receipt, tuple(attempts))

    def _attempt(self, queue: MessageQueue, started: float, error: RemotingError | None, *, isolate: bool,
                 reachable: bool, status: SendStatus | None = None) -> SendAttempt:
        latency = self._clock() - started
        self.faults.update(queue.broker_name, latency, isolate=isolate, reachable=reachable)
        return SendAttempt(queue.broker_name, queue.queue_id, started, latency, None if error is None else str(error),
                           status)
