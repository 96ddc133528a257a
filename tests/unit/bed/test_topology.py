"""The bed's topologies: which broker processes each has and the broker.conf keys that make them play their part."""

import pytest

from rocketmq_lab.bed.rocketmq import parse_in_sync_replicas
from rocketmq_lab.bed.topology import Topology, plan_nodes


def _layout(topology: Topology, *, rocketmq5: bool = False) -> list[tuple[str, str, int, str]]:
    return [(node.part, node.broker_name, node.broker_id, str(node.conf.get("brokerRole")))
            for node in plan_nodes(topology, 2, rocketmq5=rocketmq5, controller_addr="127.0.0.1:9878")]


def test_lone_masters_are_named_by_their_broker_name_and_configured_as_before() -> None:
    assert _layout(Topology.MASTERS) == [("broker-a", "broker-a", 0, "None"), ("broker-b", "broker-b", 0, "None")]


def test_each_master_gets_a_slave_of_its_broker_name_on_loopback() -> None:
    assert _layout(Topology.ASYNC_MASTER) == [
        ("broker-a", "broker-a", 0, "ASYNC_MASTER"), ("broker-b", "broker-b", 0, "ASYNC_MASTER"),
        ("broker-a-slave", "broker-a", 1, "SLAVE"), ("broker-b-slave", "broker-b", 1, "SLAVE")]
    assert all(node.conf["brokerIP2"] == "127.0.0.1" for node in plan_nodes(Topology.SYNC_MASTER, 1, rocketmq5=False))


def test_a_sync_master_waits_for_its_slave_on_5x_only_with_two_replicas_required() -> None:
    [master4, _] = plan_nodes(Topology.SYNC_MASTER, 1, rocketmq5=False)
    [master5, _] = plan_nodes(Topology.SYNC_MASTER, 1, rocketmq5=True)
    assert master4.conf == {"brokerRole": "SYNC_MASTER", "brokerIP2": "127.0.0.1"}
    assert master5.conf == {"brokerRole": "SYNC_MASTER", "brokerIP2": "127.0.0.1", "totalReplicas": 2,
                            "inSyncReplicas": 2}


def test_controller_mode_replicas_start_as_slaves_and_get_their_ids_from_the_controller() -> None:
    nodes = plan_nodes(Topology.CONTROLLER, 1, rocketmq5=True, controller_addr="127.0.0.1:9878")
    assert [(n.part, n.broker_id, n.conf["enableControllerMode"], n.conf["controllerAddr"]) for n in nodes] == [
        ("broker-a-n0", -1, True, "127.0.0.1:9878"), ("broker-a-n1", -1, True, "127.0.0.1:9878")]
    with pytest.raises(ValueError, match=r"from RocketMQ 5\.0 on"):
        plan_nodes(Topology.CONTROLLER, 1, rocketmq5=False, controller_addr="127.0.0.1:9878")


def test_in_sync_replicas_are_read_from_what_mqadmin_prints() -> None:
    shown = """
#brokerName\tbroker-a
#MasterBrokerId\t1
#MasterAddr\t127.0.0.1:23832

InSyncReplica:\tReplicaIdentity{brokerName='broker-a', brokerId=1, brokerAddress='127.0.0.1:23832', alive=true}

NotInSyncReplica:\tReplicaIdentity{brokerName='broker-a', brokerId=2, brokerAddress='127.0.0.1:29408', alive=true}
"""
    assert parse_in_sync_replicas(shown) == {"127.0.0.1:23832"}
