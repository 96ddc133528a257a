"""Effective ladders and warnings from what the masters hold."""

from rocketmq_retry.domain.broker import BrokerLine
from rocketmq_retry.domain.effective import BrokerSample, effective_backoff, effective_retries, effective_view
from rocketmq_retry.domain.ladder import ClientProtocol
from rocketmq_retry.domain.spec import CustomizedBackoff, ExponentialBackoff, parse_spec
from rocketmq_retry.domain.warnings import WarningCode

LEVELS = (1_000, 2_000, 3_000, 4_000, 5_000)


def _sample(name: str, line: BrokerLine = BrokerLine.V5, group: dict[str, object] | None = None) -> BrokerSample:
    return BrokerSample(name, line, LEVELS, False, None, group)


def test_unset_fields_come_from_the_brokers_group_then_from_defaults() -> None:
    spec = parse_spec({"consumerGroup": "g"})
    stored = {"retryMaxTimes": 2, "groupRetryPolicy": {"type": "EXPONENTIAL", "exponentialRetryPolicy": {
        "initial": 100, "max": 1000, "multiplier": 3}}}
    assert effective_retries(spec, [_sample("b", group=stored), _sample("a")]) == 2
    assert effective_backoff(spec, [_sample("a", group=stored)]) == ExponentialBackoff(100, 1000, 3)
    assert effective_retries(spec, []) == 16
    assert isinstance(effective_backoff(spec, [_sample("a", BrokerLine.V4, stored)]), CustomizedBackoff)
    broken = {"groupRetryPolicy": {"type": "CUSTOMIZED", "customizedRetryPolicy": {"next": []}}}
    assert effective_backoff(spec, [_sample("a", group=broken)]).delays_ms[:2] == (1_000, 5_000)  # type: ignore[union-attr]


def test_the_view_uses_the_first_master_and_shows_grpc_only_with_5x() -> None:
    spec = parse_spec({"consumerGroup": "g", "maxRetries": 2, "backoff": {"customized": {"delays": ["1s", "2s"]}}})
    mixed = effective_view(spec, [_sample("b", BrokerLine.V4), _sample("a")])
    assert [(ladder.client, ladder.delays_ms) for ladder in mixed.ladders] == [
        (ClientProtocol.REMOTING, (3_000, 4_000)), (ClientProtocol.GRPC, (1_000, 2_000))]
    assert WarningCode.BACKOFF_IGNORED_ON_4X in {w.code for w in mixed.warnings}
    only4 = effective_view(spec, [_sample("a", BrokerLine.V4)])
    assert [ladder.client for ladder in only4.ladders] == [ClientProtocol.REMOTING]
    assert effective_view(spec, []).ladders == ()
