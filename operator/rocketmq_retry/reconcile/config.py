"""Operator-wide settings: the default cluster for policies without `spec.cluster`, the sweep and broker timeouts.

The metrics port is a setting of the process, not of reconciliation, so it has an environment variable here but no
place in OperatorConfig.
"""

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from rocketmq_retry.domain.spec import ClusterRef, SpecError, parse_cluster

ENV_DEFAULT_NAMESRV: Final = "ROCKETMQ_RETRY_DEFAULT_NAMESRV"
ENV_DEFAULT_BROKER_CLUSTER: Final = "ROCKETMQ_RETRY_DEFAULT_BROKER_CLUSTER"
ENV_SWEEP_INTERVAL: Final = "ROCKETMQ_RETRY_SWEEP_INTERVAL"
ENV_BROKER_TIMEOUT: Final = "ROCKETMQ_RETRY_BROKER_TIMEOUT"
ENV_METRICS_PORT: Final = "ROCKETMQ_RETRY_METRICS_PORT"
ENV_DEAD_LETTER_INTERVAL: Final = "ROCKETMQ_RETRY_DLQ_INTERVAL"
DEFAULT_SWEEP_INTERVAL: Final = 30.0
DEFAULT_DEAD_LETTER_INTERVAL: Final = 30.0
DEFAULT_BROKER_TIMEOUT: Final = 5.0
DEFAULT_METRICS_PORT: Final = 9090  # clear of 8080, the usual liveness port


@dataclass(frozen=True)
class OperatorConfig:
    default_cluster: ClusterRef | None = None
    sweep_interval: float = DEFAULT_SWEEP_INTERVAL
    broker_timeout: float = DEFAULT_BROKER_TIMEOUT  # bound of every single name-server or broker call
    dead_letter_interval: float = DEFAULT_DEAD_LETTER_INTERVAL  # between reads of a DeadLetterQueue's brokers

    def __post_init__(self) -> None:
        if self.sweep_interval <= 0 or self.broker_timeout <= 0 or self.dead_letter_interval <= 0:
            raise ValueError("sweep interval, broker timeout and dead-letter interval must be positive")

    @classmethod
    def build(cls, default_namesrv: str | None = None, default_broker_cluster: str | None = None,
              sweep_interval: float = DEFAULT_SWEEP_INTERVAL, broker_timeout: float = DEFAULT_BROKER_TIMEOUT,
              dead_letter_interval: float = DEFAULT_DEAD_LETTER_INTERVAL) -> "OperatorConfig":
        """From CLI-style values; an invalid default cluster is an error at start, not on the first policy."""
        cluster = None
        if default_namesrv:
            raw: dict[str, object] = {"nameServers": default_namesrv}
            if default_broker_cluster:
                raw["brokerClusterName"] = default_broker_cluster
            try:
                cluster = parse_cluster(raw, "default cluster")
            except SpecError as error:
                raise ValueError(str(error)) from None
        return cls(cluster, sweep_interval, broker_timeout, dead_letter_interval)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "OperatorConfig":
        found = os.environ if env is None else env
        return cls.build(
            found.get(ENV_DEFAULT_NAMESRV) or None,
            found.get(ENV_DEFAULT_BROKER_CLUSTER) or None,
            float(found.get(ENV_SWEEP_INTERVAL) or DEFAULT_SWEEP_INTERVAL),
            float(found.get(ENV_BROKER_TIMEOUT) or DEFAULT_BROKER_TIMEOUT),
            float(found.get(ENV_DEAD_LETTER_INTERVAL) or DEFAULT_DEAD_LETTER_INTERVAL),
        )

    def cluster_for(self, own: ClusterRef | None) -> ClusterRef:
        """The cluster a policy targets: its own reference, else the operator's default (InvalidSpec without both)."""
        if own is not None:
            return own
        if self.default_cluster is None:
            raise SpecError(["spec.cluster: not set, and the operator has no default cluster (--default-namesrv)"])
        return self.default_cluster
