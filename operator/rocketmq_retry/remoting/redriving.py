"""The message a redrive sends for a dead letter, pure: same id, keys, tags, body, flag and user properties.

The message id (UNIQ_KEY) is kept: consumers that de-duplicate by id recognise a redriven message, and the id a user
saw in the dead-letter queue is the id the consumer gets. Dropped are only the properties that the broker and the
clients use to route retries and dead letters, to schedule delivery, or that every send stamps anew; the broker
sets fresh retry bookkeeping if the message fails again, and the message is delivered at once, not after its
original delay.
"""

from typing import Final

from .message import (
    PROPERTY_DELAY_LEVEL,
    PROPERTY_KEYS,
    PROPERTY_MAX_RECONSUME_TIMES,
    PROPERTY_ORIGIN_MESSAGE_ID,
    PROPERTY_RECONSUME_TIME,
    PROPERTY_RETRY_TOPIC,
    PROPERTY_TAGS,
    PROPERTY_UNIQ_KEY,
    MessageExt,
)
from .pulling import DLQ_TOPIC_PREFIX, RETRY_TOPIC_PREFIX, original_topic
from .sending import PROPERTY_WAIT_STORE_MSG_OK, Message

RETRY_BOOKKEEPING: Final = frozenset({
    PROPERTY_RETRY_TOPIC, PROPERTY_ORIGIN_MESSAGE_ID, PROPERTY_RECONSUME_TIME, PROPERTY_MAX_RECONSUME_TIMES,
    "DLQ_ORIGIN_TOPIC", "DLQ_ORIGIN_MSG_ID",  # 5.x pop consumers' dead letters
})
SCHEDULING: Final = frozenset({
    PROPERTY_DELAY_LEVEL, "REAL_TOPIC", "REAL_QID", "__STARTDELIVERTIME", "TIMER_DELIVER_MS", "TIMER_DELAY_SEC",
    "TIMER_DELAY_MS", "TIMER_ENQUEUE_MS", "TIMER_DEQUEUE_MS", "TIMER_ROLL_TIMES", "TIMER_OUT_MS", "TIMER_DEL_UNIQKEY",
})
STAMPED_PER_SEND: Final = frozenset({
    "CLUSTER", PROPERTY_WAIT_STORE_MSG_OK,  # the broker's cluster name; the producer's store-wait flag
    PROPERTY_UNIQ_KEY, PROPERTY_TAGS, PROPERTY_KEYS,  # carried by Message's own fields
})
DROPPED_PROPERTIES: Final = RETRY_BOOKKEEPING | SCHEDULING | STAMPED_PER_SEND


class NoOriginalTopic(ValueError):
    """The dead letter does not say where it came from, and the redrive names no target topic."""


def redrive_message(message: MessageExt, target_topic: str | None = None) -> Message:
    """What to send for `message` (send it with `msg_id=message.msg_id` to keep its id)."""
    topic = target_topic or original_topic(message)
    if topic.startswith((RETRY_TOPIC_PREFIX, DLQ_TOPIC_PREFIX)):
        raise NoOriginalTopic(f"message {message.msg_id} has no {PROPERTY_RETRY_TOPIC} property naming its topic; "
                              "set spec.redrive.targetTopic")
    keys = message.properties.get(PROPERTY_KEYS)
    properties = {key: value for key, value in message.properties.items() if key not in DROPPED_PROPERTIES}
    return Message(topic, message.body, tags=message.tags, keys=keys.split(" ") if keys else (),
                   properties=properties, flag=message.flag)
