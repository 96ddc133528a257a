"""A pending dead letter as `dlq list` shows it and `dlq export` writes it: the failure bookkeeping named, the body
and every property kept byte for byte."""

import base64
import json
from datetime import UTC, datetime

from rocketmq_retry.domain.browsing import COLUMNS, DeadLetter, record, row
from rocketmq_retry.remoting.message import HostPort, MessageExt

STORED = datetime(2026, 5, 1, 8, 30, 15, 123000, tzinfo=UTC)
BODY = b"\x00\xff not UTF-8 \xc3"


def dead_letter(**properties: str) -> DeadLetter:
    message = MessageExt(topic="%DLQ%orders", body=BODY, queue_id=1, queue_offset=42, reconsume_times=3, flag=7,
                         commit_log_offset=4096, store_host=HostPort("10.0.0.5", 10911),
                         store_timestamp=int(STORED.timestamp() * 1000),
                         properties={"UNIQ_KEY": "7F0000010001AB2C0000000000000001", "KEYS": "order-1 order-2",
                                     "TAGS": "paid", "RETRY_TOPIC": "orders", "région": "é", **properties})
    return DeadLetter("broker-b", message)


def test_a_row_names_the_failure_bookkeeping_the_message_carries() -> None:
    pop = dead_letter(ORIGIN_MESSAGE_ID="0A00000500002A9F0000000000000400", MAX_RECONSUME_TIMES="3",
                      DLQ_ORIGIN_TOPIC="orders", DLQ_ORIGIN_MSG_ID="7F0000010001AB2C0000000000000001")
    assert len(row(pop)) == len(COLUMNS)
    assert dict(zip(COLUMNS, row(pop), strict=True)) == {
        "ID": "7F0000010001AB2C0000000000000001", "KEYS": "order-1 order-2", "TAGS": "paid",
        "STORED": "2026-05-01T08:30:15.123Z", "RECONSUMED": "3", "ORIGINAL TOPIC": "orders",
        "BROKER/QUEUE/OFFSET": "broker-b/1/42",
        "FAILURE": "ORIGIN_MESSAGE_ID=0A00000500002A9F0000000000000400 MAX_RECONSUME_TIMES=3 "
                   "DLQ_ORIGIN_TOPIC=orders DLQ_ORIGIN_MSG_ID=7F0000010001AB2C0000000000000001"}
    assert row(dead_letter())[-1] == ""  # nothing to show for a message without bookkeeping


def test_a_record_round_trips_through_json_with_its_body_and_every_property() -> None:
    dead = dead_letter(ORIGIN_MESSAGE_ID="0A00000500002A9F0000000000000400", MAX_RECONSUME_TIMES="16")
    line = json.dumps(record(dead), ensure_ascii=False)
    assert "\n" not in line  # one dead letter, one line
    found = json.loads(line)
    assert base64.b64decode(found["body"]) == BODY
    assert found["properties"] == dead.message.properties
    assert found == {
        "msgId": "7F0000010001AB2C0000000000000001", "offsetMsgId": dead.message.offset_msg_id,
        "keys": ["order-1", "order-2"], "tags": "paid", "storeTime": "2026-05-01T08:30:15.123Z", "reconsumeTimes": 3,
        "originalTopic": "orders", "broker": "broker-b", "queueId": 1, "queueOffset": 42,
        "originMessageId": "0A00000500002A9F0000000000000400", "maxReconsumeTimes": 16, "dlqOriginTopic": None,
        "dlqOriginMessageId": None, "flag": 7, "properties": found["properties"], "body": found["body"]}


def test_a_record_has_every_key_even_when_the_message_lacks_the_field() -> None:
    bare = DeadLetter("broker-a", MessageExt(topic="%DLQ%orders", body=b""))
    found = record(bare)
    assert set(found) == set(record(dead_letter()))
    assert (found["keys"], found["tags"], found["originalTopic"], found["maxReconsumeTimes"], found["body"]) == (
        [], None, "%DLQ%orders", None, "")
