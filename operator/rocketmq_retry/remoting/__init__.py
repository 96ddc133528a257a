"""RocketMQ remoting protocol for asyncio: frame and message codecs, connections, typed admin calls.

Pure protocol: nothing here knows about Kubernetes. Codec modules (frame, message, fastjson, acl,
models) do no I/O; connection and admin are the thin asynchronous shell.
"""

from .acl import Credentials
from .admin import Admin, parse_namesrv_addrs
from .codes import Perm, RequestCode, ResponseCode
from .connection import Connection, ConnectionPool
from .errors import (
    BrokerError,
    ConnectionFailed,
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
    CustomizedRetryPolicy,
    ExponentialRetryPolicy,
    GroupRetryPolicy,
    RetryPolicyType,
    SubscriptionGroupConfig,
    TopicConfig,
    TopicRoute,
)

__all__ = [
    "Admin", "BrokerData", "BrokerError", "ClusterInfo", "Connection", "ConnectionFailed", "ConnectionPool",
    "Credentials", "CustomizedRetryPolicy", "ExponentialRetryPolicy", "GroupRetryPolicy", "MessageExt", "Perm",
    "ProtocolError", "RemotingCommand", "RemotingError", "RemotingTimeout", "RequestCode", "ResponseCode",
    "RetryPolicyType", "SubscriptionGroupConfig", "TopicConfig", "TopicRoute", "UnsupportedCompression",
    "parse_namesrv_addrs",
]
