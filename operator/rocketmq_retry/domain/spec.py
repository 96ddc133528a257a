"""The RetryPolicy spec as typed values, read defensively from the custom resource.

The CRD validates new objects, but objects stored under an older schema, or written while validation was looser,
still reach the operator; reading them must yield a clear InvalidSpec message, never an exception from deep inside.
Every problem is collected so that one status update tells the user everything to fix.
"""

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final, TypeVar

from rocketmq_retry.domain.durations import DurationError, parse_duration

GROUP_PATTERN: Final = r"^[%|a-zA-Z0-9_-]+$"
GROUP_MAX_LENGTH: Final = 120  # TopicValidator.GROUP_MAX_LENGTH since RocketMQ 5.4 (retry topic names embed it)
MAX_RETRIES_LIMIT: Final = 1000
RETRY_QUEUES_LIMIT: Final = 64
MAX_CUSTOMIZED_DELAYS: Final = 256
MULTIPLIER_LIMIT: Final = 100
DEFAULT_MULTIPLIER: Final = 2
ACL_KEY_DEFAULTS: Final = {"accessKeyKey": "accessKey", "secretKeyKey": "secretKey"}  # as in the CRD
_GROUP = re.compile(GROUP_PATTERN)
_HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$")
_SECRET_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")

_T = TypeVar("_T")


class SpecError(ValueError):
    """The spec cannot be applied; `problems` lists every field at fault."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(self.problems))


class DeletionPolicy(StrEnum):
    RETAIN = "Retain"
    RESET = "Reset"


@dataclass(frozen=True)
class Endpoint:
    """A name server's, or a proxy's remoting, host:port."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class AclSecretRef:
    name: str
    access_key_key: str
    secret_key_key: str


@dataclass(frozen=True)
class ClusterRef:
    name_servers: tuple[Endpoint, ...]
    broker_cluster_name: str | None = None
    acl_secret_ref: AclSecretRef | None = None
    # The 5.x proxies' remoting endpoints: only they know the gRPC clients of a cluster-mode proxy. Not part of the
    # cluster's identity: they serve the same brokers.
    proxies: tuple[Endpoint, ...] = ()

    @property
    def key(self) -> str:
        """Identity of the target cluster for conflict detection: order and duplicates of name servers do not matter."""
        servers = ";".join(sorted({str(server) for server in self.name_servers}))
        return f"{self.broker_cluster_name or '*'}@{servers}"


@dataclass(frozen=True)
class CustomizedBackoff:
    delays_ms: tuple[int, ...]


@dataclass(frozen=True)
class ExponentialBackoff:
    initial_ms: int
    max_ms: int
    multiplier: int


Backoff = CustomizedBackoff | ExponentialBackoff


@dataclass(frozen=True)
class RetryPolicySpec:
    consumer_group: str
    cluster: ClusterRef | None = None
    max_retries: int | None = None
    retry_queues: int | None = None
    backoff: Backoff | None = None
    deletion_policy: DeletionPolicy = DeletionPolicy.RETAIN


class Problems:
    """Collects problems while reading, so one pass reports them all."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, path: str, problem: str) -> None:
        self.items.append(f"{path}: {problem}")

    def typed(self, value: object, kind: type[_T], path: str, what: str) -> _T | None:
        # bool is an int in Python but never a number in JSON.
        if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
            return value
        self.add(path, f"must be {what}, not {_json_type(value)}")
        return None

    def mapping(self, value: object, path: str) -> Mapping[str, object] | None:
        if isinstance(value, Mapping) and all(isinstance(key, str) for key in value):
            return value
        self.add(path, f"must be an object, not {_json_type(value)}")
        return None

    def integer(self, value: object, path: str, low: int, high: int) -> int | None:
        number = self.typed(value, int, path, "an integer")
        if number is not None and not low <= number <= high:
            self.add(path, f"must be between {low} and {high}, not {number}")
            return None
        return number

    def duration(self, value: object, path: str) -> int | None:
        text = self.typed(value, str, path, "a duration string")
        if text is None:
            return None
        try:
            return parse_duration(text)
        except DurationError as error:
            self.add(path, str(error))
            return None


def parse_name_servers(text: str, what: str = "name servers") -> tuple[Endpoint, ...]:
    """Endpoints (name servers, proxies) from RocketMQ's `host:port;host:port` form."""
    servers = []
    for entry in text.split(";"):
        host, _, port = entry.rpartition(":")
        if not _HOST.fullmatch(host) or not port.isascii() or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"{entry!r} is not host:port ({what} are host:port pairs separated by ';')")
        servers.append(Endpoint(host, int(port)))
    return tuple(servers)


def parse_cluster(raw: object, path: str = "spec.cluster") -> ClusterRef:
    """A cluster reference, from a RetryPolicy or from the operator's default-cluster setting."""
    problems = Problems()
    cluster = read_cluster(raw, path, problems)
    if cluster is None or problems.items:
        raise SpecError(problems.items)
    return cluster


def parse_spec(raw: object) -> RetryPolicySpec:
    """The typed spec of a RetryPolicy object's `spec`, or SpecError naming every problem."""
    problems = Problems()
    spec = problems.mapping(raw, "spec")
    if spec is None:
        raise SpecError(problems.items)
    group = read_group(spec.get("consumerGroup"), problems)
    cluster = max_retries = retry_queues = backoff = deletion = None
    if (raw := spec.get("cluster")) is not None:
        cluster = read_cluster(raw, "spec.cluster", problems)
    if (raw := spec.get("maxRetries")) is not None:
        max_retries = problems.integer(raw, "spec.maxRetries", 0, MAX_RETRIES_LIMIT)
    if (raw := spec.get("retryQueues")) is not None:
        retry_queues = _retry_queues(raw, "spec.retryQueues", problems)
    if (raw := spec.get("backoff")) is not None:
        backoff = _backoff(raw, "spec.backoff", problems)
    if (raw := spec.get("deletionPolicy")) is not None:
        deletion = _deletion_policy(raw, "spec.deletionPolicy", problems)
    if problems.items or group is None:
        raise SpecError(problems.items)
    return RetryPolicySpec(
        consumer_group=group,
        cluster=cluster,
        max_retries=max_retries,
        retry_queues=retry_queues,
        backoff=backoff,
        deletion_policy=deletion or DeletionPolicy.RETAIN,
    )


def read_group(value: object, problems: Problems, max_length: int = GROUP_MAX_LENGTH) -> str | None:
    """`spec.consumerGroup`; `max_length` is lower where the operator derives longer names from the group."""
    path = "spec.consumerGroup"
    if value is None:
        problems.add(path, "is required")
        return None
    group = problems.typed(value, str, path, "a string")
    if group is None:
        return None
    if not _GROUP.fullmatch(group) or len(group) > max_length:
        problems.add(path, f"{group!r} is not a RocketMQ group name: use letters, digits and %|_- "
                           f"(at most {max_length} characters)")
        return None
    return group


def read_cluster(raw: object, path: str, problems: Problems) -> ClusterRef | None:
    cluster = problems.mapping(raw, path)
    if cluster is None:
        return None
    servers = _endpoints(cluster.get("nameServers"), f"{path}.nameServers", "name servers", problems)
    raw_proxies = cluster.get("proxies")
    proxies = () if raw_proxies is None else _endpoints(raw_proxies, f"{path}.proxies", "proxies", problems)
    raw_name = cluster.get("brokerClusterName")
    name = None if raw_name is None else problems.typed(raw_name, str, f"{path}.brokerClusterName", "a string")
    acl = cluster.get("aclSecretRef")
    acl_ref = None if acl is None else _acl_secret_ref(acl, f"{path}.aclSecretRef", problems)
    return ClusterRef(servers, name or None, acl_ref, proxies) if servers else None


def _endpoints(raw: object, path: str, what: str, problems: Problems) -> tuple[Endpoint, ...]:
    text = problems.typed(raw, str, path, "a string")
    if text is not None:
        try:
            return parse_name_servers(text, what)
        except ValueError as error:
            problems.add(path, str(error))
    return ()


def _acl_secret_ref(raw: object, path: str, problems: Problems) -> AclSecretRef | None:
    ref = problems.mapping(raw, path)
    if ref is None:
        return None
    name = problems.typed(ref.get("name"), str, f"{path}.name", "a Secret name")
    if name is not None and not _SECRET_NAME.fullmatch(name):
        problems.add(f"{path}.name", f"{name!r} is not a Secret name")
        name = None
    keys = []
    for field, default in ACL_KEY_DEFAULTS.items():
        key = problems.typed(ref.get(field, default), str, f"{path}.{field}", "a Secret key")
        if key is not None and not _SECRET_KEY.fullmatch(key):
            problems.add(f"{path}.{field}", f"{key!r} is not a Secret key")
            key = None
        keys.append(key)
    access, secret = keys
    if name is None or access is None or secret is None:
        return None
    return AclSecretRef(name, access, secret)


def _retry_queues(value: object, path: str, problems: Problems) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and value < 1:
        problems.add(path, "must be at least 1: with 0 the broker acknowledges failed messages and discards them")
        return None
    return problems.integer(value, path, 1, RETRY_QUEUES_LIMIT)


def _backoff(raw: object, path: str, problems: Problems) -> Backoff | None:
    backoff = problems.mapping(raw, path)
    if backoff is None:
        return None
    customized, exponential = backoff.get("customized"), backoff.get("exponential")
    if (customized is None) == (exponential is None):
        problems.add(path, "set exactly one of customized or exponential")
        return None
    if customized is not None:
        return _customized(customized, f"{path}.customized", problems)
    return _exponential(exponential, f"{path}.exponential", problems)


def _customized(raw: object, path: str, problems: Problems) -> CustomizedBackoff | None:
    customized = problems.mapping(raw, path)
    if customized is None:
        return None
    delays = problems.typed(customized.get("delays"), list, f"{path}.delays", "a list of durations")
    if delays is None:
        return None
    if not 1 <= len(delays) <= MAX_CUSTOMIZED_DELAYS:
        problems.add(f"{path}.delays", f"must have 1 to {MAX_CUSTOMIZED_DELAYS} delays, not {len(delays)}")
        return None
    parsed = [problems.duration(delay, f"{path}.delays[{index}]") for index, delay in enumerate(delays)]
    values = [delay for delay in parsed if delay is not None]
    return CustomizedBackoff(tuple(values)) if len(values) == len(parsed) else None


def _exponential(raw: object, path: str, problems: Problems) -> ExponentialBackoff | None:
    exponential = problems.mapping(raw, path)
    if exponential is None:
        return None
    initial = problems.duration(exponential.get("initial"), f"{path}.initial")
    longest = problems.duration(exponential.get("max"), f"{path}.max")
    multiplier = problems.integer(exponential.get("multiplier", DEFAULT_MULTIPLIER), f"{path}.multiplier", 1,
                                  MULTIPLIER_LIMIT)
    if initial is None or longest is None or multiplier is None:
        return None
    if longest < initial:
        problems.add(f"{path}.max", "must not be shorter than initial")
        return None
    return ExponentialBackoff(initial, longest, multiplier)


def _deletion_policy(value: object, path: str, problems: Problems) -> DeletionPolicy | None:
    if value in set(DeletionPolicy):
        return DeletionPolicy(str(value))
    problems.add(path, f"must be one of {', '.join(DeletionPolicy)}, not {value!r}")
    return None


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object" if isinstance(value, Mapping) else type(value).__name__
