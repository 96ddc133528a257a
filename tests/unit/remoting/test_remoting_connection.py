"""Connection and pool behaviour against a scripted in-process peer."""

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest
from remoting_support import Behaviour, FakePeer

from rocketmq_retry.remoting.acl import Credentials, sign_fields
from rocketmq_retry.remoting.codes import CommandFlag, ResponseCode
from rocketmq_retry.remoting.connection import Connection, ConnectionPool
from rocketmq_retry.remoting.errors import ConnectionFailed, RemotingTimeout
from rocketmq_retry.remoting.frame import RemotingCommand, encode

PeerFactory = Callable[[Behaviour], Awaitable[FakePeer]]


async def _silent(request: RemotingCommand, writer: asyncio.StreamWriter) -> None:
    """Never answers."""


async def _answer(request: RemotingCommand, writer: asyncio.StreamWriter) -> None:
    writer.write(encode(request.response(ResponseCode.SUCCESS)))


async def test_responses_are_matched_by_opaque_even_out_of_order(fake_peer: PeerFactory) -> None:
    held: list[RemotingCommand] = []

    async def answer_in_reverse(request: RemotingCommand, writer: asyncio.StreamWriter) -> None:
        held.append(request)
        if len(held) == 3:
            for r in reversed(held):
                writer.write(encode(r.response(ResponseCode.SUCCESS, remark=r.ext_fields["n"])))

    peer = await fake_peer(answer_in_reverse)
    connection = await Connection.open(peer.addr)
    try:
        answers = await asyncio.gather(*(connection.invoke(RemotingCommand(code=30, ext_fields={"n": str(n)}))
                                         for n in range(3)))
        assert [a.remark for a in answers] == ["0", "1", "2"]
        assert len({r.opaque for r in peer.received}) == 3
    finally:
        await connection.close()


async def test_timeout_releases_the_call_and_the_connection_stays_usable(fake_peer: PeerFactory) -> None:
    async def answer_second_only(request: RemotingCommand, writer: asyncio.StreamWriter) -> None:
        if request.code == 31:
            writer.write(encode(request.response(ResponseCode.SUCCESS)))

    peer = await fake_peer(answer_second_only)
    connection = await Connection.open(peer.addr)
    try:
        with pytest.raises(RemotingTimeout, match=r"GET_MAX_OFFSET\(30\) within 0.2 s"):
            await connection.invoke(RemotingCommand(code=30), timeout=0.2)
        assert connection.pending == 0
        assert (await connection.invoke(RemotingCommand(code=31))).code == ResponseCode.SUCCESS
    finally:
        await connection.close()


async def test_peer_death_fails_every_pending_call_promptly(fake_peer: PeerFactory) -> None:
    peer = await fake_peer(_silent)
    connection = await Connection.open(peer.addr)
    calls = [asyncio.create_task(connection.invoke(RemotingCommand(code=30), timeout=30)) for _ in range(3)]
    await peer.wait_for(3)
    started = time.monotonic()
    peer.drop_connections()
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert all(isinstance(r, ConnectionFailed) for r in results), results
    assert time.monotonic() - started < 5
    assert connection.closed
    with pytest.raises(ConnectionFailed):
        await connection.invoke(RemotingCommand(code=30))


async def test_garbage_from_the_peer_closes_the_connection_with_a_protocol_reason(fake_peer: PeerFactory) -> None:
    async def garbage(request: RemotingCommand, writer: asyncio.StreamWriter) -> None:
        writer.write(b"\x7f\xff\xff\xff")

    peer = await fake_peer(garbage)
    connection = await Connection.open(peer.addr)
    with pytest.raises(ConnectionFailed, match="protocol error"):
        await connection.invoke(RemotingCommand(code=30))
    await connection.close()


async def test_inbound_requests_are_answered_by_handler_or_not_supported(fake_peer: PeerFactory) -> None:
    from_client: list[RemotingCommand] = []
    done = asyncio.Event()

    async def broker(request: RemotingCommand, writer: asyncio.StreamWriter) -> None:
        if not request.is_response:
            for code, flag in ((40, CommandFlag.ONEWAY), (307, 0), (309, 0)):
                writer.write(encode(RemotingCommand(code=code, opaque=request.opaque, flag=flag)))
            return
        from_client.append(request)
        if len(from_client) == 2:
            done.set()

    async def running_info(request: RemotingCommand) -> RemotingCommand:
        return RemotingCommand(code=ResponseCode.SUCCESS, body=b"info")

    peer = await fake_peer(broker)
    connection = await Connection.open(peer.addr, handlers={307: running_info})
    try:
        await connection.invoke_oneway(RemotingCommand(code=34))
        async with asyncio.timeout(5):
            await done.wait()
        answers = {r.body: r for r in from_client}
        assert answers[b"info"].code == ResponseCode.SUCCESS
        assert answers[b""].code == ResponseCode.REQUEST_CODE_NOT_SUPPORTED
        assert all(r.opaque == peer.received[0].opaque for r in from_client)  # echoes the broker's opaque
        assert peer.received[0].is_oneway
        assert connection.pending == 0
    finally:
        await connection.close()


async def test_failing_handler_answers_system_error(fake_peer: PeerFactory) -> None:
    answered = asyncio.Event()
    seen: list[RemotingCommand] = []

    async def broker(request: RemotingCommand, writer: asyncio.StreamWriter) -> None:
        if request.is_response:
            seen.append(request)
            answered.set()
        else:
            writer.write(encode(RemotingCommand(code=307, opaque=5)))

    async def broken(request: RemotingCommand) -> RemotingCommand:
        raise RuntimeError("no info")

    peer = await fake_peer(broker)
    connection = await Connection.open(peer.addr, handlers={307: broken})
    try:
        await connection.invoke_oneway(RemotingCommand(code=34))
        async with asyncio.timeout(5):
            await answered.wait()
        assert (seen[0].code, seen[0].remark) == (ResponseCode.SYSTEM_ERROR, "RuntimeError: no info")
    finally:
        await connection.close()


async def test_close_fails_pending_calls(fake_peer: PeerFactory) -> None:
    peer = await fake_peer(_silent)
    connection = await Connection.open(peer.addr)
    call = asyncio.create_task(connection.invoke(RemotingCommand(code=30), timeout=30))
    await peer.wait_for(1)
    await connection.close()
    with pytest.raises(ConnectionFailed, match="closed by the client"):
        await call


async def test_refused_connect_is_connection_failed(fake_peer: PeerFactory) -> None:
    peer = await fake_peer(_silent)
    addr = peer.addr
    await peer.stop()
    with pytest.raises(ConnectionFailed, match="connect failed"):
        await Connection.open(addr)


async def test_pool_reuses_then_reconnects_after_a_failure(fake_peer: PeerFactory) -> None:
    peer = await fake_peer(_answer)
    async with ConnectionPool() as pool:
        await asyncio.gather(*(pool.invoke(peer.addr, RemotingCommand(code=30)) for _ in range(5)))
        assert len(peer.writers) == 1
        dropped = await pool.connection(peer.addr)
        peer.drop_connections()
        async with asyncio.timeout(5):
            await dropped.wait_closed()  # the pool's reader saw the peer's close
        assert (await pool.invoke(peer.addr, RemotingCommand(code=30))).code == ResponseCode.SUCCESS
        assert len(peer.writers) == 2


async def test_pool_signs_every_request(fake_peer: PeerFactory) -> None:
    peer = await fake_peer(_answer)
    credentials = Credentials("rocketmq", "12345678")
    async with ConnectionPool(credentials=credentials) as pool:
        await pool.invoke(peer.addr, RemotingCommand(code=30, ext_fields={"topic": "T"}, body=b"b"))
    received = peer.received[0]
    assert received.ext_fields["AccessKey"] == "rocketmq"
    assert sign_fields(received.ext_fields, received.body, credentials) == received.ext_fields


async def test_closed_pool_refuses_calls() -> None:
    pool = ConnectionPool()
    await pool.close()
    with pytest.raises(ConnectionFailed, match="pool is closed"):
        await pool.invoke("127.0.0.1:1", RemotingCommand(code=30))


async def test_callers_waiting_for_an_address_that_drops_syns_share_one_connect_timeout(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A deleted pod's IP does not refuse a connect, it never answers: 50 sends queued for it must each wait one
    connect timeout, not one per caller ahead of them (seen in kind: sends stuck 231 s behind a 1 s timeout)."""
    attempts = 0

    async def never_answers(host: str, port: int, **_: object) -> tuple[object, object]:
        nonlocal attempts
        attempts += 1
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    monkeypatch.setattr(asyncio, "open_connection", never_answers)
    async with ConnectionPool(connect_timeout=0.2) as pool:
        outcomes = await asyncio.gather(*(pool.connection("10.0.0.9:10911") for _ in range(50)),
                                        return_exceptions=True)
        assert all(isinstance(o, ConnectionFailed) for o in outcomes)
        assert attempts == 1  # one shared attempt; the old per-address lock made 50 in a row
        with pytest.raises(ConnectionFailed):  # a later caller makes a new attempt
            await pool.connection("10.0.0.9:10911")
        assert attempts == 2


async def test_a_caller_cancelled_while_an_address_opens_leaves_the_connection_to_the_others(
        fake_peer: PeerFactory) -> None:
    peer = await fake_peer(_answer)
    async with ConnectionPool() as pool:
        impatient = asyncio.create_task(pool.connection(peer.addr))
        patient = asyncio.create_task(pool.connection(peer.addr))
        await asyncio.sleep(0)
        impatient.cancel()
        connection = await patient
        assert not connection.closed
        assert await pool.connection(peer.addr) is connection
