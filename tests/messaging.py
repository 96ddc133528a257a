"""Waiting for messages on real brokers, shared by the integration and e2e tests."""

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from rocketmq_retry.remoting import (
    BrokerError,
    MessageExt,
    MessageQueue,
    Producer,
    PullConsumer,
    retry_topic,
)
from rocketmq_retry.remoting.routing import master_addresses, readable_queues
from rocketmq_retry.remoting.sending import Message


async def until(check: Callable[[], Awaitable[bool]], what: str, *, within: float) -> None:
    """Poll `check` until it holds; a missing route (BrokerError) counts as not yet. AssertionError naming `what`."""
    try:
        async with asyncio.timeout(within):
            while True:
                with contextlib.suppress(BrokerError):  # no route yet: what we are waiting out
                    if await check():
                        return
                await asyncio.sleep(0.3)
    except TimeoutError:
        raise AssertionError(f"no {what} after {within:.0f} s") from None


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


async def collect(consumer: PullConsumer, topic: str, count: int, offsets: dict[MessageQueue, int], *,
                  within: float) -> list[tuple[MessageQueue, MessageExt]]:
    """Pull every queue of `topic` from `offsets` (advanced in place) until `count` messages arrived."""
    found: list[tuple[MessageQueue, MessageExt]] = []
    async with asyncio.timeout(within):
        while len(found) < count:
            try:
                queues = await consumer.queues(topic)
            except BrokerError:
                queues = []
            before = len(found)
            for queue in queues:
                result = await consumer.pull(queue, offsets.get(queue, 0))
                offsets[queue] = result.next_begin_offset
                found += [(queue, message) for message in result.messages]
            if len(found) == before:
                await asyncio.sleep(0.3)
    return found


async def end_offsets(consumer: PullConsumer, topic: str) -> dict[MessageQueue, int]:
    """Where each queue of `topic` ends now (empty without a route): `collect` from here sees only later messages."""
    try:
        route = await consumer.admin.topic_route(topic)
    except BrokerError:
        return {}
    masters = master_addresses(route)
    return {queue: await consumer.admin.max_offset(masters[queue.broker_name], topic, queue.queue_id)
            for queue in readable_queues(topic, route)}


async def dead_letter(producer: Producer, consumer: PullConsumer, topic: str, count: int, *, retries: int,
                      within: float) -> list[MessageExt]:
    """Send `count` messages to `topic` and fail each until the broker dead-letters it after `retries` retries.

    `consumer` must dead-letter after `retries` (its max_reconsume_times, or its group's retryMaxTimes). Returns the
    messages as first consumed from `topic`, i.e. as the producer stored them.
    """
    offsets = await end_offsets(consumer, topic)
    retry_offsets = await end_offsets(consumer, retry_topic(consumer.group))
    for index in range(count):
        await producer.send(Message(topic, f"dead letter {index}".encode(), tags="failing",
                                    keys=[f"key-{index}", "dlq-test"], properties={"index": str(index)}))
    originals = await collect(consumer, topic, count, offsets, within=within)
    failing = originals
    for _ in range(retries):
        for queue, message in failing:
            await consumer.send_back(queue, message)
        failing = await collect(consumer, retry_topic(consumer.group), count, retry_offsets, within=within)
    for queue, message in failing:
        await consumer.send_back(queue, message)  # retries are spent: the broker dead-letters it
    return [message for _, message in originals]
