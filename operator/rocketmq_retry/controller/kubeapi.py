"""Kubernetes calls the operator makes outside kopf's handler context: status and Events from the sweep, Secrets,
and the kopf peering object the sweep consults before each pass.

kopf's `patch` and event poster exist only inside a handler, and the sweep is not one. The calls go through
pykube-ng's plain HTTP client, not the official `kubernetes` client, for memory. Measured: the operator's modules and
this class took 146 MiB RSS with `kubernetes` 37 (its `CoreV1Api` alone 83 MiB: pydantic validation built per method)
and take 54 MiB with pykube-ng, which kopf logs in with too; an idle `operator run` went from 159 to 66 MiB. The
operator process does not load `kubernetes` at all (`rocketmq_retry.cli.load_controller`). pykube-ng is synchronous,
so every call runs in a worker thread.
"""

import asyncio
import base64
import json
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from http import HTTPStatus
from typing import Any, Final, Protocol

import pykube
from pykube.http import KubernetesHTTPAdapter

from rocketmq_retry.controller import GROUP, KIND, PLURAL, VERSION
from rocketmq_retry.controller.peering import CLUSTER_PEERINGS, NAMESPACED_PEERINGS, PEERING_GROUP, PEERING_VERSION
from rocketmq_retry.controller.records import PolicyRecord
from rocketmq_retry.controller.secrets import SecretUnavailable
from rocketmq_retry.controller.statuses import PolicyEvent
from rocketmq_retry.domain.jsontypes import JsonObject, JsonValue
from rocketmq_retry.domain.spec import AclSecretRef
from rocketmq_retry.remoting.acl import Credentials

COMPONENT: Final = "rocketmq-retry-operator"
_MERGE_PATCH: Final = "application/merge-patch+json"


class KubeApiError(Exception):
    """A call the API server refused: its HTTP status and reason, and the message of its Status body."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message


class _Response(Protocol):
    """What is used of a `requests.Response` (pykube-ng's result)."""

    status_code: int
    reason: str
    text: str

    def json(self) -> Any: ...


Connect = Callable[[], pykube.HTTPClient]


class KubeApi:
    def __init__(self, connect: Connect, calls_at_once: int) -> None:
        """`connect` builds the client, again after a 401: in a pod the kubelet rotates the ServiceAccount token file,
        which pykube-ng reads once. Each call in flight has a thread of its own with a kept connection: asyncio's
        default executor has cpu + 4 threads (6 on two cores), which capped a burst's status writes and Events below
        the rate the passes produced them."""
        self._connect = connect
        self._api = connect()
        self._threads = ThreadPoolExecutor(calls_at_once, thread_name_prefix="kubeapi")

    @classmethod
    def from_environment(cls, *, timeout: float, calls_at_once: int) -> "KubeApi":
        """In-cluster credentials when running in a pod, else the kubeconfig ($KUBECONFIG), as kopf itself does.
        `timeout` bounds each call: a stalled API server must not hold a pass forever."""

        def connect() -> pykube.HTTPClient:
            config = pykube.KubeConfig.from_env()
            return pykube.HTTPClient(config, timeout=timeout,
                                     http_adapter=KubernetesHTTPAdapter(config, pool_maxsize=calls_at_once))

        return cls(connect, calls_at_once)

    async def patch_status(self, record: PolicyRecord, status: JsonObject, *, plural: str = PLURAL) -> None:
        await self._request("PATCH", version=f"{GROUP}/{VERSION}", namespace=record.namespace,
                            url=f"{plural}/{record.name}/status", data=json.dumps({"status": status}),
                            headers={"Content-Type": _MERGE_PATCH})

    async def post_event(self, record: PolicyRecord, event: PolicyEvent, *, kind: str = KIND) -> None:
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {
            "metadata": {"name": f"{record.name}.{uuid.uuid4().hex[:16]}", "namespace": record.namespace},
            "involvedObject": {"apiVersion": f"{GROUP}/{VERSION}", "kind": kind, "namespace": record.namespace,
                               "name": record.name, "uid": record.uid},
            "type": event.type,
            "reason": event.reason,
            "message": event.message[:1024],
            "source": {"component": COMPONENT},
            "reportingComponent": COMPONENT,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        await self._request("POST", version="v1", namespace=record.namespace, url="events", json=body)

    async def peering_status(self, name: str, namespace: str | None) -> Mapping[str, JsonValue] | None:
        """The peers kopf recorded in a peering object (cluster-wide without a namespace); None when it is absent."""
        plural = CLUSTER_PEERINGS if namespace is None else NAMESPACED_PEERINGS
        try:
            found = await self._request("GET", version=f"{PEERING_GROUP}/{PEERING_VERSION}", namespace=namespace,
                                        url=f"{plural}/{name}")
        except KubeApiError as error:
            if error.status == HTTPStatus.NOT_FOUND:
                return None
            raise
        status: Mapping[str, JsonValue] = found.get("status") or {}
        return status

    async def credentials(self, namespace: str, ref: AclSecretRef) -> Credentials:
        """The ACL credentials `ref` names, read fresh each pass so a rotated or late-created Secret is picked up."""
        name = f"{namespace}/{ref.name}"
        try:
            secret = await self._request("GET", version="v1", namespace=namespace, url=f"secrets/{ref.name}")
        except KubeApiError as error:
            if error.status == HTTPStatus.NOT_FOUND:
                raise SecretUnavailable(f"Secret {name} not found") from None
            raise SecretUnavailable(f"Secret {name} cannot be read: {error.status} {error.reason}") from None
        return credentials_from_secret(name, secret.get("data") or {}, ref)

    async def _request(self, method: str, **request: Any) -> dict[str, Any]:
        """One request in one of this client's threads (pykube-ng's `version`, `namespace` — None for
        cluster-scoped — and `url`, plus `requests` arguments): the response's JSON, or KubeApiError."""
        return await asyncio.get_running_loop().run_in_executor(self._threads, partial(self._call, method, **request))

    def _call(self, method: str, **request: Any) -> dict[str, Any]:
        """`_request` in the calling thread."""
        response: _Response = self._api.request(method, **request)
        if response.status_code == HTTPStatus.UNAUTHORIZED:
            stale, self._api = self._api, self._connect()
            stale.session.close()
            response = self._api.request(method, **request)
        if not 200 <= response.status_code < 300:
            raise _refused(response)
        found: dict[str, Any] = response.json()
        return found


def _refused(response: _Response) -> KubeApiError:
    """The API server's own message from its Status body (e.g. the 403 naming the resource and verb the role lacks),
    else the body as it came."""
    try:
        message = response.json().get("message")
    except (ValueError, AttributeError):  # not JSON, or JSON but not an object
        message = None
    return KubeApiError(response.status_code, response.reason, message or response.text)


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
