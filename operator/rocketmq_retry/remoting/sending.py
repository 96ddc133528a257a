"""SEND_MESSAGE_V2 requests and their answers, pure: what a producer puts on the wire and reads back.

Bodies are sent uncompressed (Java compresses bodies over 4 KiB; brokers and consumers accept both).
The client message id (UNIQ_KEY) is set here, as the Java client does, so a message keeps one id
through retries, the retry topic and the dead-letter queue.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

from .codes import DEFAULT_TOPIC, RequestCode, ResponseCode
from .errors import BrokerError, MalformedBody
from .frame import RemotingCommand
from .message import PROPERTY_KEYS, PROPERTY_TAGS, PROPERTY_UNIQ_KEY, encode_properties
from .routing import MessageQueue

PROPERTY_WAIT_STORE_MSG_OK: Final = "WAIT"
DEFAULT_TOPIC_QUEUE_NUMS: Final = 4

# DefaultMQProducer.retryResponseCodes (5.x): answers after which the next attempt goes to another broker.
RETRYABLE_RESPONSE_CODES: Final = frozenset({
    ResponseCode.TOPIC_NOT_EXIST, ResponseCode.SERVICE_NOT_AVAILABLE, ResponseCode.SYSTEM_ERROR,
    ResponseCode.SYSTEM_BUSY, ResponseCode.NO_PERMISSION, 204, 205, ResponseCode.GO_AWAY,
})


class SendStatus(StrEnum):
    """How a stored message was stored; anything but SEND_OK is still stored, only less durably."""

    SEND_OK = "SEND_OK"
    FLUSH_DISK_TIMEOUT = "FLUSH_DISK_TIMEOUT"
    FLUSH_SLAVE_TIMEOUT = "FLUSH_SLAVE_TIMEOUT"
    SLAVE_NOT_AVAILABLE = "SLAVE_NOT_AVAILABLE"


_STATUS_BY_CODE: Final[dict[int, SendStatus]] = {
    ResponseCode.SUCCESS: SendStatus.SEND_OK,
    ResponseCode.FLUSH_DISK_TIMEOUT: SendStatus.FLUSH_DISK_TIMEOUT,
    ResponseCode.FLUSH_SLAVE_TIMEOUT: SendStatus.FLUSH_SLAVE_TIMEOUT,
    ResponseCode.SLAVE_NOT_AVAILABLE: SendStatus.SLAVE_NOT_AVAILABLE,
}


@dataclass(frozen=True)
class Message:
    """A message to send. `properties` are user properties; tags, keys and the id have their own fields."""

    topic: str
    body: bytes
    tags: str | None = None
    keys: Sequence[str] = ()
    properties: Mapping[str, str] = field(default_factory=dict)
    flag: int = 0

    def wire_properties(self, msg_id: str) -> dict[str, str]:
        properties = {**self.properties, PROPERTY_UNIQ_KEY: msg_id, PROPERTY_WAIT_STORE_MSG_OK: "true"}
        if self.tags:
            properties[PROPERTY_TAGS] = self.tags
        if self.keys:
            properties[PROPERTY_KEYS] = " ".join(self.keys)
        return properties


@dataclass(frozen=True)
class SendReceipt:
    """The broker's answer to one successful attempt."""

    status: SendStatus
    offset_msg_id: str
    queue: MessageQueue
    queue_offset: int
    region: str | None


def send_request(message: Message, queue: MessageQueue, *, producer_group: str, msg_id: str, born_ms: int,
                 reconsume_times: int | None = None, max_reconsume_times: int | None = None) -> RemotingCommand:
    """SEND_MESSAGE_V2 with the one-letter header keys of `SendMessageRequestHeaderV2`.

    `reconsume_times`/`max_reconsume_times` matter only for sends to a `%RETRY%` topic, where the broker
    applies its dead-letter rule to them.
    """
    ext = {
        "a": producer_group, "b": queue.topic, "c": DEFAULT_TOPIC, "d": str(DEFAULT_TOPIC_QUEUE_NUMS),
        "e": str(queue.queue_id), "f": "0", "g": str(born_ms), "h": str(message.flag),
        "i": encode_properties(message.wire_properties(msg_id)), "k": "false", "m": "false",
        "n": queue.broker_name,
    }
    if reconsume_times is not None:
        ext["j"] = str(reconsume_times)
    if max_reconsume_times is not None:
        ext["l"] = str(max_reconsume_times)
    return RemotingCommand(code=RequestCode.SEND_MESSAGE_V2, ext_fields=ext, body=message.body)


def send_receipt(response: RemotingCommand, queue: MessageQueue, addr: str) -> SendReceipt:
    """The receipt of a stored message; BrokerError for every answer that means "not stored"."""
    status = _STATUS_BY_CODE.get(response.code)
    if status is None:
        raise BrokerError(response.code, response.remark, RequestCode.SEND_MESSAGE_V2, addr)
    ext = response.ext_fields
    try:
        queue_id, queue_offset = int(ext["queueId"]), int(ext["queueOffset"])
        offset_msg_id = ext["msgId"]
    except (KeyError, ValueError):
        raise MalformedBody(f"send response lacks msgId/queueId/queueOffset: {ext}") from None
    return SendReceipt(status, offset_msg_id, MessageQueue(queue.topic, queue.broker_name, queue_id), queue_offset,
                       ext.get("MSG_REGION"))
