"""Signing: vectors produced by the Java client's AclClientRPCHook (rocketmq-client 5.5.0)."""

from rocketmq_retry.remoting.acl import Credentials, sign, sign_fields
from rocketmq_retry.remoting.frame import RemotingCommand


def test_signature_matches_the_java_client() -> None:
    signed = sign_fields({"topic": "T", "queueId": "0"}, b"body", Credentials("rocketmq", "12345678"))
    assert signed == {"topic": "T", "queueId": "0", "AccessKey": "rocketmq",
                      "Signature": "bfZzV1hxSI2YfNDtpjX/VukpwMU="}


def test_keys_sort_in_java_utf16_order_with_a_security_token() -> None:
    # U+10000 is a surrogate pair in UTF-16, so Java's TreeMap puts it before U+FFFF; Python's code
    # point order would not, and the signature would differ.
    fields = {"\uffff": "a", "\U00010000": "b", "z": "c\u00e9"}
    signed = sign_fields(fields, b"", Credentials("ak", "sk", "tok"))
    assert signed["Signature"] == "7bfM28U7mjEXrBKT2vxbYBQOXXE="
    assert signed["SecurityToken"] == "tok"


def test_resigning_replaces_the_previous_signature() -> None:
    credentials = Credentials("rocketmq", "12345678")
    once = sign(RemotingCommand(code=30, ext_fields={"topic": "T", "queueId": "0"}, body=b"body"), credentials)
    assert sign(once, credentials).ext_fields == once.ext_fields


def test_secrets_never_show_in_repr() -> None:
    text = repr(Credentials("visible-key", "hidden-secret", "hidden-token"))
    assert "visible-key" in text
    assert "hidden" not in text
    assert "hidden" not in str(Credentials("k", "hidden"))
