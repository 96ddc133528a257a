"""The message a redrive sends for a dead letter, pure: same id, keys, tags, body, flag and user properties.

The message id (UNIQ_KEY) is kept: consumers that de-duplicate by id recognise a redriven message, and the id a user
saw in the dead-letter queue is the id the consumer gets. Dropped are only the properties that the broker and the
clients use to route retries and dead letters, to schedule delivery, or that every send stamps anew; the broker
sets fresh retry bookkeeping if the message fails again, and the message is delivered at once, not after its
original delay.

Sent to one group (`group=`), the message goes to `%RETRY%<group>` as a retry the broker stored itself would: it
carries RETRY_TOPIC (the topic the push consumer restores before its listener sees the message,
DefaultMQPushConsumerImpl.resetRetryAndNamespace) and ORIGIN_MESSAGE_ID (the id the broker keeps through further
send-backs, SendMessageProcessor.consumerSendMsgBack), and is sent with reconsume times 0, so that the group retries
it on its whole ladder again.
"""

from typing import Final, NamedTuple

from .message import (
    PROPERTY_DELAY_LEVEL,
    PROPERTY_DLQ_ORIGIN_MESSAGE_ID,
    PROPERTY_DLQ_ORIGIN_TOPIC,
    PROPERTY_KEYS,
    PROPERTY_MAX_RECONSUME_TIMES,
    PROPERTY_ORIGIN_MESSAGE_ID,
    PROPERTY_RECONSUME_TIME,
    PROPERTY_RETRY_TOPIC,
    PROPERTY_TAGS,
    PROPERTY_UNIQ_KEY,
    MessageExt,
)
from .pulling import DLQ_TOPIC_PREFIX, RETRY_TOPIC_PREFIX, original_topic, retry_topic
from .sending import PROPERTY_WAIT_STORE_MSG_OK, Message

RETRY_BOOKKEEPING: Final = frozenset({
    PROPERTY_RETRY_TOPIC, PROPERTY_ORIGIN_MESSAGE_ID, PROPERTY_RECONSUME_TIME, PROPERTY_MAX_RECONSUME_TIMES,
    PROPERTY_DLQ_ORIGIN_TOPIC, PROPERTY_DLQ_ORIGIN_MESSAGE_ID,
})
SCHEDULING: Final = frozenset({
    PROPERTY_DELAY_LEVEL, "REAL_TOPIC", "REAL_QID", "__STARTDELIVERTIME", "TIMER_DELIVER_MS", "TIMER_DELAY_SEC",
    "TIMER_DELAY_MS", "TIMER_ENQUEUE_MS", "TIMER_DEQUEUE_MS", "TIMER_ROLL_TIMES", "TIMER_OUT_MS", "TIMER_DEL_UNIQKEY",
})
# A copy must not become what its original was on the way: a half message (TRAN_MSG, which committed transactional
# messages keep: the 4.9.7 broker would store the send as prepared), a batch (INNER_NUM/INNER_BASE, which 5.x stores
# refuse on a single message), a pop-consumer check point, or a delivery whose consume began long ago
# (CONSUME_START_TIME: the push consumer would take it for timed out), and pull responses' stamps.
DELIVERY_STATE: Final = frozenset({
    "TRAN_MSG", "INNER_NUM", "INNER_BASE", "POP_CK", "1ST_POP_TIME", "ORIGIN_GROUP", "CONSUME_START_TIME",
    "MIN_OFFSET", "MAX_OFFSET",
})
STAMPED_PER_SEND: Final = frozenset({
    "CLUSTER", PROPERTY_WAIT_STORE_MSG_OK,  # the broker's cluster name; the producer's store-wait flag
    PROPERTY_UNIQ_KEY, PROPERTY_TAGS, PROPERTY_KEYS,  # carried by Message's own fields
})
DROPPED_PROPERTIES: Final = RETRY_BOOKKEEPING | SCHEDULING | DELIVERY_STATE | STAMPED_PER_SEND
RETRY_START: Final = 0  # reconsume times of the copy in the retry topic: the group's ladder starts again
# The send's own dead-letter check (SendMessageProcessor.handleRetryAndDLQ) dead-letters a retry-topic send whose
# reconsume times reach (4.9.7) or pass (5.x) the header's maxReconsumeTimes, else the group's retryMaxTimes, which
# may be 0; the copy must pass it, and the header is not stored. (5.1.1+ brokers also dead-letter every retry-topic
# send while an orderly consumer of the group holds a queue lock: an orderly group cannot be redriven this way.)
RETRY_SEND_LIMIT: Final = RETRY_START + 1


class NoOriginalTopic(ValueError):
    """The dead letter does not say where it came from, and the redrive names no target topic."""


class Redriven(NamedTuple):
    """A send of a redrive: the message, and the retry fields of its send header (None: a plain send)."""

    message: Message
    reconsume_times: int | None = None
    max_reconsume_times: int | None = None


def redrive_message(message: MessageExt, target_topic: str | None = None, *, group: str | None = None) -> Redriven:
    """What to send for `message` (send it with `msg_id=message.msg_id` to keep its id): to `target_topic` or the
    topic it was first sent to, or with `group` to that group's retry topic, as a retry of that topic."""
    topic = target_topic or original_topic(message)
    if topic.startswith((RETRY_TOPIC_PREFIX, DLQ_TOPIC_PREFIX)):
        raise NoOriginalTopic(f"message {message.msg_id} has no {PROPERTY_RETRY_TOPIC} property naming its topic; "
                              "set spec.redrive.targetTopic")
    keys = message.properties.get(PROPERTY_KEYS)
    properties = {key: value for key, value in message.properties.items() if key not in DROPPED_PROPERTIES}
    if group is None:
        return Redriven(Message(topic, message.body, tags=message.tags, keys=keys.split(" ") if keys else (),
                                properties=properties, flag=message.flag))
    origin = message.properties.get(PROPERTY_ORIGIN_MESSAGE_ID) or message.msg_id
    properties |= {PROPERTY_RETRY_TOPIC: topic, PROPERTY_ORIGIN_MESSAGE_ID: origin}
    return Redriven(Message(retry_topic(group), message.body, tags=message.tags, keys=keys.split(" ") if keys else (),
                            properties=properties, flag=message.flag), RETRY_START, RETRY_SEND_LIMIT)
