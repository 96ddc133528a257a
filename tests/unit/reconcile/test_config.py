"""Operator settings from the command line or the environment."""

import pytest

from rocketmq_retry.domain.spec import SpecError, parse_cluster
from rocketmq_retry.reconcile.config import OperatorConfig


def test_environment_sets_the_default_cluster_and_intervals() -> None:
    config = OperatorConfig.from_env({"ROCKETMQ_RETRY_DEFAULT_NAMESRV": "ns-0:9876;ns-1:9876",
                                      "ROCKETMQ_RETRY_DEFAULT_BROKER_CLUSTER": "prod",
                                      "ROCKETMQ_RETRY_SWEEP_INTERVAL": "3", "ROCKETMQ_RETRY_BROKER_TIMEOUT": "2.5",
                                      "ROCKETMQ_RETRY_DLQ_INTERVAL": "7"})
    assert config.default_cluster is not None
    assert config.default_cluster.key == "prod@ns-0:9876;ns-1:9876"
    assert (config.sweep_interval, config.broker_timeout, config.dead_letter_interval) == (3.0, 2.5, 7.0)
    assert OperatorConfig.from_env({}) == OperatorConfig()


def test_a_policys_own_cluster_wins_and_none_at_all_is_invalid() -> None:
    own = parse_cluster({"nameServers": "a:1"})
    assert OperatorConfig.build("b:2").cluster_for(own) is own
    assert OperatorConfig.build("b:2").cluster_for(None).key == "*@b:2"
    with pytest.raises(SpecError, match="no default cluster"):
        OperatorConfig().cluster_for(None)


def test_bad_settings_fail_at_start() -> None:
    with pytest.raises(ValueError, match="not host:port"):
        OperatorConfig.build("no-port")
    with pytest.raises(ValueError, match="positive"):
        OperatorConfig(sweep_interval=0)
    with pytest.raises(ValueError, match="positive"):
        OperatorConfig(dead_letter_interval=0)
