"""Admin operations against a scripted broker: request shapes, fallbacks and error mapping."""

import asyncio
import json
from collections.abc import Awaitable, Callable

import pytest
from remoting_support import Behaviour, FakePeer, captured_command

from rocketmq_retry.remoting.admin import Admin, parse_namesrv_addrs
from rocketmq_retry.remoting.codes import RequestCode, ResponseCode
from rocketmq_retry.remoting.connection import ConnectionPool
from rocketmq_retry.remoting.errors import BrokerError, ConnectionFailed
from rocketmq_retry.remoting.frame import RemotingCommand, encode
from rocketmq_retry.remoting.models import SubscriptionGroupConfig

PeerFactory = Callable[[Behaviour], Awaitable[FakePeer]]


def _scripted(answers: dict[int, RemotingCommand]) -> Behaviour:
    """Answer each request code with a fixed response (SUCCESS for codes not listed)."""

    async def behaviour(request: RemotingCommand, writer: asyncio.StreamWriter) -> None:
        template = answers.get(request.code, RemotingCommand(code=ResponseCode.SUCCESS))
        response = request.response(template.code, template.remark)
        response.ext_fields, response.body = template.ext_fields, template.body
        writer.write(encode(response))

    return behaviour


async def test_batch_update_falls_back_once_per_broker_on_4x(fake_peer: PeerFactory) -> None:
    not_supported = RemotingCommand(code=ResponseCode.REQUEST_CODE_NOT_SUPPORTED, remark=" request type 225 not")
    broker = await fake_peer(_scripted({RequestCode.UPDATE_AND_CREATE_SUBSCRIPTIONGROUP_LIST: not_supported}))
    async with ConnectionPool() as pool:
        admin = Admin(pool, ["127.0.0.1:1"])
        await admin.update_subscription_groups(broker.addr, [SubscriptionGroupConfig(n) for n in "ab"])
        await admin.update_subscription_groups(broker.addr, [SubscriptionGroupConfig("c")])
    codes = [r.code for r in broker.received]
    assert codes == [225, 200, 200, 200]
    assert [json.loads(r.body)["groupName"] for r in broker.received[1:]] == ["a", "b", "c"]


async def test_batch_update_is_chunked_on_5x(fake_peer: PeerFactory) -> None:
    broker = await fake_peer(_scripted({}))
    async with ConnectionPool() as pool:
        await Admin(pool, ["127.0.0.1:1"]).update_subscription_groups(
            broker.addr, [SubscriptionGroupConfig(f"g{i}") for i in range(5)], batch_size=2)
    assert [len(json.loads(r.body)["groupConfigList"]) for r in broker.received] == [2, 2, 1]


async def test_other_batch_errors_propagate(fake_peer: PeerFactory) -> None:
    broker = await fake_peer(_scripted({225: RemotingCommand(code=ResponseCode.INVALID_PARAMETER, remark="bad")}))
    async with ConnectionPool() as pool:
        with pytest.raises(BrokerError) as error:
            await Admin(pool, ["127.0.0.1:1"]).update_subscription_groups(broker.addr, [SubscriptionGroupConfig("%")])
    assert str(error.value) == (f"{broker.addr}: UPDATE_AND_CREATE_SUBSCRIPTIONGROUP_LIST(225) failed with "
                                "INVALID_PARAMETER(29): bad")


async def test_delete_sends_both_offset_flags(fake_peer: PeerFactory) -> None:
    broker = await fake_peer(_scripted({}))
    async with ConnectionPool() as pool:
        await Admin(pool, ["127.0.0.1:1"]).delete_subscription_group(broker.addr, "g", clean_offsets=True)
    assert broker.received[0].ext_fields == {"groupName": "g", "cleanOffset": "true", "removeOffset": "true"}


async def test_consumer_offset_not_found_is_none(fake_peer: PeerFactory) -> None:
    broker = await fake_peer(_scripted({14: RemotingCommand(code=ResponseCode.QUERY_NOT_FOUND)}))
    async with ConnectionPool() as pool:
        assert await Admin(pool, ["127.0.0.1:1"]).query_consumer_offset(broker.addr, "g", "t", 0) is None


async def test_name_server_queries_fail_over_to_the_next_address(fake_peer: PeerFactory) -> None:
    cluster_info = captured_command("v550_cluster_info_response")
    namesrv = await fake_peer(_scripted({106: RemotingCommand(code=0, body=cluster_info.body)}))
    dead = await fake_peer(_scripted({}))
    dead_addr = dead.addr
    await dead.stop()
    async with ConnectionPool() as pool:
        admin = Admin(pool, parse_namesrv_addrs(f"{dead_addr}; {namesrv.addr};"))
        info = await admin.cluster_info()
        assert info.masters()[0].master_addr == "127.0.0.1:20911"
        await namesrv.stop()
        with pytest.raises(ConnectionFailed):
            await admin.cluster_info()


async def test_broker_config_text_is_parsed(fake_peer: PeerFactory) -> None:
    body = b"brokerName=broker-a\nmessageDelayLevel=1s 5s\nweird line\nnamesrvAddr=a:1;b:2\n"
    broker = await fake_peer(_scripted({26: RemotingCommand(code=0, body=body)}))
    async with ConnectionPool() as pool:
        config = await Admin(pool, ["127.0.0.1:1"]).get_broker_config(broker.addr)
    assert config == {"brokerName": "broker-a", "messageDelayLevel": "1s 5s", "namesrvAddr": "a:1;b:2"}


async def test_runtime_info_names_the_broker_version(fake_peer: PeerFactory) -> None:
    table = RemotingCommand(code=ResponseCode.SUCCESS,
                            body=b'{"table":{"brokerVersionDesc":"V5_5_0","brokerVersion":"485"}}')
    broker = await fake_peer(_scripted({RequestCode.GET_BROKER_RUNTIME_INFO: table}))
    async with ConnectionPool() as pool:
        info = await Admin(pool, ["127.0.0.1:1"]).broker_runtime_info(broker.addr)
    assert info["brokerVersionDesc"] == "V5_5_0"
    assert [r.code for r in broker.received] == [28]


@pytest.mark.parametrize(("version", "client_version"), [("v550", 513), ("v497", 407)])
async def test_consumer_connections_and_running_info_parse_captured_answers(
        fake_peer: PeerFactory, version: str, client_version: int) -> None:
    broker = await fake_peer(_scripted({
        RequestCode.GET_CONSUMER_CONNECTION_LIST: captured_command(f"{version}_consumer_connection_response"),
        RequestCode.GET_CONSUMER_RUNNING_INFO: captured_command(f"{version}_consumer_running_info_response")}))
    async with ConnectionPool() as pool:
        admin = Admin(pool, ["127.0.0.1:1"])
        found = await admin.consumer_connection(broker.addr, "cap_five")
        assert found is not None
        [connection] = found.connections
        properties = await admin.consumer_running_info(broker.addr, "cap_five", connection.client_id)
    assert (connection.language, connection.version) == ("JAVA", client_version)
    assert (found.consume_type, found.message_model) == ("CONSUME_PASSIVELY", "CLUSTERING")
    assert found.topics == ("%RETRY%cap_five", "CapTopic")
    assert (properties["maxReconsumeTimes"], properties["PROP_CONSUMEORDERLY"]) == ("5", "false")
    assert properties["consumerGroup"] == "cap_five"
    assert [(r.code, r.ext_fields) for r in broker.received] == [
        (203, {"consumerGroup": "cap_five"}),
        (307, {"consumerGroup": "cap_five", "clientId": connection.client_id, "jstackEnable": "false"})]


@pytest.mark.parametrize("version", ["v550", "v497"])
async def test_a_group_nobody_consumes_has_no_connections(fake_peer: PeerFactory, version: str) -> None:
    broker = await fake_peer(_scripted({
        RequestCode.GET_CONSUMER_CONNECTION_LIST: captured_command(f"{version}_consumer_not_online_response")}))
    async with ConnectionPool() as pool:
        assert await Admin(pool, ["127.0.0.1:1"]).consumer_connection(broker.addr, "cap_nobody") is None


@pytest.mark.parametrize("version", ["v550", "v497"])
async def test_running_info_of_a_client_the_broker_does_not_know_says_why(fake_peer: PeerFactory,
                                                                          version: str) -> None:
    broker = await fake_peer(_scripted({
        RequestCode.GET_CONSUMER_RUNNING_INFO: captured_command(f"{version}_running_info_unknown_client_response")}))
    async with ConnectionPool() as pool:
        with pytest.raises(BrokerError, match=r"SYSTEM_ERROR\(1\): The Consumer <cap_five> <127.0.0.1@nobody> not"):
            await Admin(pool, ["127.0.0.1:1"]).consumer_running_info(broker.addr, "cap_five", "127.0.0.1@nobody")
