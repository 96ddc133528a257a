"""The kind lab's pure parts: the cluster config it derives, engine facts, what it reads back from RocketMQ and
from the chaos Jobs' logs, and the images' inputs."""

import base64
import io
import logging
import tarfile
from pathlib import Path

import pytest
import yaml

from rocketmq_lab import project
from rocketmq_lab.bed import versions
from rocketmq_lab.bed.kind import engine, images, lab, nodeimage, workloads
from rocketmq_lab.bed.kind.cluster import lab_config
from rocketmq_lab.bed.rocketmq import parse_consumer_configs
from rocketmq_retry.cli import LOG_FORMAT
from rocketmq_retry.controller import policies

CAPBND_WITHOUT_SYS_RESOURCE = "Name:\tx\nCapBnd:\t000001fffeffffff\n"
CAPBND_FULL = "CapBnd:\t000001ffffffffff\n"


def test_the_lab_config_keeps_the_repository_topology_and_adds_only_what_the_machine_needs() -> None:
    base = yaml.safe_load(project.checkout().kind_config.read_text())
    config = lab_config(base)
    assert config["nodes"] == base["nodes"]
    assert [n["role"] for n in config["nodes"]] == ["control-plane", "worker", "worker"]
    assert config["networking"] == {"disableDefaultCNI": True, "apiServerAddress": "127.0.0.1"}
    kubelet = [yaml.safe_load(p) for p in config["kubeadmConfigPatches"]]
    assert {"kind": "KubeletConfiguration", "failCgroupV1": False} in kubelet
    assert config["containerdConfigPatches"] == base["containerdConfigPatches"]
    assert "networking" not in base  # derived, not written back


def test_the_capability_bounding_set_is_read_bit_by_bit() -> None:
    assert not engine.bounding_set_has(engine.CAP_SYS_RESOURCE, CAPBND_WITHOUT_SYS_RESOURCE)
    assert engine.bounding_set_has(engine.CAP_SYS_RESOURCE, CAPBND_FULL)
    assert engine.bounding_set_has(23, CAPBND_WITHOUT_SYS_RESOURCE)
    with pytest.raises(ValueError, match="CapBnd"):
        engine.bounding_set_has(24, "Name:\tx\n")


def test_dockerd_runs_containers_through_the_runc_wrapper_only_when_the_capability_is_missing(tmp_path: Path) -> None:
    wrapped = engine.dockerd_argv("/usr/sbin/dockerd", tmp_path, wrap_runc=True)
    assert f"--add-runtime={engine.WRAPPER_RUNTIME}={engine.RUNC_WRAPPER}" in wrapped
    assert f"--default-runtime={engine.WRAPPER_RUNTIME}" in wrapped
    plain = engine.dockerd_argv("/usr/sbin/dockerd", tmp_path, wrap_runc=False)
    assert not any("runtime" in arg for arg in plain)
    assert engine.RUNC_WRAPPER.stat().st_mode & 0o111


def test_containerd_config_takes_kubeadms_pause_and_restricts_oom_score_adj() -> None:
    original = b'sandbox_image = "registry.k8s.io/pause:3.10"\nrestrict_oom_score_adj = false\n'
    changed = nodeimage._containerd_config(original).decode()
    assert f'sandbox_image = "registry.k8s.io/pause:{nodeimage.PAUSE_TAG}"' in changed
    assert "restrict_oom_score_adj = true" in changed
    with pytest.raises(RuntimeError, match="changed shape"):
        nodeimage._containerd_config(b'sandbox_image = "registry.k8s.io/pause:9.9"\n')


def test_an_image_key_changes_with_any_input_and_only_then(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("one")
    first = images.tree_digest([tmp_path], tmp_path)
    assert images.tree_digest([tmp_path], tmp_path) == first
    (tmp_path / "a").write_text("two")
    assert images.tree_digest([tmp_path], tmp_path) != first
    (tmp_path / "a").chmod(0o755)
    second = images.tree_digest([tmp_path], tmp_path)
    (tmp_path / "a").chmod(0o644)
    assert images.tree_digest([tmp_path], tmp_path) != second
    base = images.Rootfs("x", ("python3",))
    assert images.Rootfs("x", ("python3", "jq")).key != base.key
    assert images.Rootfs("x", ("python3",), customize=("true",)).key != base.key



def test_an_image_key_ignores_what_the_build_context_leaves_out(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text("one")
    first = images.tree_digest([tmp_path], tmp_path)
    for ignored in ("pkg/__pycache__/a.pyc", "dist.egg-info/PKG-INFO"):  # .dockerignore keeps both out
        (tmp_path / ignored).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / ignored).write_text("anything")
    assert images.tree_digest([tmp_path], tmp_path) == first


@pytest.mark.parametrize("image", [workloads.OPERATOR, workloads.CHAOS], ids=lambda image: image.name)
def test_an_image_is_tagged_by_the_distributions_its_dockerfile_copies_and_by_nothing_else(
        image: workloads.PythonImage) -> None:
    dockerfile = (project.checkout().root / image.dockerfile).read_text()
    copied = {line.split()[1].rstrip("/") for line in dockerfile.splitlines()
              if line.startswith("COPY ") and "--from=" not in line}
    assert {Path(source).parts[0] for source in copied} == set(image.distributions)
    assert f"--no-deps {' '.join(f'./{d}' for d in image.distributions)}" in dockerfile
    ignored = (project.checkout().root / ".dockerignore").read_text().splitlines()
    assert {line.removeprefix("!") for line in ignored if line.startswith("!")} == {"operator", "chaos"}

def test_the_rocketmq_launcher_runs_each_role_with_the_beds_jvm_options() -> None:
    launcher = workloads._launcher().decode()
    assert launcher.startswith("#!/bin/sh\n")
    for role, main in (("namesrv", "NamesrvStartup"), ("broker", "BrokerStartup"), ("mqadmin", "MQAdminStartup")):
        line = next(line for line in launcher.splitlines() if line.strip().startswith(f"{role})"))
        assert main in line
        assert "exec java" in line
        assert "/opt/rocketmq/lib/*" in line
        assert '"$@"' in line
        assert "--add-opens" in line
        assert "-Drocketmq.home.dir=/opt/rocketmq" in line


def test_the_rocketmq_manifest_swaps_only_the_image_version() -> None:
    five = lab.rocketmq_manifest(versions.ROCKETMQ_5)
    four = lab.rocketmq_manifest(versions.ROCKETMQ_4)
    assert five.count("rocketmq-retry-lab/rocketmq:5.5.0") == 3
    assert four.count("rocketmq-retry-lab/rocketmq:4.9.7") == 3
    assert "5.5.0" not in four
    assert five.replace("5.5.0", "4.9.7") == four
    objects = [o for o in yaml.safe_load_all(five) if o]
    namespace = next(o for o in objects if o["kind"] == "Namespace")
    assert namespace["metadata"]["annotations"]["rocketmq-retry.io/chaos"] == "allowed"
    zones = {o["metadata"]["name"]: o["spec"]["template"]["spec"]["nodeSelector"]
             for o in objects if o["kind"] == "StatefulSet"}
    assert zones == {"broker-a": {"rocketmq-retry.io/broker-zone": "a"},
                     "broker-b": {"rocketmq-retry.io/broker-zone": "b"}}


MQADMIN_GET_CONSUMER_CONFIG = """\
============================================kind:broker-b============================================
groupName                 =  orders
retryMaxTimes             =  3
retryQueueNums            =  1
============================================kind:broker-a============================================
groupName                 =  orders
retryMaxTimes             =  16
retryQueueNums            =  1
"""


def test_mqadmin_get_consumer_config_is_read_per_broker() -> None:
    configs = parse_consumer_configs(MQADMIN_GET_CONSUMER_CONFIG)
    assert configs["broker-b"]["retryMaxTimes"] == "3"
    assert configs["broker-a"]["retryMaxTimes"] == "16"
    assert set(configs) == {"broker-a", "broker-b"}
    assert parse_consumer_configs("nothing") == {}


def test_the_last_verdict_and_report_lines_of_a_job_log_are_found() -> None:
    report = io.BytesIO()
    with tarfile.open(fileobj=report, mode="w:gz") as tar:
        info = tarfile.TarInfo("verdict.json")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"{}"))
    encoded = base64.b64encode(report.getvalue()).decode()
    logs = f'noise\n{lab.VERDICT_PREFIX}{{"passed": false}}\n{lab.VERDICT_PREFIX}{{"passed": true}}\n' \
           f"{lab.REPORT_PREFIX}{encoded}\n"
    assert lab.last_line_with(lab.VERDICT_PREFIX, logs) == '{"passed": true}'
    assert lab.last_line_with(lab.REPORT_PREFIX, logs) == encoded
    assert lab.last_line_with(lab.VERDICT_PREFIX, "no verdict here") is None


def test_a_chaos_job_runs_in_cluster_with_the_chaos_account_hardened_and_with_its_own_scratch() -> None:
    job = lab.chaos_job("chaos-x", ["chaos", "in-cluster", "broker-pod-kill", "--rate=10"])
    spec = job["spec"]["template"]["spec"]
    container = spec["containers"][0]
    assert job["metadata"] == {"name": "chaos-x", "namespace": "rocketmq"}
    assert spec["serviceAccountName"] == "rocketmq-chaos"
    assert container["args"] == ["chaos", "in-cluster", "broker-pod-kill", "--rate=10"]
    assert container["image"] == workloads.CHAOS_IMAGE
    assert container["imagePullPolicy"] == "Never"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]  # noqa: S108 - the pod's scratch
    assert job["spec"]["backoffLimit"] == 0
    assert spec["nodeSelector"] == {"node-role.kubernetes.io/control-plane": ""}  # outside the brokers' nodes


def test_the_ha_check_reads_who_reconciled_what_from_the_operators_own_log_lines(tmp_path: Path) -> None:
    """The lab proves "no policy handled by two replicas at once" from these lines: they must be the ones the
    operator writes (a renamed logger once left the check reading nothing)."""
    record = logging.LogRecord(policies.log.name, logging.INFO, __file__, 1, "[%s] %s: %s",
                               ("ns/p-1", "Synced", "applied on all 2 master brokers"), None)
    written = logging.Formatter(LOG_FORMAT).format(record)
    cluster = type("Cluster", (), {"state": tmp_path})()
    streams = lab._LogStreams(cluster, "ns", ["pod-a"])  # type: ignore[arg-type]
    streams.file_of("pod-a").write_text(f"2026-12-06T05:16:01.123456789Z {written}\n"
                                      "2026-12-06T05:16:02.000000000Z 2026-12-06 05:16:02,000 INFO kopf.objects: "
                                      "[ns/p-2] Handler 'finalize' succeeded.\n")

    assert list(streams.handled("ns")) == ["pod-a"]
    assert list(streams.handled("ns")["pod-a"]) == ["p-1"]
    assert streams.handler_of("ns/p-1") == "pod-a"
    assert streams.handler_of("ns/p-2") is None
