"""A groupRetryPolicy written out of band on one real 5.x master blocks no policy on that master (issue 13).

The odd bodies are ones a 5.5.0 broker really stores when another tool writes them (measured): an empty `next`
(gRPC clients refuse it), a customized sub-object without `next` (stored as `{}`), and an unknown type (stored as `{}`,
type null). The reconciler reads them through the project's Admin and real brokers; every policy on the master stays
Applied, a body no policy owns is written back as the broker had it, and only the policy whose group holds an unusable
body gets a warning.
"""

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from rocketmq_lab.bed.rocketmq import RocketMQCluster
from rocketmq_retry.domain.broker import DEFAULT_CUSTOMIZED_NEXT_MS
from rocketmq_retry.domain.spec import parse_cluster, parse_spec
from rocketmq_retry.domain.status import BrokerState
from rocketmq_retry.domain.warnings import WarningCode
from rocketmq_retry.reconcile.apply import Intent, Mode, reconcile_cluster
from rocketmq_retry.remoting import Admin, SubscriptionGroupConfig

pytestmark = pytest.mark.rocketmq_versions("5.5.0")  # 4.x has no groupRetryPolicy

EMPTY_NEXT = {"type": "CUSTOMIZED", "customizedRetryPolicy": {"next": []}}
NULL_NEXT = {"type": "CUSTOMIZED", "customizedRetryPolicy": {"next": None}}
UNKNOWN_TYPE = {"type": "FIBONACCI", "fibonacciRetryPolicy": {"seed": 1}}


def _unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"



async def _stored(admin: Admin, addr: str, group: str) -> Any:
    config = await admin.get_subscription_group(addr, group)
    assert config is not None, group
    return config.group_retry_policy


async def test_odd_group_retry_policies_on_one_master_block_no_policy(
        admin: Admin, rocketmq_cluster: RocketMQCluster) -> None:
    first = rocketmq_cluster.brokers[0]
    stranger, empty, null, unknown, plain = (_unique(p) for p in ("stranger", "empty", "null", "unknown", "plain"))
    # Another tool writes raw bodies on one master only (through our Admin: it sends groupRetryPolicy as given).
    for group, body in ((stranger, EMPTY_NEXT), (empty, EMPTY_NEXT), (null, NULL_NEXT), (unknown, UNKNOWN_TYPE)):
        await admin.update_subscription_group(first.addr, SubscriptionGroupConfig(group, group_retry_policy=body))
    assert await _stored(admin, first.addr, null) == {"type": "CUSTOMIZED", "customizedRetryPolicy": {}}
    assert await _stored(admin, first.addr, empty) == EMPTY_NEXT

    customized = {"customized": {"delays": ["1s", "2s"]}}
    intents = [Intent("ns/empty", parse_spec({"consumerGroup": empty, "maxRetries": 4}), Mode.APPLY),
               Intent("ns/null", parse_spec({"consumerGroup": null, "maxRetries": 2}), Mode.APPLY),
               Intent("ns/unknown", parse_spec({"consumerGroup": unknown, "backoff": customized}), Mode.APPLY),
               Intent("ns/plain", parse_spec({"consumerGroup": plain, "maxRetries": 3, "backoff": customized}),
                      Mode.APPLY)]
    cluster = parse_cluster({"nameServers": rocketmq_cluster.namesrv_addr})

    for attempt in ("first pass", "second pass"):
        results = await reconcile_cluster(admin, cluster, intents, call_timeout=30, now=datetime.now(UTC))
        for intent in intents:
            result = results[intent.key]
            assert result.error is None, (attempt, intent.key)
            assert sorted((b.name, b.state, b.message) for b in result.brokers) == sorted(
                (b.name, BrokerState.APPLIED, None) for b in rocketmq_cluster.brokers), (attempt, intent.key)

    odd = {key: [w.message for w in result.view.warnings if w.code is WarningCode.STORED_RETRY_POLICY_ODD]
           for key, result in results.items()}
    assert odd["ns/null"] == odd["ns/unknown"] == odd["ns/plain"] == []
    (message,) = odd["ns/empty"]
    assert f"{first.name} (groupRetryPolicy.customizedRetryPolicy.next is not" in message

    # Bodies no policy owns are written back as the broker had them: a sub-object without `next` (which a typed
    # model once turned into `next: []`) is sent as `{}`, and the broker fills in its default ladder. A policy that
    # owns backoff replaces the odd body; the other master got only what the policies asked for.
    assert await _stored(admin, first.addr, stranger) == EMPTY_NEXT
    assert await _stored(admin, first.addr, empty) == EMPTY_NEXT
    assert await _stored(admin, first.addr, null) == {
        "type": "CUSTOMIZED", "customizedRetryPolicy": {"next": list(DEFAULT_CUSTOMIZED_NEXT_MS)}}
    spelled = {"type": "CUSTOMIZED", "customizedRetryPolicy": {"next": [1000, 2000]}}
    for broker in rocketmq_cluster.brokers:
        assert await _stored(admin, broker.addr, unknown) == spelled
        assert await _stored(admin, broker.addr, plain) == spelled
        claimed = await admin.get_subscription_group(broker.addr, empty)
        assert claimed is not None
        assert claimed.retry_max_times == 4
    assert await admin.get_subscription_group(rocketmq_cluster.brokers[1].addr, stranger) is None
