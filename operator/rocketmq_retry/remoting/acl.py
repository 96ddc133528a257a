"""Request signing for brokers with ACL 1.0 (4.x) or authentication (5.x): both verify the same HmacSHA1.

Signed content = the ext-field values ordered by key (Java TreeMap order, i.e. UTF-16 code units),
concatenated, followed by the raw body. Keys themselves are not signed.
"""

import base64
import dataclasses
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass

from .frame import RemotingCommand

ACCESS_KEY = "AccessKey"
SECURITY_TOKEN = "SecurityToken"  # noqa: S105 - an ext-field name, not a secret
SIGNATURE = "Signature"


@dataclass(frozen=True, slots=True)
class Credentials:
    """An access key (5.x: user name) and its secret; the secret and token never appear in repr()."""

    access_key: str
    secret_key: str = dataclasses.field(repr=False)
    security_token: str | None = dataclasses.field(default=None, repr=False)


def _java_string_order(key: str) -> bytes:
    return key.encode("utf-16-be", errors="surrogatepass")


def sign_fields(ext_fields: Mapping[str, str], body: bytes, credentials: Credentials) -> dict[str, str]:
    """`ext_fields` plus AccessKey (and SecurityToken) and the Signature over all of them and the body."""
    fields = {k: v for k, v in ext_fields.items() if k != SIGNATURE}
    fields[ACCESS_KEY] = credentials.access_key
    if credentials.security_token is not None:
        fields[SECURITY_TOKEN] = credentials.security_token
    content = "".join(fields[k] for k in sorted(fields, key=_java_string_order)).encode() + body
    digest = hmac.new(credentials.secret_key.encode(), content, hashlib.sha1).digest()
    fields[SIGNATURE] = base64.b64encode(digest).decode()
    return fields


def sign(cmd: RemotingCommand, credentials: Credentials) -> RemotingCommand:
    """A copy of `cmd` carrying the signature fields."""
    return dataclasses.replace(cmd, ext_fields=sign_fields(cmd.ext_fields, cmd.body, credentials))
