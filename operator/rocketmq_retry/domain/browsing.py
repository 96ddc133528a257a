"""How `rocketmq-retry dlq list|export` shows a pending dead letter, pure: one table row, one JSON Lines record.

The row is for a person deciding what to redrive, so it carries what tells dead letters apart (ids, keys, tags, when
each ran out of retries, where it came from) and the failure bookkeeping the broker wrote. The record is for tools and
for keeping a copy: it adds the body (base64, as bodies are bytes) and every property, so a dead letter can be told
from, or compared with, the message first sent byte for byte.
"""

import base64
from typing import Final, NamedTuple

from rocketmq_retry.domain.jsontypes import JsonObject
from rocketmq_retry.domain.selection import message_keys, store_time
from rocketmq_retry.remoting.message import (
    PROPERTY_DLQ_ORIGIN_MESSAGE_ID,
    PROPERTY_DLQ_ORIGIN_TOPIC,
    PROPERTY_MAX_RECONSUME_TIMES,
    PROPERTY_ORIGIN_MESSAGE_ID,
    MessageExt,
)
from rocketmq_retry.remoting.pulling import original_topic

# What the broker writes about a failure, in the order a person reads it: the id first stored (send-back), the
# retries the consumer allowed, and where a 5.x pop consumer's message came from.
BOOKKEEPING: Final = (PROPERTY_ORIGIN_MESSAGE_ID, PROPERTY_MAX_RECONSUME_TIMES, PROPERTY_DLQ_ORIGIN_TOPIC,
                      PROPERTY_DLQ_ORIGIN_MESSAGE_ID)
COLUMNS: Final = ("ID", "KEYS", "TAGS", "STORED", "RECONSUMED", "ORIGINAL TOPIC", "BROKER/QUEUE/OFFSET", "FAILURE")


class DeadLetter(NamedTuple):
    """A message of `%DLQ%<group>` and the master that stores it (a pulled message knows its queue, not its broker)."""

    broker: str
    message: MessageExt


def store_time_text(message: MessageExt) -> str:
    """RFC 3339 in UTC with milliseconds: dead letters of one burst are stored within the same second."""
    return store_time(message).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def position(dead: DeadLetter) -> str:
    return f"{dead.broker}/{dead.message.queue_id}/{dead.message.queue_offset}"


def row(dead: DeadLetter) -> tuple[str, ...]:
    """The cells of COLUMNS; FAILURE lists the bookkeeping properties present, as `NAME=value`."""
    message = dead.message
    failure = " ".join(f"{name}={message.properties[name]}" for name in BOOKKEEPING if name in message.properties)
    return (message.msg_id, " ".join(message_keys(message)), message.tags or "", store_time_text(message),
            str(message.reconsume_times), original_topic(message), position(dead), failure)


def record(dead: DeadLetter) -> JsonObject:
    """The JSON Lines object of a dead letter: every field of the row, typed, plus `properties` and `body`.

    Every key is always there (null when the message lacks it), so tools can rely on the shape.
    """
    message = dead.message
    properties = message.properties
    max_reconsume = properties.get(PROPERTY_MAX_RECONSUME_TIMES)
    return {
        "msgId": message.msg_id,
        "offsetMsgId": message.offset_msg_id,
        "keys": list(message_keys(message)),
        "tags": message.tags,
        "storeTime": store_time_text(message),
        "reconsumeTimes": message.reconsume_times,
        "originalTopic": original_topic(message),
        "broker": dead.broker,
        "queueId": message.queue_id,
        "queueOffset": message.queue_offset,
        "originMessageId": properties.get(PROPERTY_ORIGIN_MESSAGE_ID),
        "maxReconsumeTimes": int(max_reconsume) if max_reconsume and max_reconsume.isdecimal() else None,
        "dlqOriginTopic": properties.get(PROPERTY_DLQ_ORIGIN_TOPIC),
        "dlqOriginMessageId": properties.get(PROPERTY_DLQ_ORIGIN_MESSAGE_ID),
        "flag": message.flag,
        "properties": dict(properties),
        "body": base64.b64encode(message.body).decode("ascii"),
    }
