"""The message a redrive re-sends for a dead letter."""

import pytest

from rocketmq_retry.remoting.message import MessageExt
from rocketmq_retry.remoting.redriving import DROPPED_PROPERTIES, NoOriginalTopic, Redriven, redrive_message
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
    assert redrive_message(message) == Redriven(Message("orders", b'{"order": 17}', tags="created",
                                                        keys=["order-17", "customer-3"],
                                                        properties={"tenant": "acme", "trace": "x-1"}, flag=8))
    assert message.msg_id == "7F00000100012A9F0000000000000001"  # the id to send it with


def test_the_wire_properties_are_the_original_ones_minus_bookkeeping() -> None:
    message = dead_letter()
    wire = redrive_message(message).message.wire_properties(message.msg_id)
    kept = {key: value for key, value in message.properties.items() if key not in DROPPED_PROPERTIES}
    assert wire == {**kept, "UNIQ_KEY": message.msg_id, "KEYS": "order-17 customer-3", "TAGS": "created",
                    "WAIT": "true"}


def test_a_target_topic_wins() -> None:
    assert redrive_message(dead_letter(), "orders_replay").message.topic == "orders_replay"


def test_a_message_without_origin_needs_a_target() -> None:
    orphan = dead_letter()
    del orphan.properties["RETRY_TOPIC"]
    with pytest.raises(NoOriginalTopic, match="targetTopic"):
        redrive_message(orphan)
    assert redrive_message(orphan, "orders").message.topic == "orders"
    with pytest.raises(NoOriginalTopic):
        redrive_message(orphan, group="g")


def test_no_keys_no_tags() -> None:
    bare = MessageExt(topic="%DLQ%g", body=b"", properties={"RETRY_TOPIC": "t"})
    assert redrive_message(bare) == Redriven(Message("t", b""))


def test_to_one_group_it_is_a_first_retry_of_the_original_topic_in_the_groups_retry_topic() -> None:
    message = dead_letter()
    redriven = redrive_message(message, group="payments")
    assert redriven.message == Message("%RETRY%payments", b'{"order": 17}', tags="created",
                                       keys=["order-17", "customer-3"], flag=8,
                                       properties={"tenant": "acme", "trace": "x-1", "RETRY_TOPIC": "orders",
                                                   "ORIGIN_MESSAGE_ID": "7F000001ABC"})
    # Reconsume times 0 restarts the ladder; the limit lets the send past the broker's dead-letter check.
    assert (redriven.reconsume_times, redriven.max_reconsume_times) == (0, 1)


def test_to_one_group_a_target_topic_is_the_topic_its_consumers_see() -> None:
    redriven = redrive_message(dead_letter(), "orders_replay", group="payments")
    assert (redriven.message.topic, redriven.message.properties["RETRY_TOPIC"]) == ("%RETRY%payments",
                                                                                    "orders_replay")


def test_to_one_group_a_dead_letter_without_an_origin_id_keeps_its_own_as_the_origin() -> None:
    message = dead_letter()
    del message.properties["ORIGIN_MESSAGE_ID"]
    assert redrive_message(message, group="g").message.properties["ORIGIN_MESSAGE_ID"] == message.msg_id
