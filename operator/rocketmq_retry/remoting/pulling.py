"""PULL_MESSAGE, CONSUMER_SEND_MSG_BACK and HEART_BEAT on the wire, pure.

Pulls always carry their subscription (`*`, SUBSCRIPTION flag), so they do not depend on a prior
heartbeat having registered one (a pull without it fails with SUBSCRIPTION_NOT_EXIST).
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from .codes import PullSysFlag, RequestCode, ResponseCode
from .errors import BrokerError, MalformedBody
from .frame import RemotingCommand
from .message import PROPERTY_RETRY_TOPIC, MessageExt, decode_messages
from .routing import MessageQueue

RETRY_TOPIC_PREFIX: Final = "%RETRY%"
DLQ_TOPIC_PREFIX: Final = "%DLQ%"
SUBSCRIBE_ALL: Final = "*"


def retry_topic(group: str) -> str:
    return f"{RETRY_TOPIC_PREFIX}{group}"


def dlq_topic(group: str) -> str:
    return f"{DLQ_TOPIC_PREFIX}{group}"


class PullStatus(StrEnum):
    FOUND = "FOUND"
    NO_NEW_MSG = "NO_NEW_MSG"
    NO_MATCHED_MSG = "NO_MATCHED_MSG"
    OFFSET_ILLEGAL = "OFFSET_ILLEGAL"


_STATUS_BY_CODE: Final[dict[int, PullStatus]] = {
    ResponseCode.SUCCESS: PullStatus.FOUND,
    ResponseCode.PULL_NOT_FOUND: PullStatus.NO_NEW_MSG,
    ResponseCode.PULL_RETRY_IMMEDIATELY: PullStatus.NO_MATCHED_MSG,
    ResponseCode.PULL_OFFSET_MOVED: PullStatus.OFFSET_ILLEGAL,
}


@dataclass(frozen=True)
class PullResult:
    """`next_begin_offset` is where to pull next for every status (the corrected offset for OFFSET_ILLEGAL)."""

    status: PullStatus
    next_begin_offset: int
    min_offset: int
    max_offset: int
    messages: tuple[MessageExt, ...]


def pull_request(group: str, queue: MessageQueue, offset: int, *, max_messages: int = 32,
                 commit_offset: int | None = None, suspend_ms: int = 0, sub_version: int = 0) -> RemotingCommand:
    """Pull from `offset`; `commit_offset` also stores the group's offset, `suspend_ms` > 0 long-polls."""
    flags = PullSysFlag.SUBSCRIPTION
    flags |= PullSysFlag.COMMIT_OFFSET if commit_offset is not None else 0
    flags |= PullSysFlag.SUSPEND if suspend_ms > 0 else 0
    ext = {"consumerGroup": group, "topic": queue.topic, "queueId": str(queue.queue_id), "queueOffset": str(offset),
           "maxMsgNums": str(max_messages), "sysFlag": str(int(flags)), "commitOffset": str(commit_offset or 0),
           "suspendTimeoutMillis": str(suspend_ms), "subscription": SUBSCRIBE_ALL, "subVersion": str(sub_version),
           "expressionType": "TAG", "bname": queue.broker_name}
    return RemotingCommand(code=RequestCode.PULL_MESSAGE, ext_fields=ext)


def pull_result(response: RemotingCommand, addr: str) -> PullResult:
    status = _STATUS_BY_CODE.get(response.code)
    if status is None:
        raise BrokerError(response.code, response.remark, RequestCode.PULL_MESSAGE, addr)
    try:
        next_begin, low, high = (int(response.ext_fields[key]) for key in ("nextBeginOffset", "minOffset", "maxOffset"))
    except (KeyError, ValueError):
        raise MalformedBody(f"pull response lacks its offsets: {response.ext_fields}") from None
    messages = tuple(decode_messages(response.body)) if status is PullStatus.FOUND else ()
    return PullResult(status, next_begin, low, high, messages)


def original_topic(message: MessageExt) -> str:
    """The topic a retried or dead-lettered message was first sent to (the broker records it on first send-back)."""
    return message.properties.get(PROPERTY_RETRY_TOPIC, message.topic)


def send_back_request(message: MessageExt, group: str, *, delay_level: int = 0,
                      max_reconsume_times: int | None = None, broker_name: str | None = None) -> RemotingCommand:
    """Hand a failed message back to the broker that stored it (found by its commit-log offset).

    `delay_level` 0 lets the broker choose level 3 + reconsume times; a negative level sends the message
    straight to the dead-letter queue. Without `max_reconsume_times` the broker applies the group's
    `retryMaxTimes`; with it (as every Java push consumer sends, 16 by default) the group setting is overridden.
    """
    ext = {"offset": str(message.commit_log_offset), "group": group, "delayLevel": str(delay_level),
           "originMsgId": message.msg_id, "originTopic": original_topic(message), "unitMode": "false"}
    if max_reconsume_times is not None:
        ext["maxReconsumeTimes"] = str(max_reconsume_times)
    if broker_name is not None:
        ext["bname"] = broker_name
    return RemotingCommand(code=RequestCode.CONSUMER_SEND_MSG_BACK, ext_fields=ext)


class ConsumeFromWhere(StrEnum):
    LAST_OFFSET = "CONSUME_FROM_LAST_OFFSET"
    FIRST_OFFSET = "CONSUME_FROM_FIRST_OFFSET"


def heartbeat_request(client_id: str, group: str, topics: Sequence[str], *, sub_version: int,
                      consume_from: ConsumeFromWhere = ConsumeFromWhere.FIRST_OFFSET) -> RemotingCommand:
    """Register a pull (CONSUME_ACTIVELY) clustering consumer of `topics`; creates the group where auto-create is on.

    `heartbeatFingerprint` is left out: a non-zero value switches 5.x brokers to the V2 heartbeat protocol.
    """
    subscriptions = [{"topic": topic, "subString": SUBSCRIBE_ALL, "tagsSet": [], "codeSet": [],
                      "subVersion": sub_version, "expressionType": "TAG", "classFilterMode": False}
                     for topic in topics]
    body = {"clientID": client_id, "producerDataSet": [],
            "consumerDataSet": [{"groupName": group, "consumeType": "CONSUME_ACTIVELY", "messageModel": "CLUSTERING",
                                 "consumeFromWhere": consume_from.value, "unitMode": False,
                                 "subscriptionDataSet": subscriptions}]}
    return RemotingCommand(code=RequestCode.HEART_BEAT, body=json.dumps(body, separators=(",", ":")).encode())
