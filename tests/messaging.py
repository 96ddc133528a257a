"""Waiting for messages on real brokers, shared by the integration and e2e tests."""

import asyncio

from rocketmq_retry.remoting import BrokerError, MessageExt, MessageQueue, Producer, PullConsumer, SendFailed
from rocketmq_retry.remoting.producer import SendResult
from rocketmq_retry.remoting.sending import Message


async def next_message(consumer: PullConsumer, topic: str, offsets: dict[MessageQueue, int], *,
                       within: float) -> tuple[MessageQueue, MessageExt]:
    """Long-poll every queue of `topic` from `offsets` (advanced in place) until one message arrives.

    Retry and dead-letter topics get a route only once the broker has created and registered them.
    """
    async with asyncio.timeout(within):
        while True:
            try:
                queues = await consumer.queues(topic)
            except BrokerError:
                await asyncio.sleep(0.5)
                continue
            for queue in queues:
                result = await consumer.pull(queue, offsets.get(queue, 0), max_messages=1, suspend=1.0)
                offsets[queue] = result.next_begin_offset
                if result.messages:
                    return queue, result.messages[0]


async def first_send(producer: Producer, message: Message, *, within: float) -> SendResult:
    """A new topic reaches the name server asynchronously; retry its first send until the route is there."""
    async with asyncio.timeout(within):
        while True:
            try:
                return await producer.send(message)
            except SendFailed:
                await asyncio.sleep(0.5)
