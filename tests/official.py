"""What the official `mqadmin` from the bed's jars says, parsed: an independent judge of our client and operator."""

from rocketmq_lab.bed.rocketmq import RocketMQCluster, parse_consumer_configs


def consumer_configs(cluster: RocketMQCluster, group: str) -> dict[str, dict[str, str]]:
    """Broker name -> the group's config fields as `mqadmin getConsumerConfig` prints them (strings)."""
    return parse_consumer_configs(cluster.mqadmin("getConsumerConfig", "-g", group).stdout)
