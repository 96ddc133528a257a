"""The operator's log lines name the object kopf's per-object messages are about."""

import logging

from rocketmq_retry.cli import KopfObjectFormatter


def _record(**extra: object) -> logging.LogRecord:
    record = logging.LogRecord("kopf.objects", logging.INFO, __file__, 1, "Handler %r succeeded.", ("reconcile",),
                               None)
    record.__dict__.update(extra)
    return record


def test_kopf_object_lines_are_prefixed_with_the_object_and_others_are_left_alone() -> None:
    formatter = KopfObjectFormatter("%(name)s: %(message)s")
    namespaced = _record(k8s_ref={"namespace": "team-a", "name": "orders", "kind": "RetryPolicy"})
    assert formatter.format(namespaced) == "kopf.objects: [team-a/orders] Handler 'reconcile' succeeded."
    assert namespaced.msg == "Handler %r succeeded."  # the record other handlers see is unchanged
    assert formatter.format(_record(k8s_ref={"name": "cluster-thing"})).endswith("[cluster-thing] Handler "
                                                                                 "'reconcile' succeeded.")
    assert formatter.format(_record()) == "kopf.objects: Handler 'reconcile' succeeded."
