"""Every setting of the operator in one typed, validated value: what it watches, how it reaches brokers, and the pace
of its control loop.

`rocketmq-retry operator run` builds it from its flags and their environment variables; the chart's values become
those flags and variables (charts/rocketmq-retry-operator/templates/deployment.yaml). Nothing else in the operator
reads the environment or carries a tuning constant of its own.
"""

from dataclasses import dataclass, fields
from typing import Final

from rocketmq_retry.controller.peering import Peering
from rocketmq_retry.domain.spec import ClusterRef, SpecError, parse_cluster

ENV_DEFAULT_NAMESRV: Final = "ROCKETMQ_RETRY_DEFAULT_NAMESRV"
ENV_DEFAULT_BROKER_CLUSTER: Final = "ROCKETMQ_RETRY_DEFAULT_BROKER_CLUSTER"
ENV_DEFAULT_PROXIES: Final = "ROCKETMQ_RETRY_DEFAULT_PROXIES"
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
    # What the process watches and how it runs next to its replicas.
    namespaces: tuple[str, ...] = ()  # empty: the whole cluster
    peering: Peering | None = None  # None: standalone, the only replica
    liveness_endpoint: str | None = None
    metrics_port: int = DEFAULT_METRICS_PORT  # 0: no metrics endpoint

    # The brokers.
    default_cluster: ClusterRef | None = None  # for objects without spec.cluster
    broker_timeout: float = DEFAULT_BROKER_TIMEOUT  # bound of every single name-server or broker call

    # The control loop (controller/loop.py).
    sweep_interval: float = DEFAULT_SWEEP_INTERVAL  # between fresh passes over every RetryPolicy: drift repair
    dead_letter_interval: float = DEFAULT_DEAD_LETTER_INTERVAL  # between reads of every DeadLetterQueue's brokers
    redrive_progress_interval: float = 5.0  # between reads of a DeadLetterQueue while its redrive runs
    master_check_interval: float = 2.0  # between looks at each cluster's masters (controller/masters.py)
    slave_check_interval: float = 2.0  # between reads of a policy's slaves while they catch up with a write ...
    slave_catch_up: float = 30.0  # ... for this long after it (three copy periods); later the sweep reads them
    batch_window: float = 0.05  # an idle cluster's next pass waits this long for more objects to join it
    read_max_age: float = 2.0  # event passes may reuse a master's group table read this recently
    census_groups: int = 1000  # groups a sweep pass takes the census of, those seen longest ago first
    retry_first: float = 5.0  # backoff after a retryable outcome, doubling each time ...
    retry_max: float = 300.0  # ... up to this
    max_delete_retries: int = 10  # a Reset policy's finalizer gives up after this many failed resets
    statuses_at_once: int = 64  # status writes in flight per pass
    kube_calls_at_once: int = 32  # API server calls in flight (controller/kubeapi.py)
    kube_timeout: float = 30.0  # bound of every API server call

    def __post_init__(self) -> None:
        positive = [f.name for f in fields(self) if isinstance(getattr(self, f.name), int | float)
                    and f.name not in {"metrics_port", "batch_window", "read_max_age"} and getattr(self, f.name) <= 0]
        if positive:
            raise ValueError(f"{', '.join(positive)} must be positive")
        if self.batch_window < 0 or self.read_max_age < 0:
            raise ValueError("batch_window and read_max_age must not be negative")
        if not 0 <= self.metrics_port <= 65535:
            raise ValueError(f"metrics_port {self.metrics_port} is not a port (0 disables it)")

    @property
    def clusterwide(self) -> bool:
        return not self.namespaces

    @property
    def fixed_namespaces(self) -> bool:
        """Plain namespace names, no globs: kopf then needs no namespace or CRD observation, so a namespaced install
        needs no cluster-wide list/watch rights (kopf would retry the forbidden calls for a minute before falling
        back)."""
        return not self.clusterwide and not any(set(ns) & set("*?!,") for ns in self.namespaces)

    @staticmethod
    def default_cluster_from(namesrv: str | None, broker_cluster: str | None = None,
                             proxies: str | None = None) -> ClusterRef | None:
        """The default cluster from flag values; an invalid one is an error at start, not on the first object."""
        if not namesrv:
            return None
        raw: dict[str, object] = {"nameServers": namesrv}
        if broker_cluster:
            raw["brokerClusterName"] = broker_cluster
        if proxies:
            raw["proxies"] = proxies
        try:
            return parse_cluster(raw, "default cluster")
        except SpecError as error:
            raise ValueError(str(error)) from None

    def cluster_for(self, own: ClusterRef | None) -> ClusterRef:
        """The cluster an object targets: its own reference, else the operator's default (InvalidSpec without both)."""
        if own is not None:
            return own
        if self.default_cluster is None:
            raise SpecError(["spec.cluster: not set, and the operator has no default cluster (--default-namesrv)"])
        return self.default_cluster

    def retry_delay(self, retry: int) -> float:
        """Seconds before retry number `retry` + 1: doubling from retry_first, at most retry_max."""
        return float(min(self.retry_first * 2 ** min(retry, 32), self.retry_max))
