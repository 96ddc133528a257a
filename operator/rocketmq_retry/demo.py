"""`rocketmq-retry demo`: bring the local stack up and show, with independent checks, what runs."""

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from .bed.stack import LocalStack


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str
    seconds: float


def _timed(name: str, probe: Callable[[], tuple[bool, str]]) -> Check:
    started = time.monotonic()
    passed, detail = probe()
    return Check(name, passed, detail, time.monotonic() - started)


def verify(stack: LocalStack) -> list[Check]:
    """Judge the stack with the official tools (mqadmin, kubectl), not with our own client."""
    checks: list[Check] = []
    cluster = stack.rocketmq
    if cluster is not None:
        def masters() -> tuple[bool, str]:
            listed = cluster.mqadmin("clusterList")
            found = [b.name for b in cluster.brokers if b.addr in listed.stdout]
            return len(found) == len(cluster.brokers), f"mqadmin clusterList shows {', '.join(found) or 'none'}"

        def round_trip() -> tuple[bool, str]:
            topic, body = f"DemoTopic_{uuid.uuid4().hex[:6]}", f"hello-{uuid.uuid4().hex[:6]}"
            cluster.mqadmin("updateTopic", "-c", cluster.cluster_name, "-t", topic)
            broker = cluster.brokers[0].name
            sent = cluster.mqadmin("sendMessage", "-t", topic, "-p", body, "-b", broker, "-i", "0")
            got = cluster.mqadmin("consumeMessage", "-t", topic, "-b", broker, "-i", "0", "-o", "0", "-c", "1")
            ok = "SEND_OK" in sent.stdout and body in got.stdout
            return ok, f"{body!r} sent to {topic}@{broker} and consumed back" if ok else sent.stdout[-300:]

        checks += [_timed("masters registered", masters), _timed("message round trip", round_trip)]
    plane = stack.control_plane
    if plane is not None:
        def api_server() -> tuple[bool, str]:
            result = plane.kubectl("version", "-o", "json")
            return result.returncode == 0, f"{plane.server} answers kubectl version"

        def crds() -> tuple[bool, str]:
            result = plane.kubectl("get", "crd", "-o", "name")
            names = [line.split("/", 1)[1] for line in result.stdout.split()]
            return result.returncode == 0, f"CRDs installed: {', '.join(names) or 'none yet'}"

        checks += [_timed("kube-apiserver", api_server), _timed("CustomResourceDefinitions", crds)]
    return checks
