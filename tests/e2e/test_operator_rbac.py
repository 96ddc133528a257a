"""The chart's ClusterRole is minimal: the operator, run with a role missing any one rule, is denied something.

For every rule of the rendered ClusterRole, the operator runs with a copy of the role that lacks that rule; a policy
that needs every permission (it names an ACL Secret) and a DeadLetterQueue are applied, and the operator's log must
show the API server refusing it exactly that resource. With the full role the same objects reach Ready (the other e2e
tests).
"""

import base64
import uuid
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import yaml

from rocketmq_lab.bed.helm import manifests, render
from rocketmq_lab.bed.processes import wait_until
from rocketmq_lab.bed.rocketmq import RocketMQCluster
from tests.conftest import Kube
from tests.e2e.running import operator_process

GROUP, VERSION, PLURAL = "rocketmq-retry.io", "v1alpha1", "retrypolicies"
ACCOUNT = "rocketmq-retry-operator"
DENIAL_WITHIN = 90.0


def _install(kube: Kube, namespace: str, drop_rule: int) -> tuple[Path, dict[str, Any]]:
    """The chart for `namespace` with rule `drop_rule` removed from its ClusterRole; a token of its account."""
    rendered = render(release=f"rbac-{namespace[-8:]}", namespace=namespace,
                      values={"watchNamespaces": [namespace], "serviceAccount": {"name": ACCOUNT}})
    assert rendered.returncode == 0, rendered.stderr
    objects = manifests(rendered.stdout)
    [role] = [o for o in objects if o["kind"] == "ClusterRole"]
    dropped = role["rules"].pop(drop_rule)
    applied = kube.plane.kubectl("apply", "--server-side", "-f", "-",
                                 input_text=yaml.safe_dump_all(objects))
    assert applied.returncode == 0, applied.stderr
    return kube.service_account_kubeconfig(namespace, ACCOUNT), dropped


def _rule_count(kube: Kube) -> int:
    rendered = render(release="count", namespace="count", values={"watchNamespaces": ["count"]})
    [role] = [o for o in manifests(rendered.stdout) if o["kind"] == "ClusterRole"]
    return len(role["rules"])


def _denied(log: str, status_message: str, rule: dict[str, Any]) -> bool:
    """A 403 for one of the rule's resources: in the operator's log (the API server names the resource), or, for
    the ACL Secret, in the policy's Ready message (the Secret reader reports the status code, never the content)."""
    lines = [line for line in log.splitlines() if "forbidden" in line.lower()]
    in_log = any(f'resource "{resource}"' in line for line in lines for resource in rule["resources"])
    return in_log or ("secrets" in rule["resources"] and "cannot be read: 403" in status_message)


def _ready_message(custom: Any, namespace: str) -> str:
    found = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "needs-all")
    return " ".join(c.get("message", "") for c in found.get("status", {}).get("conditions", []))


def _without_rule(kube: Kube, cluster: RocketMQCluster, index: int, logs: Path) -> str | None:
    """Run the operator lacking rule `index`; None when it was denied that rule's resource, else why not."""
    custom = kubernetes.client.CustomObjectsApi(kube.api)
    namespace = kube.new_namespace("rbac")
    kubernetes.client.CoreV1Api(kube.api).create_namespaced_secret(namespace, {"metadata": {"name": "acl"}, "data": {
        "accessKey": base64.b64encode(b"ak").decode(), "secretKey": base64.b64encode(b"sk").decode()}})
    kubeconfig, rule = _install(kube, namespace, index)
    log_dir = logs / f"without-rule-{index}"
    log_dir.mkdir()
    operator = operator_process(kubeconfig, namespace, log_dir, "--sweep-interval", "2", "--metrics-port", "0")
    operator.start()
    try:
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, {
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "RetryPolicy", "metadata": {"name": "needs-all"},
            "spec": {"cluster": {"nameServers": cluster.namesrv_addr, "aclSecretRef": {"name": "acl"}},
                     "consumerGroup": f"rbac_{index}_{uuid.uuid4().hex[:6]}", "maxRetries": 2}})
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "deadletterqueues", {
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "DeadLetterQueue", "metadata": {"name": "needs-all"},
            "spec": {"cluster": {"nameServers": cluster.namesrv_addr},
                     "consumerGroup": f"rbac_dlq_{index}_{uuid.uuid4().hex[:6]}"}})
        wait_until(lambda: _denied(operator.log_path.read_text(errors="replace"), _ready_message(custom, namespace),
                                   rule), timeout=DENIAL_WITHIN, interval=0.5, what=f"a denial of {rule['resources']}")
    except TimeoutError:
        return f"rule {rule} (no denial in {operator.log_path})"
    finally:
        operator.stop()
    return None


@pytest.mark.rocketmq_versions("5.5.0")
def test_every_rule_of_the_cluster_role_is_needed(kube: Kube, rocketmq_cluster: RocketMQCluster,
                                                   tmp_path: Path) -> None:
    unproven = [why for index in range(_rule_count(kube))
                if (why := _without_rule(kube, rocketmq_cluster, index, tmp_path)) is not None]
    assert unproven == [], "rules the operator never needed: " + "; ".join(unproven)
