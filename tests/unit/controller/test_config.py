"""The operator's one config: the command line's flags and the chart's environment land in it, and bad values stop
the start."""

from typing import Any

import kopf
import pytest
from click.testing import CliRunner

from rocketmq_retry.cli import main
from rocketmq_retry.controller.config import OperatorConfig
from rocketmq_retry.domain.spec import SpecError, parse_cluster


def _config(monkeypatch: pytest.MonkeyPatch, args: list[str], env: dict[str, str] | None = None) -> OperatorConfig:
    """`operator run` up to kopf.run: the OperatorConfig it hands the handlers."""
    called: dict[str, Any] = {}
    monkeypatch.setattr(kopf, "run", lambda **kwargs: called.update(kwargs))
    result = CliRunner().invoke(main, ["operator", "run", *args], env=env)
    assert result.exit_code == 0, result.output
    config: OperatorConfig = called["memo"].config
    return config


def test_flags_and_the_charts_environment_set_the_config(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"ROCKETMQ_RETRY_DEFAULT_NAMESRV": "ns-0:9876;ns-1:9876", "ROCKETMQ_RETRY_DEFAULT_BROKER_CLUSTER": "prod",
           "ROCKETMQ_RETRY_DEFAULT_PROXIES": "proxy-0:8080", "ROCKETMQ_RETRY_SWEEP_INTERVAL": "3",
           "ROCKETMQ_RETRY_BROKER_TIMEOUT": "2.5",
           "ROCKETMQ_RETRY_DLQ_INTERVAL": "7", "ROCKETMQ_RETRY_METRICS_PORT": "0"}
    config = _config(monkeypatch, ["-n", "team-a", "-n", "team-b", "--liveness", "http://0.0.0.0:8080/healthz"], env)

    assert config.default_cluster is not None
    assert config.default_cluster.key == "prod@ns-0:9876;ns-1:9876"
    assert [str(proxy) for proxy in config.default_cluster.proxies] == ["proxy-0:8080"]
    assert (config.sweep_interval, config.broker_timeout, config.dead_letter_interval) == (3.0, 2.5, 7.0)
    assert (config.namespaces, config.fixed_namespaces, config.clusterwide) == (("team-a", "team-b"), True, False)
    assert (config.metrics_port, config.liveness_endpoint) == (0, "http://0.0.0.0:8080/healthz")

    defaults = _config(monkeypatch, ["-A", "--metrics-port", "0"])
    assert defaults == OperatorConfig(metrics_port=0)
    assert _config(monkeypatch, ["-n", "team-*", "--metrics-port", "0"]).fixed_namespaces is False


def test_a_policys_own_cluster_wins_and_none_at_all_is_invalid() -> None:
    own = parse_cluster({"nameServers": "a:1"})
    with_default = OperatorConfig(default_cluster=OperatorConfig.default_cluster_from("b:2"))
    assert with_default.cluster_for(own) is own
    assert with_default.cluster_for(None).key == "*@b:2"
    with pytest.raises(SpecError, match="no default cluster"):
        OperatorConfig().cluster_for(None)


def test_bad_settings_fail_at_start() -> None:
    with pytest.raises(ValueError, match="not host:port"):
        OperatorConfig.default_cluster_from("no-port")
    with pytest.raises(ValueError, match="sweep_interval must be positive"):
        OperatorConfig(sweep_interval=0)
    with pytest.raises(ValueError, match="dead_letter_interval, statuses_at_once must be positive"):
        OperatorConfig(dead_letter_interval=0, statuses_at_once=0)
    with pytest.raises(ValueError, match="must not be negative"):
        OperatorConfig(batch_window=-1)
    with pytest.raises(ValueError, match="is not a port"):
        OperatorConfig(metrics_port=70000)


def test_a_bad_default_cluster_is_refused_on_the_command_line() -> None:
    result = CliRunner().invoke(main, ["operator", "run", "-A", "--default-namesrv", "no-port"])
    assert result.exit_code == 2
    assert "--default-namesrv" in result.output
