"""The message a redrive re-sends for a dead letter."""

import pytest

from rocketmq_retry.remoting.message import MessageExt
from rocketmq_retry.remoting.redriving import DROPPED_PROPERTIES, NoOriginalTopic, redrive_message
from rocketmq_retry.remoting.sending import Message


def dead_letter(**properties: str) -> MessageExt:
    """A dead letter as a 5.x broker stores it after a consumer gave up on it."""
    stored = {"UNIQ_KEY": "7F00000100012A9F0000000000000001", "KEYS": "order-17 customer-3", "TAGS": "created",
              "WAIT": "true", "CLUSTER": "bed", "RETRY_TOPIC": "orders", "ORIGIN_MESSAGE_ID": "7F000001ABC",
              "RECONSUME_TIME": "3", "MAX_RECONSUME_TIMES": "2", "DELAY": "5", "REAL_TOPIC": "%RETRY%g",
              "REAL_QID": "0", "TIMER_DELIVER_MS": "1700000000000", "tenant": "acme", "trace": "x-1"}
    return MessageExt(topic="%DLQ%g", body=b'{"order": 17}', properties={**stored, **properties}, flag=8,
                      reconsume_times=3)


def test_the_original_topic_id_keys_tags_body_and_user_properties_are_kept() -> None:
    message = dead_letter()
    assert redrive_message(message) == Message("orders", b'{"order": 17}', tags="created",
                                               keys=["order-17", "customer-3"],
                                               properties={"tenant": "acme", "trace": "x-1"}, flag=8)
    assert message.msg_id == "7F00000100012A9F0000000000000001"  # the id to send it with


def test_the_wire_properties_are_the_original_ones_minus_bookkeeping() -> None:
    message = dead_letter()
    wire = redrive_message(message).wire_properties(message.msg_id)
    kept = {key: value for key, value in message.properties.items() if key not in DROPPED_PROPERTIES}
    assert wire == {**kept, "UNIQ_KEY": message.msg_id, "KEYS": "order-17 customer-3", "TAGS": "created",
                    "WAIT": "true"}


def test_a_target_topic_wins() -> None:
    assert redrive_message(dead_letter(), "orders_replay").topic == "orders_replay"


def test_a_message_without_origin_needs_a_target() -> None:
    orphan = dead_letter()
    del orphan.properties["RETRY_TOPIC"]
    with pytest.raises(NoOriginalTopic, match="targetTopic"):
        redrive_message(orphan)
    assert redrive_message(orphan, "orders").topic == "orders"


def test_no_keys_no_tags() -> None:
    bare = MessageExt(topic="%DLQ%g", body=b"", properties={"RETRY_TOPIC": "t"})
    assert redrive_message(bare) == Message("t", b"")
