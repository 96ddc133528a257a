"""What RocketMQ itself defines: broker lines, their subscription-group defaults and the default retry tables.

The operator's only copy of these defaults: the remoting layer leaves a field it is not given out of a request, so
the broker applies its own.

Values come from the RocketMQ sources of 4.9.7 and 5.x (SubscriptionGroupConfig, GroupRetryPolicy,
CustomizedRetryPolicy, ExponentialRetryPolicy, MessageStoreConfig, ProxyConfig, DefaultMQPushConsumer).
"""

import re
from enum import StrEnum
from typing import Final

from rocketmq_retry.domain.jsontypes import JsonObject

DEFAULT_RETRY_MAX_TIMES: Final = 16
DEFAULT_RETRY_QUEUE_NUMS: Final = 1
DEFAULT_MESSAGE_DELAY_LEVEL: Final = "1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h"
DEFAULT_CUSTOMIZED_NEXT_MS: Final = (
    1_000, 5_000, 10_000, 30_000,
    60_000, 120_000, 180_000, 240_000, 300_000, 360_000, 420_000, 480_000, 540_000, 600_000,
    1_200_000, 1_800_000, 3_600_000, 7_200_000,
)  # fmt: skip
DEFAULT_EXPONENTIAL_INITIAL_MS: Final = 5_000
DEFAULT_EXPONENTIAL_MAX_MS: Final = 7_200_000
DEFAULT_EXPONENTIAL_MULTIPLIER: Final = 2
# SubscriptionGroupConfig.groupRetryPolicy = new GroupRetryPolicy(): type CUSTOMIZED, null sub-objects.
DEFAULT_GROUP_RETRY_POLICY: Final[JsonObject] = {"type": "CUSTOMIZED"}
# DefaultMQPushConsumer.maxReconsumeTimes = -1 means 16 for concurrent consumers, sent with every send-back.
JAVA_REMOTING_DEFAULT_MAX_RECONSUME_TIMES: Final = 16
# ProxyConfig.maxInvisibleTimeMills: the proxy rejects a ChangeInvisibleDuration (a gRPC retry) above this.
PROXY_DEFAULT_MAX_INVISIBLE_MS: Final = 12 * 3_600_000


class BrokerLine(StrEnum):
    """Major line of a broker; decides which subscription-group fields exist."""

    V4 = "4"
    V5 = "5"


_VERSION = re.compile(r"^V?(?P<major>[0-9]+)[._]")


def broker_line(version: str) -> BrokerLine:
    """The line of a broker version as the broker reports it (`V5_5_0`) or as people write it (`4.9.7`)."""
    match = _VERSION.match(version.strip())
    if match is None:
        raise ValueError(f"not a RocketMQ version: {version!r}")
    major = int(match["major"])
    if major < 4:
        raise ValueError(f"RocketMQ {version} is older than 4.x and not supported")
    return BrokerLine.V4 if major == 4 else BrokerLine.V5


def default_group_config(group: str, line: BrokerLine) -> JsonObject:
    """The config a broker of `line` holds for a group created without settings (JSON keys as the broker sends them)."""
    config: JsonObject = {
        "groupName": group,
        "consumeEnable": True,
        "consumeFromMinEnable": True,
        "consumeBroadcastEnable": True,
        "retryQueueNums": DEFAULT_RETRY_QUEUE_NUMS,
        "retryMaxTimes": DEFAULT_RETRY_MAX_TIMES,
        "brokerId": 0,
        "whichBrokerWhenConsumeSlowly": 1,
        "notifyConsumerIdsChangedEnable": True,
    }
    if line is BrokerLine.V5:
        config |= {
            "consumeMessageOrderly": False,
            "groupRetryPolicy": dict(DEFAULT_GROUP_RETRY_POLICY),
            "groupSysFlag": 0,
            "consumeTimeoutMinute": 15,
            "attributes": {},
        }
    return config
