"""A probe with the official 5.x gRPC client (PyPI `rocketmq-python-client`) through the proxy.

This is the path where the group's `groupRetryPolicy` reaches clients: the proxy sends it in the client's settings
and the push consumer waits that backoff itself before the next delivery attempt. Deliveries are journalled with
`reconsume_times` = delivery attempt - 1 and `stored_at` = the client's receive time (a gRPC redelivery is the same
stored message made visible again, so the broker's store time does not move).
"""

import threading
import time
from typing import Any

from rocketmq import ClientConfiguration, ConsumeResult, Credentials, FilterExpression, MessageListener, PushConsumer

from .journal import Journal, Receive


class _FailEverything(MessageListener):  # type: ignore[misc]
    def __init__(self, journal: Journal, topic: str) -> None:
        self._journal = journal
        self._topic = topic
        self._lock = threading.Lock()  # the client calls listeners from its consumption thread pool

    def consume(self, message: Any) -> ConsumeResult:
        now = time.time()
        with self._lock:
            self._journal.record(Receive(now, message.message_id, self._topic, "proxy",
                                         message.delivery_attempt - 1, now))
        return ConsumeResult.FAILURE


def fail_every_delivery(proxy_endpoint: str, topic: str, group: str, journal: Journal, *, duration: float,
                        stop: threading.Event | None = None) -> None:
    """Run a push consumer of `topic` that fails every message for `duration` seconds, or until `stop` is set
    (blocking: call in a thread)."""
    consumer = PushConsumer(ClientConfiguration(proxy_endpoint, Credentials()), group,
                            _FailEverything(journal, topic), {topic: FilterExpression()})
    consumer.startup()
    try:
        (stop or threading.Event()).wait(duration)
    finally:
        consumer.shutdown()
