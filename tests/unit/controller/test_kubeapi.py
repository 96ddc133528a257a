"""The operator's own API calls, as HTTP requests against a fake API server on loopback: ACL credentials from a
Secret (every failure names the Secret and key, never a value), status merge-patches, Events, peering objects,
refusals, and a token read again after a 401."""

import base64
import json
import traceback
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import kopf
import pytest
from aiohttp import web

from rocketmq_retry.controller.kubeapi import COMPONENT, KubeApi, KubeApiError, credentials_from_secret
from rocketmq_retry.controller.records import PolicyRecord
from rocketmq_retry.controller.secrets import SecretUnavailable
from rocketmq_retry.controller.statuses import PolicyEvent
from rocketmq_retry.domain.spec import AclSecretRef
from rocketmq_retry.remoting.acl import Credentials

REF = AclSecretRef("acl", "accessKey", "secretKey")
SECRET = "s3cr3t-\u00e9-value"
RECORD = PolicyRecord(namespace="team-a", name="orders", uid="u-1", generation=1,
                      created=datetime(2024, 1, 1, tzinfo=UTC), annotations={}, spec={})

Reply = tuple[int, Any]  # status code and JSON body (a str is sent as it is)


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode()


def _status(code: int, message: str) -> Reply:
    return code, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message, "code": code}


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")


class FakeServer:
    """An HTTP server on loopback that records each request and answers it with the next reply."""

    def __init__(self) -> None:
        self.replies: list[Reply] = []
        self.requests: list[Received] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append(Received(request.method, request.path, dict(request.headers), await request.read()))
        code, body = self.replies.pop(0)
        return web.Response(status=code, text=body if isinstance(body, str) else json.dumps(body),
                            content_type="application/json")

    def login(self, *tokens: str) -> Callable[[], kopf.ConnectionInfo]:
        """KubeApi's `login`: this server, with the next of `tokens` each time it is asked."""
        unused = iter(tokens)
        return lambda: kopf.ConnectionInfo(server=self.url, token=next(unused))

    def body(self) -> Any:
        """The JSON the last request sent."""
        return self.requests[-1].json()


@pytest.fixture
async def server() -> AsyncIterator[FakeServer]:
    fake = FakeServer()
    app = web.Application()
    app.router.add_route("*", "/{path:.*}", fake.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    fake.url = f"http://127.0.0.1:{port}"
    yield fake
    await runner.cleanup()


@pytest.fixture
async def api(server: FakeServer) -> AsyncIterator[KubeApi]:
    kube = KubeApi(server.login("t0k3n"), timeout=10.0, calls_at_once=4)
    yield kube
    await kube.close()


async def test_credentials_are_read_from_the_policys_namespace(api: KubeApi, server: FakeServer) -> None:
    server.replies = [(200, {"kind": "Secret", "data": {"ak": _b64(b"admin"), "sk": _b64(SECRET.encode())}})]

    found = await api.credentials("team-a", AclSecretRef("acl", "ak", "sk"))

    assert found == Credentials("admin", SECRET)
    [request] = server.requests
    assert (request.method, request.path) == ("GET", "/api/v1/namespaces/team-a/secrets/acl")
    assert request.headers["Authorization"] == "Bearer t0k3n"


@pytest.mark.parametrize(("reply", "message"), [
    (_status(404, 'secrets "acl" not found'), "Secret ns/acl not found"),
    (_status(403, 'secrets "acl" is forbidden'), "Secret ns/acl cannot be read: 403 Forbidden"),
])
async def test_an_unreadable_secret_says_why(api: KubeApi, server: FakeServer, reply: Reply, message: str) -> None:
    server.replies = [reply]

    with pytest.raises(SecretUnavailable) as unavailable:
        await api.credentials("ns", REF)

    assert str(unavailable.value) == message


async def test_status_is_a_merge_patch_of_the_status_subresource(api: KubeApi, server: FakeServer) -> None:
    server.replies = [(200, {})]

    await api.patch_status(RECORD, {"observedGeneration": 1}, plural="deadletterqueues")

    [request] = server.requests
    assert (request.method, request.path) == (
        "PATCH", "/apis/rocketmq-retry.io/v1alpha1/namespaces/team-a/deadletterqueues/orders/status")
    assert request.headers["Content-Type"] == "application/merge-patch+json"
    assert server.body() == {"status": {"observedGeneration": 1}}


async def test_an_event_names_the_object_and_the_reporting_component(api: KubeApi, server: FakeServer) -> None:
    server.replies = [(201, {})]

    await api.post_event(RECORD, PolicyEvent("Warning", "Degraded", "x" * 2000), kind="DeadLetterQueue")

    [request] = server.requests
    assert (request.method, request.path) == ("POST", "/api/v1/namespaces/team-a/events")
    event = server.body()
    assert event["metadata"]["name"].startswith("orders.")
    assert event["metadata"]["namespace"] == "team-a"
    assert event["involvedObject"] == {"apiVersion": "rocketmq-retry.io/v1alpha1", "kind": "DeadLetterQueue",
                                       "namespace": "team-a", "name": "orders", "uid": "u-1"}
    assert (event["type"], event["reason"], event["message"]) == ("Warning", "Degraded", "x" * 1024)
    assert (event["source"], event["reportingComponent"], event["count"]) == ({"component": COMPONENT}, COMPONENT, 1)
    assert event["firstTimestamp"] == event["lastTimestamp"]
    assert event["firstTimestamp"].endswith("Z")


@pytest.mark.parametrize(("namespace", "path"), [
    (None, "/apis/kopf.dev/v1/clusterkopfpeerings/rro"),
    ("team-a", "/apis/kopf.dev/v1/namespaces/team-a/kopfpeerings/rro"),
])
async def test_a_peering_is_read_cluster_wide_or_in_its_namespace(api: KubeApi, server: FakeServer,
                                                                  namespace: str | None, path: str) -> None:
    server.replies = [(200, {"status": {"a": {"priority": 1}}}), _status(404, "not found")]

    assert await api.peering_status("rro", namespace) == {"a": {"priority": 1}}
    assert await api.peering_status("rro", namespace) is None  # absent
    assert [request.path for request in server.requests] == [path] * 2


async def test_a_custom_object_is_read_from_its_namespace(api: KubeApi, server: FakeServer) -> None:
    server.replies = [(200, {"spec": {"consumerGroup": "orders"}}), _status(404, "not found")]

    assert await api.custom_object("team-a", "orders", plural="deadletterqueues") == {
        "spec": {"consumerGroup": "orders"}}
    with pytest.raises(KubeApiError) as refused:
        await api.custom_object("team-a", "gone", plural="deadletterqueues")
    assert refused.value.status == 404
    assert [(request.method, request.path) for request in server.requests] == [
        ("GET", f"/apis/rocketmq-retry.io/v1alpha1/namespaces/team-a/deadletterqueues/{name}")
        for name in ("orders", "gone")]


@pytest.mark.parametrize(("reply", "message"), [
    (_status(403, 'events is forbidden: User "sa" cannot create resource "events"'),
     '403 Forbidden: events is forbidden: User "sa" cannot create resource "events"'),
    ((502, "<html>bad gateway</html>"), "502 Bad Gateway: <html>bad gateway</html>"),
    ((500, "[1, 2]"), "500 Internal Server Error: [1, 2]"),  # JSON, but not a Status
])
async def test_a_refusal_carries_the_api_servers_own_message(api: KubeApi, server: FakeServer, reply: Reply,
                                                             message: str) -> None:
    server.replies = [reply]

    with pytest.raises(KubeApiError) as refused:
        await api.post_event(RECORD, PolicyEvent("Normal", "Synced", "ok"))

    assert (refused.value.status, str(refused.value)) == (reply[0], message)


async def test_a_rejected_token_is_read_again_once(server: FakeServer) -> None:
    """In a pod the kubelet rotates the ServiceAccount token file; a 401 logs in again, which reads it."""
    server.replies = [_status(401, "Unauthorized"), (200, {}), _status(401, "Unauthorized"),
                      _status(401, "Unauthorized")]
    api = KubeApi(server.login("old", "new", "newer"), timeout=10.0, calls_at_once=4)

    try:
        await api.patch_status(RECORD, {})
        with pytest.raises(KubeApiError) as refused:  # once per call: a token that is refused again is an error
            await api.patch_status(RECORD, {})
    finally:
        await api.close()

    assert [r.headers["Authorization"] for r in server.requests] == ["Bearer old", "Bearer new", "Bearer new",
                                                                     "Bearer newer"]
    assert refused.value.status == 401


@pytest.mark.parametrize(("data", "message"), [
    ({}, "Secret ns/acl has no key accessKey, secretKey"),
    ({"accessKey": _b64(b"admin")}, "Secret ns/acl has no key secretKey"),
    ({"accessKey": _b64(b"admin"), "secretKey": ""}, "Secret ns/acl: the value of key secretKey is empty"),
    ({"accessKey": _b64(b"admin"), "secretKey": _b64(b"\xff" + SECRET.encode())},
     "Secret ns/acl: the value of key secretKey is not UTF-8 text"),
    ({"accessKey": _b64(b"admin"), "secretKey": SECRET}, "Secret ns/acl: the value of key secretKey is not UTF-8 text"),
])
def test_a_missing_or_unusable_key_is_named_without_its_value(data: dict[str, Any], message: str) -> None:
    with pytest.raises(SecretUnavailable) as unavailable:
        credentials_from_secret("ns/acl", data, REF)

    assert str(unavailable.value) == message
    printed = "".join(traceback.format_exception(unavailable.value))  # as a log of the failure would show it
    assert SECRET not in printed
    assert "0xff" not in printed  # no chained decode error quoting the value's bytes
