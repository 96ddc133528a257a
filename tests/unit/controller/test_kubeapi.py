"""ACL credentials from a Secret: what is read, and that every failure names the Secret and key, never a value."""

import base64
import traceback
from typing import Any

import kubernetes
import pytest
from kubernetes.client import ApiException

from rocketmq_retry.controller.engine import SecretUnavailable
from rocketmq_retry.controller.kubeapi import KubeApi, credentials_from_secret
from rocketmq_retry.domain.spec import AclSecretRef
from rocketmq_retry.remoting.acl import Credentials

REF = AclSecretRef("acl", "accessKey", "secretKey")
SECRET = "s3cr3t-\u00e9-value"


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode()


class FakeCore:
    """The one CoreV1Api call the credentials need: a Secret, or the API's error for it."""

    def __init__(self, data: dict[str, str | bytes] | None = None, error: ApiException | None = None) -> None:
        self.data = data
        self.error = error
        self.reads: list[tuple[str, str]] = []

    def read_namespaced_secret(self, name: str, namespace: str) -> kubernetes.client.V1Secret:
        self.reads.append((namespace, name))
        if self.error is not None:
            raise self.error
        return kubernetes.client.V1Secret(data=self.data)


def _api(core: FakeCore) -> KubeApi:
    api = KubeApi(kubernetes.client.ApiClient())
    api._core = core  # type: ignore[assignment]
    return api


async def test_credentials_are_read_from_the_policys_namespace() -> None:
    core = FakeCore({"ak": _b64(b"admin"), "sk": _b64(SECRET.encode())})

    found = await _api(core).credentials("team-a", AclSecretRef("acl", "ak", "sk"))

    assert found == Credentials("admin", SECRET)
    assert core.reads == [("team-a", "acl")]


@pytest.mark.parametrize(("error", "message"), [
    (ApiException(status=404, reason="Not Found"), "Secret ns/acl not found"),
    (ApiException(status=403, reason="Forbidden"), "Secret ns/acl cannot be read: 403 Forbidden"),
])
async def test_an_unreadable_secret_says_why(error: ApiException, message: str) -> None:
    with pytest.raises(SecretUnavailable) as unavailable:
        await _api(FakeCore(error=error)).credentials("ns", REF)

    assert str(unavailable.value) == message


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
