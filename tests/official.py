"""What the official `mqadmin` from the bed's jars says, parsed: an independent judge of our client and operator."""

import re

from rocketmq_retry.bed.rocketmq import RocketMQCluster

_SECTION = re.compile(r"^=+[^:\n]*:(\S+?)=+$", re.M)
_FIELD = re.compile(r"^(\w+)\s+=\s+(.*)$", re.M)


def consumer_configs(cluster: RocketMQCluster, group: str) -> dict[str, dict[str, str]]:
    """Broker name -> the group's config fields as `mqadmin getConsumerConfig` prints them (strings)."""
    shown = cluster.mqadmin("getConsumerConfig", "-g", group)
    sections = _SECTION.split(shown.stdout)[1:]
    return {name: dict(_FIELD.findall(text)) for name, text in zip(sections[::2], sections[1::2], strict=True)}
