"""RocketMQ remoting protocol for asyncio: codecs, connections, typed admin calls, a producer and a pull consumer.

Pure protocol: nothing here knows about Kubernetes. Codec modules (frame, message, fastjson, acl, models,
routing, sending, pulling) do no I/O; connection, admin, producer and consumer are the thin asynchronous shell.
"""

from .acl import Credentials
from .admin import Admin, parse_namesrv_addrs
from .codes import Perm, RequestCode, ResponseCode
from .connection import Connection, ConnectionPool
from .consumer import PullConsumer
from .errors import (
    BrokerError,
    ConnectionFailed,
    NoRoute,
    ProtocolError,
    RemotingError,
    RemotingTimeout,
    UnsupportedCompression,
)
from .frame import RemotingCommand
from .message import MessageExt
from .models import (
    BrokerData,
    ClusterInfo,
    SubscriptionGroupConfig,
    TopicConfig,
    TopicRoute,
)
from .producer import Producer, SendAttempt, SendFailed, SendResult
from .pulling import PullResult, PullStatus, dlq_topic, original_topic, retry_topic
from .routing import MessageQueue
from .sending import Message, SendStatus

__all__ = [
    "Admin", "BrokerData", "BrokerError", "ClusterInfo", "Connection", "ConnectionFailed", "ConnectionPool",
    "Credentials", "Message", "MessageExt",
    "MessageQueue", "NoRoute", "Perm", "Producer", "ProtocolError", "PullConsumer", "PullResult", "PullStatus",
    "RemotingCommand", "RemotingError", "RemotingTimeout", "RequestCode", "ResponseCode",
    "SendAttempt", "SendFailed", "SendResult", "SendStatus", "SubscriptionGroupConfig", "TopicConfig", "TopicRoute",
    "UnsupportedCompression", "dlq_topic", "original_topic", "parse_namesrv_addrs", "retry_topic",
]
