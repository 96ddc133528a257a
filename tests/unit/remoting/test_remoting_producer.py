"""The producer's send semantics against scripted name server and brokers: failover, retry codes, the budget."""

import asyncio
import json
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from remoting_support import Behaviour, FakePeer

from rocketmq_retry.remoting.codes import RequestCode, ResponseCode
from rocketmq_retry.remoting.connection import ConnectionPool
from rocketmq_retry.remoting.frame import RemotingCommand, encode
from rocketmq_retry.remoting.message import decode_properties
from rocketmq_retry.remoting.producer import Producer, SendFailed
from rocketmq_retry.remoting.sending import Message, SendStatus

PeerFactory = Callable[[Behaviour], Awaitable[FakePeer]]


def _closed_port_addr() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{probe.getsockname()[1]}"


def _name_server(brokers: dict[str, str]) -> Behaviour:
    route = {"brokerDatas": [{"brokerAddrs": {"0": addr}, "brokerName": name, "cluster": "c"}
                             for name, addr in brokers.items()],
             "queueDatas": [{"brokerName": name, "perm": 6, "readQueueNums": 1, "writeQueueNums": 1,
                             "topicSysFlag": 0} for name in brokers]}

    async def behaviour(request: RemotingCommand, writer: asyncio.StreamWriter) -> None:
        response = request.response(ResponseCode.SUCCESS)
        response.body = json.dumps(route).encode()
        writer.write(encode(response))

    return behaviour


def _broker(code: int = ResponseCode.SUCCESS, *, delay: float = 0.0) -> Behaviour:
    async def behaviour(request: RemotingCommand, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(delay)
        response = request.response(code, None if code == ResponseCode.SUCCESS else "scripted refusal")
        response.ext_fields = {"msgId": "7F00000100002A9F0000000000000000", "queueId": request.ext_fields["e"],
                               "queueOffset": "41"}
        writer.write(encode(response))

    return behaviour


async def _producer(pool: ConnectionPool, fake_peer: PeerFactory, brokers: dict[str, str], **options: Any
                    ) -> Producer:
    name_server = await fake_peer(_name_server(brokers))
    return Producer(pool, [name_server.addr], **options)


async def test_request_carries_topic_queue_body_and_a_stable_client_id(fake_peer: PeerFactory) -> None:
    broker = await fake_peer(_broker())
    async with ConnectionPool() as pool:
        producer = await _producer(pool, fake_peer, {"a": broker.addr})
        result = await producer.send(Message("T", b"payload", tags="t1", keys=["k1", "k2"], properties={"p": "v"}))
    [request] = broker.received
    assert request.code == RequestCode.SEND_MESSAGE_V2
    assert (request.ext_fields["b"], request.ext_fields["e"], request.ext_fields["n"], request.body) == (
        "T", "0", "a", b"payload")
    properties = decode_properties(request.ext_fields["i"])
    assert properties == {"p": "v", "UNIQ_KEY": result.msg_id, "WAIT": "true", "TAGS": "t1", "KEYS": "k1 k2"}
    assert "l" not in request.ext_fields
    assert (result.status, result.receipt.queue_offset, result.brokers_tried) == (SendStatus.SEND_OK, 41, ["a"])


async def test_a_given_message_id_is_kept(fake_peer: PeerFactory) -> None:
    broker = await fake_peer(_broker())
    async with ConnectionPool() as pool:
        producer = await _producer(pool, fake_peer, {"a": broker.addr})
        result = await producer.send(Message("T", b"again"), msg_id="7F0000010001000000000000000A0001")
    assert result.msg_id == "7F0000010001000000000000000A0001"
    assert decode_properties(broker.received[0].ext_fields["i"])["UNIQ_KEY"] == result.msg_id


async def test_a_dead_broker_costs_one_attempt_then_the_send_lands_on_another(fake_peer: PeerFactory) -> None:
    live = await fake_peer(_broker())
    async with ConnectionPool(connect_timeout=1) as pool:
        producer = await _producer(pool, fake_peer, {"dead": _closed_port_addr(), "live": live.addr})
        results = [await producer.send(Message("T", b"x")) for _ in range(6)]
    assert all(r.brokers_tried[-1] == "live" for r in results)
    failovers = [r for r in results if r.brokers_tried == ["dead", "live"]]
    assert failovers, "round robin never chose the dead broker first"
    assert all("connect failed" in (f.attempts[0].error or "") for f in failovers)


async def test_fault_avoidance_skips_the_dead_broker_after_its_first_failure(fake_peer: PeerFactory) -> None:
    live = await fake_peer(_broker())
    async with ConnectionPool(connect_timeout=1) as pool:
        producer = await _producer(pool, fake_peer, {"dead": _closed_port_addr(), "live": live.addr},
                                   latency_fault_enabled=True)
        results = [await producer.send(Message("T", b"x")) for _ in range(8)]
    tried = [r.brokers_tried for r in results]
    first_failure = next((i for i, t in enumerate(tried) if t[0] == "dead"), len(tried))
    assert all(t == ["live"] for t in tried[first_failure + 1:]), tried


async def test_retryable_broker_codes_move_on_and_others_end_the_send(fake_peer: PeerFactory) -> None:
    busy, illegal = await fake_peer(_broker(ResponseCode.SYSTEM_BUSY)), await fake_peer(_broker(13))
    async with ConnectionPool() as pool:
        producer = await _producer(pool, fake_peer, {"busy": busy.addr, "illegal": illegal.addr})
        with pytest.raises(SendFailed) as failed:  # busy first moves on to illegal; illegal first ends at once
            await producer.send(Message("T", b"x"))
    assert failed.value.attempts[-1].broker_name == "illegal"
    assert "MESSAGE_ILLEGAL(13)" in str(failed.value)
    assert [a.broker_name for a in failed.value.attempts] in (["illegal"], ["busy", "illegal"])


async def test_every_attempt_failing_reports_all_of_them(fake_peer: PeerFactory) -> None:
    busy = await fake_peer(_broker(ResponseCode.SYSTEM_BUSY))
    async with ConnectionPool() as pool:
        producer = await _producer(pool, fake_peer, {"busy": busy.addr}, retry_times_when_send_failed=2)
        with pytest.raises(SendFailed, match="every attempt failed") as failed:
            await producer.send(Message("T", b"x"))
    assert [a.broker_name for a in failed.value.attempts] == ["busy"] * 3


async def test_the_send_timeout_bounds_all_attempts_together(fake_peer: PeerFactory) -> None:
    slow = await fake_peer(_broker(delay=2.0))
    async with ConnectionPool() as pool:
        producer = await _producer(pool, fake_peer, {"slow": slow.addr}, send_timeout=0.5)
        with pytest.raises(SendFailed) as failed:
            await producer.send(Message("T", b"x"))
    assert len(failed.value.attempts) == 1
    assert "no response to SEND_MESSAGE_V2(310) within" in (failed.value.attempts[0].error or "")


@pytest.mark.parametrize("retry_another", [False, True])
async def test_a_slave_less_master_s_answer_is_returned_or_sent_again_elsewhere(fake_peer: PeerFactory,
                                                                              retry_another: bool) -> None:
    """SLAVE_NOT_AVAILABLE means stored without a slave's copy: returned as it is (the official default), or, with
    retryAnotherBrokerWhenNotStoreOK, sent again to another broker; every attempt keeps the status it got."""
    lonely, healthy = await fake_peer(_broker(ResponseCode.SLAVE_NOT_AVAILABLE)), await fake_peer(_broker())
    async with ConnectionPool() as pool:
        producer = await _producer(pool, fake_peer, {"lonely": lonely.addr, "healthy": healthy.addr},
                                   retry_another_broker_when_not_store_ok=retry_another)
        results = [await producer.send(Message("T", b"x")) for _ in range(4)]
    answers = {tuple((a.broker_name, a.status) for a in r.attempts) for r in results}
    ok, not_ok = ("healthy", SendStatus.SEND_OK), ("lonely", SendStatus.SLAVE_NOT_AVAILABLE)
    via_lonely = (not_ok, ok) if retry_another else (not_ok,)
    assert via_lonely in answers, "round robin never chose the slave-less master"
    assert answers <= {(ok,), via_lonely}
    assert all(r.status is SendStatus.SEND_OK for r in results) is retry_another
