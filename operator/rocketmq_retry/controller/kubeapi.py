"""Kubernetes calls the operator makes outside kopf's handler context: status and Events from the sweep, Secrets,
and the kopf peering object the sweep consults before each pass.

kopf's `patch` and event poster exist only inside a handler, and the sweep is not one. The official client is
synchronous, so every call runs in a worker thread.
"""

import asyncio
import base64
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import kubernetes
from kubernetes.client import ApiException

from rocketmq_retry.controller import GROUP, KIND, PLURAL, VERSION
from rocketmq_retry.controller.engine import SecretUnavailable
from rocketmq_retry.controller.peering import CLUSTER_PEERINGS, NAMESPACED_PEERINGS, PEERING_GROUP, PEERING_VERSION
from rocketmq_retry.controller.records import PolicyRecord
from rocketmq_retry.controller.statuses import PolicyEvent
from rocketmq_retry.domain.jsontypes import JsonObject, JsonValue
from rocketmq_retry.domain.spec import AclSecretRef
from rocketmq_retry.remoting.acl import Credentials

COMPONENT: Final = "rocketmq-retry-operator"
_MERGE_PATCH: Final = "application/merge-patch+json"


class KubeApi:
    def __init__(self, client: Any) -> None:
        self._custom = kubernetes.client.CustomObjectsApi(client)
        self._core = kubernetes.client.CoreV1Api(client)

    @classmethod
    def from_environment(cls) -> "KubeApi":
        """In-cluster credentials when running in a pod, else the kubeconfig ($KUBECONFIG), as kopf itself does."""
        try:
            kubernetes.config.load_incluster_config()  # type: ignore[no-untyped-call]
            return cls(kubernetes.client.ApiClient())
        except kubernetes.config.ConfigException:
            return cls(kubernetes.config.new_client_from_config())  # type: ignore[no-untyped-call]

    async def patch_status(self, record: PolicyRecord, status: JsonObject, *, plural: str = PLURAL) -> None:
        await asyncio.to_thread(self._custom.patch_namespaced_custom_object_status, GROUP, VERSION, record.namespace,
                                plural, record.name, {"status": status}, _content_type=_MERGE_PATCH)

    async def post_event(self, record: PolicyRecord, event: PolicyEvent, *, kind: str = KIND) -> None:
        now = datetime.now(UTC).replace(microsecond=0)
        body = kubernetes.client.CoreV1Event(
            metadata=kubernetes.client.V1ObjectMeta(name=f"{record.name}.{uuid.uuid4().hex[:16]}",
                                                    namespace=record.namespace),
            involved_object=kubernetes.client.V1ObjectReference(
                api_version=f"{GROUP}/{VERSION}", kind=kind, namespace=record.namespace, name=record.name,
                uid=record.uid),
            type=event.type,
            reason=event.reason,
            message=event.message[:1024],
            source=kubernetes.client.V1EventSource(component=COMPONENT),
            reporting_component=COMPONENT,
            first_timestamp=now,
            last_timestamp=now,
            count=1,
        )
        await asyncio.to_thread(self._core.create_namespaced_event, record.namespace, body)

    async def peering_status(self, name: str, namespace: str | None) -> Mapping[str, JsonValue] | None:
        """The peers kopf recorded in a peering object (cluster-wide without a namespace); None when it is absent."""
        found: Any
        try:
            if namespace is None:
                found = await asyncio.to_thread(self._custom.get_cluster_custom_object, PEERING_GROUP,
                                                PEERING_VERSION, CLUSTER_PEERINGS, name)
            else:
                found = await asyncio.to_thread(self._custom.get_namespaced_custom_object, PEERING_GROUP,
                                                PEERING_VERSION, namespace, NAMESPACED_PEERINGS, name)
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        status: Mapping[str, JsonValue] = found.get("status") or {}
        return status

    async def credentials(self, namespace: str, ref: AclSecretRef) -> Credentials:
        """The ACL credentials `ref` names, read fresh each pass so a rotated or late-created Secret is picked up."""
        name = f"{namespace}/{ref.name}"
        try:
            secret = await asyncio.to_thread(self._core.read_namespaced_secret, ref.name, namespace)
        except ApiException as error:
            if error.status == 404:
                raise SecretUnavailable(f"Secret {name} not found") from None
            raise SecretUnavailable(f"Secret {name} cannot be read: {error.status} {error.reason}") from None
        return credentials_from_secret(name, secret.data or {}, ref)


@dataclass(frozen=True)
class KindSink:
    """KubeApi's status and Event calls for another kind, in the shape of the sweep's StatusSink."""

    kube: KubeApi
    plural: str
    kind: str

    async def patch_status(self, record: PolicyRecord, status: JsonObject) -> None:
        await self.kube.patch_status(record, status, plural=self.plural)

    async def post_event(self, record: PolicyRecord, event: PolicyEvent) -> None:
        await self.kube.post_event(record, event, kind=self.kind)


def credentials_from_secret(name: str, data: Mapping[str, str | bytes], ref: AclSecretRef) -> Credentials:
    """Decode the two keys of a Secret's `data`; every message names keys only, never a value.

    Raised `from None`: a chained UnicodeDecodeError would quote the value's bytes in a logged traceback.
    """
    keys = (ref.access_key_key, ref.secret_key_key)
    missing = [key for key in keys if key not in data]
    if missing:
        raise SecretUnavailable(f"Secret {name} has no key {', '.join(missing)}")
    values = []
    for key in keys:
        try:
            value = base64.b64decode(data[key], validate=True).decode()
        except ValueError:  # binascii.Error, UnicodeDecodeError
            raise SecretUnavailable(f"Secret {name}: the value of key {key} is not UTF-8 text") from None
        if not value:
            raise SecretUnavailable(f"Secret {name}: the value of key {key} is empty")
        values.append(value)
    return Credentials(*values)
