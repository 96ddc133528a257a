"""Where ACL credentials come from: a Secret in the object's namespace, read through KubeApi in the operator."""

from typing import Protocol

from rocketmq_retry.domain.spec import AclSecretRef
from rocketmq_retry.remoting.acl import Credentials


class SecretUnavailable(Exception):
    """The ACL Secret cannot be read or lacks a key; the message is meant for status."""


class SecretReader(Protocol):
    async def credentials(self, namespace: str, ref: AclSecretRef) -> Credentials:
        """ACL credentials from a Secret; SecretUnavailable when it cannot."""
        ...
