"""Kubernetes calls the operator makes outside kopf's handler context: status and Events behind the passes, Secrets,
and the kopf peering object the leadership gate consults.

kopf's `patch` and event poster exist only inside a handler, and the passes are not one. The calls go over aiohttp on
the operator's event loop, the transport kopf itself uses, with kopf's own login (`kopf.login_via_pykube`: the
ServiceAccount in a pod, else the kubeconfig) and kopf's public `ConnectionInfo` to build TLS and the Authorization
header. Not the official `kubernetes` client, for memory: it cost the operator 92 MiB (its `CoreV1Api` alone 83 MiB,
pydantic validation built per method), and the operator process does not load it at all
(`rocketmq_retry.cli.load_controller`). Not pykube-ng's synchronous client either: run in 32 threads, a burst's
status writes contended for the GIL with the loop, and a profile of 1,000 policies applied at once found the
operator's threads waiting for it after every system call of every request.
"""

import base64
import json
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any, Final

import aiohttp
import kopf

from rocketmq_retry.controller import GROUP, KIND, PLURAL, VERSION
from rocketmq_retry.controller.peering import CLUSTER_PEERINGS, NAMESPACED_PEERINGS, PEERING_GROUP, PEERING_VERSION
from rocketmq_retry.controller.records import PolicyRecord
from rocketmq_retry.controller.secrets import SecretUnavailable
from rocketmq_retry.controller.statuses import PolicyEvent
from rocketmq_retry.domain.jsontypes import JsonObject, JsonValue
from rocketmq_retry.domain.spec import AclSecretRef
from rocketmq_retry.remoting.acl import Credentials

log = logging.getLogger(__name__)

COMPONENT: Final = "rocketmq-retry-operator"
_MERGE_PATCH: Final = "application/merge-patch+json"


class KubeApiError(Exception):
    """A call the API server refused: its HTTP status and reason, and the message of its Status body."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message


Login = Callable[[], kopf.ConnectionInfo]


class KubeApi:
    def __init__(self, login: Login, *, timeout: float, calls_at_once: int) -> None:
        """`login` says where the API server is and who the operator is; it is asked again after a 401, because in a
        pod the kubelet rotates the ServiceAccount token file (pykube-ng reads it once per login). `timeout` bounds
        each call: a stalled API server must not hold a status write forever. At most `calls_at_once` connections
        are open."""
        self._login = login
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._calls_at_once = calls_at_once
        self._session: aiohttp.ClientSession | None = None
        self._server = ""
        self._authorization: dict[str, str] = {}

    @classmethod
    def from_environment(cls, *, timeout: float, calls_at_once: int) -> "KubeApi":
        """In-cluster credentials when running in a pod, else the kubeconfig ($KUBECONFIG), as kopf logs in."""

        def login() -> kopf.ConnectionInfo:
            info = kopf.login_via_pykube(logger=log, settings=kopf.OperatorSettings())
            if info is None:
                raise kopf.LoginError("pykube-ng is not installed: no way to read the credentials")
            return info

        return cls(login, timeout=timeout, calls_at_once=calls_at_once)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def patch_status(self, record: PolicyRecord, status: JsonObject, *, plural: str = PLURAL) -> None:
        await self._request("PATCH", _path(f"{GROUP}/{VERSION}", record.namespace, f"{plural}/{record.name}/status"),
                            {"status": status}, content_type=_MERGE_PATCH)

    async def post_event(self, record: PolicyRecord, event: PolicyEvent, *, kind: str = KIND) -> None:
        now = (event.at or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
        body: JsonObject = {
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
        await self._request("POST", _path("v1", record.namespace, "events"), body)

    async def peering_status(self, name: str, namespace: str | None) -> Mapping[str, JsonValue] | None:
        """The peers kopf recorded in a peering object (cluster-wide without a namespace); None when it is absent."""
        plural = CLUSTER_PEERINGS if namespace is None else NAMESPACED_PEERINGS
        try:
            found = await self._request("GET", _path(f"{PEERING_GROUP}/{PEERING_VERSION}", namespace,
                                                     f"{plural}/{name}"))
        except KubeApiError as error:
            if error.status == HTTPStatus.NOT_FOUND:
                return None
            raise
        status: Mapping[str, JsonValue] = found.get("status") or {}
        return status

    async def custom_object(self, namespace: str, name: str, *, plural: str) -> dict[str, Any]:
        """One of the project's objects as the API server holds it (for `rocketmq-retry dlq`, outside the operator);
        KubeApiError when it cannot be read, 404 when it does not exist."""
        return await self._request("GET", _path(f"{GROUP}/{VERSION}", namespace, f"{plural}/{name}"))

    async def credentials(self, namespace: str, ref: AclSecretRef) -> Credentials:
        """The ACL credentials `ref` names, read fresh each pass so a rotated or late-created Secret is picked up."""
        name = f"{namespace}/{ref.name}"
        try:
            secret = await self._request("GET", _path("v1", namespace, f"secrets/{ref.name}"))
        except KubeApiError as error:
            if error.status == HTTPStatus.NOT_FOUND:
                raise SecretUnavailable(f"Secret {name} not found") from None
            raise SecretUnavailable(f"Secret {name} cannot be read: {error.status} {error.reason}") from None
        return credentials_from_secret(name, secret.get("data") or {}, ref)

    async def _request(self, method: str, path: str, body: JsonObject | None = None, *,
                       content_type: str = "application/json") -> dict[str, Any]:
        """One call: the response's JSON, or KubeApiError. A 401 reads the credentials again and tries once more."""
        data = None if body is None else json.dumps(body)
        headers = {"Content-Type": content_type} if body is not None else {}
        status, reason, text = await self._send(method, path, data, headers)
        if status == HTTPStatus.UNAUTHORIZED:
            self._authorization = self._login().as_http_headers()
            status, reason, text = await self._send(method, path, data, headers)
        if not 200 <= status < 300:
            raise _refused(status, reason, text)
        found: dict[str, Any] = json.loads(text) if text else {}
        return found

    async def _send(self, method: str, path: str, data: str | None,
                    headers: dict[str, str]) -> tuple[int, str, str]:
        """The status code, reason and body of one request with the current Authorization."""
        session = self._session or self._connect()
        async with session.request(method, self._server + path, data=data,
                                   headers=headers | self._authorization) as response:
            return response.status, response.reason or "", await response.text()

    def _connect(self) -> aiohttp.ClientSession:
        """The session, on the first call (it belongs to the running event loop): TLS and the server from the login,
        the Authorization header per call, as the token may change."""
        info = self._login()
        self._server = info.server.rstrip("/")
        self._authorization = info.as_http_headers()
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self._calls_at_once, ssl=info.as_ssl_context()),
            timeout=self._timeout)
        return self._session


def _path(version: str, namespace: str | None, resource: str) -> str:
    """The URL path of `resource` (e.g. `secrets/acl`) in API `version` (`v1` is the core group's)."""
    root = "/api/v1" if version == "v1" else f"/apis/{version}"
    return f"{root}/{resource}" if namespace is None else f"{root}/namespaces/{namespace}/{resource}"


def _refused(status: int, reason: str, text: str) -> KubeApiError:
    """The API server's own message from its Status body (e.g. the 403 naming the resource and verb the role lacks),
    else the body as it came."""
    try:
        message = json.loads(text).get("message")
    except (ValueError, AttributeError):  # not JSON, or JSON but not an object
        message = None
    return KubeApiError(status, reason, message or text)


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
