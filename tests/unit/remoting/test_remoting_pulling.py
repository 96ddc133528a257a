"""Pull, send-back and heartbeat requests and the pull and send answers, pure."""

import json

import pytest

from rocketmq_retry.remoting.codes import PullSysFlag, RequestCode, ResponseCode
from rocketmq_retry.remoting.errors import BrokerError, MalformedBody
from rocketmq_retry.remoting.frame import RemotingCommand
from rocketmq_retry.remoting.message import MessageExt, encode_message
from rocketmq_retry.remoting.pulling import (
    PullStatus,
    heartbeat_request,
    original_topic,
    pull_request,
    pull_result,
    send_back_request,
)
from rocketmq_retry.remoting.routing import MessageQueue
from rocketmq_retry.remoting.sending import SendStatus, send_receipt

QUEUE = MessageQueue("T", "broker-a", 3)


def test_pull_always_carries_its_subscription_and_flags_what_is_asked() -> None:
    plain = pull_request("G", QUEUE, 7)
    assert plain.code == RequestCode.PULL_MESSAGE
    assert int(plain.ext_fields["sysFlag"]) == PullSysFlag.SUBSCRIPTION
    assert (plain.ext_fields["queueId"], plain.ext_fields["queueOffset"], plain.ext_fields["subscription"]) == (
        "3", "7", "*")
    polling = pull_request("G", QUEUE, 7, commit_offset=5, suspend_ms=1000)
    flags = PullSysFlag(int(polling.ext_fields["sysFlag"]))
    assert flags == PullSysFlag.SUBSCRIPTION | PullSysFlag.COMMIT_OFFSET | PullSysFlag.SUSPEND
    assert (polling.ext_fields["commitOffset"], polling.ext_fields["suspendTimeoutMillis"]) == ("5", "1000")


def _pull_response(code: int, body: bytes = b"") -> RemotingCommand:
    return RemotingCommand(code=code, flag=1, body=body,
                           ext_fields={"nextBeginOffset": "9", "minOffset": "0", "maxOffset": "9"})


@pytest.mark.parametrize(("code", "status"), [
    (ResponseCode.PULL_NOT_FOUND, PullStatus.NO_NEW_MSG),
    (ResponseCode.PULL_RETRY_IMMEDIATELY, PullStatus.NO_MATCHED_MSG),
    (ResponseCode.PULL_OFFSET_MOVED, PullStatus.OFFSET_ILLEGAL)])
def test_empty_pull_statuses_keep_the_next_offset(code: int, status: PullStatus) -> None:
    result = pull_result(_pull_response(code), "a:1")
    assert (result.status, result.next_begin_offset, result.messages) == (status, 9, ())


def test_found_pull_decodes_its_messages() -> None:
    stored = MessageExt(topic="T", body=b"hello", properties={"UNIQ_KEY": "ID1"}, queue_offset=8)
    result = pull_result(_pull_response(ResponseCode.SUCCESS, encode_message(stored)), "a:1")
    assert result.status is PullStatus.FOUND
    assert [(m.msg_id, m.body) for m in result.messages] == [("ID1", b"hello")]


def test_pull_errors_and_missing_offsets_are_typed() -> None:
    with pytest.raises(BrokerError, match=r"PULL_MESSAGE\(11\) failed with SUBSCRIPTION_GROUP_NOT_EXIST\(26\)"):
        pull_result(RemotingCommand(code=26, flag=1), "a:1")
    with pytest.raises(MalformedBody, match="lacks its offsets"):
        pull_result(RemotingCommand(code=ResponseCode.PULL_NOT_FOUND, flag=1), "a:1")


def test_send_back_names_the_stored_message_and_omits_the_client_limit_unless_asked() -> None:
    retried = MessageExt(topic="%RETRY%G", body=b"", commit_log_offset=4096,
                         properties={"UNIQ_KEY": "ID1", "RETRY_TOPIC": "Orders"})
    assert original_topic(retried) == "Orders"
    request = send_back_request(retried, "G")
    assert request.code == RequestCode.CONSUMER_SEND_MSG_BACK
    assert request.ext_fields == {"offset": "4096", "group": "G", "delayLevel": "0", "originMsgId": "ID1",
                                  "originTopic": "Orders", "unitMode": "false"}
    overriding = send_back_request(retried, "G", max_reconsume_times=16, delay_level=-1, broker_name="b")
    assert (overriding.ext_fields["maxReconsumeTimes"], overriding.ext_fields["delayLevel"],
            overriding.ext_fields["bname"]) == ("16", "-1", "b")


def test_heartbeat_registers_a_pull_consumer_without_a_v2_fingerprint() -> None:
    body = json.loads(heartbeat_request("client-1", "G", ["T", "%RETRY%G"], sub_version=5).body)
    [consumer] = body["consumerDataSet"]
    assert (consumer["groupName"], consumer["consumeType"], consumer["messageModel"]) == (
        "G", "CONSUME_ACTIVELY", "CLUSTERING")
    assert [s["topic"] for s in consumer["subscriptionDataSet"]] == ["T", "%RETRY%G"]
    assert "heartbeatFingerprint" not in body


def test_send_receipts_map_stored_codes_and_refuse_the_rest() -> None:
    answer = RemotingCommand(code=ResponseCode.FLUSH_DISK_TIMEOUT, flag=1,
                             ext_fields={"msgId": "M", "queueId": "1", "queueOffset": "2", "MSG_REGION": "r"})
    receipt = send_receipt(answer, QUEUE, "a:1")
    assert (receipt.status, receipt.queue.queue_id, receipt.queue_offset, receipt.region) == (
        SendStatus.FLUSH_DISK_TIMEOUT, 1, 2, "r")
    with pytest.raises(BrokerError, match="SERVICE_NOT_AVAILABLE"):
        send_receipt(RemotingCommand(code=ResponseCode.SERVICE_NOT_AVAILABLE, flag=1), QUEUE, "a:1")
    with pytest.raises(MalformedBody):
        send_receipt(RemotingCommand(code=ResponseCode.SUCCESS, flag=1), QUEUE, "a:1")
