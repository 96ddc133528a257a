"""The kind node image and the control-plane images it carries, from Debian packages and our own Go builds.

kind's own node image is pulled from a registry; here it is assembled the way kind's `images/base` Dockerfile
does, from parts this machine can reach: a Debian root filesystem with systemd, containerd, runc and the CNI
plugins; kind's base files from its Go module; kubelet, kubeadm and kubectl built from the Kubernetes module;
and the images kubeadm starts (tagged exactly as `kubeadm config images list` names them) imported into the
node's containerd beforehand, since nothing can be pulled when the cluster starts.
"""

import json
import logging
import os
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from .. import artifacts, gobuild, paths, prerequisites, versions
from . import images
from .engine import docker

log = logging.getLogger(__name__)

# kubeadm v1.36's own pins (cmd/kubeadm/app/constants): the tags it expects; etcd's tag carries our newer etcd.
REGISTRY: Final = "registry.k8s.io"
PAUSE_TAG: Final = "3.10.2"
ETCD_TAG: Final = "3.6.8-0"

NODE_PACKAGES: Final = (
    "systemd", "dbus", "containerd", "runc", "containernetworking-plugins", "iptables", "nftables", "conntrack",
    "iproute2", "ethtool", "util-linux", "mount", "kmod", "libseccomp2", "pigz", "socat", "e2fsprogs", "ebtables",
    "ipset", "ca-certificates", "procps", "jq", "bash", "iputils-ping",
)
NETWORK_TOOLS: Final = images.Rootfs("netbase", ("iptables", "nftables", "conntrack", "ipset", "kmod", "iproute2"))
NODE_ROOTFS: Final = images.Rootfs("kind-node-rootfs", NODE_PACKAGES)

# What kind's base Dockerfile does after installing its packages, for Debian's containerd and CNI plugins.
_NODE_SETUP: Final = " && ".join((
    "ln -sf /usr/bin/containerd /usr/bin/containerd-shim-runc-v2 /usr/bin/ctr /usr/local/bin/",
    "mkdir -p /opt/cni/bin /etc/cni/net.d /etc/kubernetes/manifests",
    "ln -sf /usr/lib/cni/* /opt/cni/bin/",
    "ctr oci spec | jq '.hooks.createContainer[.hooks.createContainer | length] |= . + "
    "{\"path\": \"/kind/bin/mount-product-files.sh\"}' | jq 'del(.process.rlimits)' > /etc/containerd/cri-base.json",
    "find /lib/systemd/system/sysinit.target.wants/ -name systemd-tmpfiles-setup.service -delete",
    "rm -f /lib/systemd/system/multi-user.target.wants/* /etc/systemd/system/*.wants/*"
    " /lib/systemd/system/local-fs.target.wants/* /lib/systemd/system/sockets.target.wants/*udev*"
    " /lib/systemd/system/sockets.target.wants/*initctl* /lib/systemd/system/basic.target.wants/*",
    "echo ReadKMsg=no >> /etc/systemd/journald.conf",
    "ln -sf /usr/lib/systemd/systemd /sbin/init",
    "systemctl enable kubelet.service containerd.service undo-mount-hacks.service",
    "systemctl mask systemd-binfmt.service",
))


def _kind_base_files() -> dict[str, tuple[bytes, int]]:
    """kind's `images/base/files` from its module: entrypoint, systemd units, kubelet drop-ins, containerd config."""
    go = prerequisites.require(prerequisites.GO)
    module = subprocess.run([go, "mod", "download", "-json", f"sigs.k8s.io/kind@{versions.KIND}"],
                            capture_output=True, text=True, check=True, env=_go_env()).stdout
    root = Path(json.loads(module)["Dir"]) / "images" / "base" / "files"
    files: dict[str, tuple[bytes, int]] = {}
    for file in sorted(p for p in root.rglob("*") if p.is_file()):
        relative = file.relative_to(root)
        executable = relative.parts[0] == "usr" or relative.parts[:2] == ("kind", "bin")
        files[f"/{relative}"] = (file.read_bytes(), 0o755 if executable else 0o644)
    files["/etc/containerd/config.toml"] = (_containerd_config(files["/etc/containerd/config.toml"][0]), 0o644)
    return files


def _go_env() -> dict[str, str]:
    return {**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=mod"}


def _containerd_config(original: bytes) -> bytes:
    """kind's containerd config with kubeadm's pause tag, and oom_score_adj restricted: a VM without
    CAP_SYS_RESOURCE refuses lowering it, and every pod sandbox then fails (`can't get final child's PID`)."""
    text = original.decode()
    text = text.replace('sandbox_image = "registry.k8s.io/pause:3.10"',
                        f'sandbox_image = "{REGISTRY}/pause:{PAUSE_TAG}"')
    text = text.replace("restrict_oom_score_adj = false", "restrict_oom_score_adj = true")
    if f"pause:{PAUSE_TAG}" not in text or "restrict_oom_score_adj = true" not in text:
        raise RuntimeError("kind's containerd config changed shape: review nodeimage._containerd_config")
    return text.encode()


def pause_bin() -> Path:
    """The pause binary, compiled statically from the Kubernetes module's build/pause/linux/pause.c."""
    def build(out: Path) -> None:
        go = prerequisites.require(prerequisites.GO)
        module = subprocess.run([go, "mod", "download", "-json", f"k8s.io/kubernetes@{versions.KUBERNETES}"],
                                capture_output=True, text=True, check=True, env=_go_env()).stdout
        source = Path(json.loads(module)["Dir"]) / "build" / "pause" / "linux" / "pause.c"
        (out / "bin").mkdir()
        artifacts.run_logged(["gcc", "-Os", "-Wall", "-Werror", "-static", f"-DVERSION=v{PAUSE_TAG}", "-o",
                              str(out / "bin" / "pause"), str(source)], log_file=out.with_suffix(".log"))

    return artifacts.ensure(paths.cache_root() / "pause" / PAUSE_TAG, f"pause {PAUSE_TAG}", build) / "bin"


def control_plane_images() -> dict[str, str]:
    """kubeadm's images (its tag -> our image), each a static binary on scratch, kube-proxy on network tools."""
    server, node = gobuild.kubernetes_bin(), gobuild.kubernetes_node_bin()
    path_env = "ENV PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"

    def on(base: str, name: str, binary: Path, extra: str = "") -> str:
        return images.build_from_files(name, base, {f"/usr/local/bin/{binary.name}": images.binary(binary)},
                                       path_env + extra)

    version = versions.KUBERNETES
    return {
        f"{REGISTRY}/kube-apiserver:{version}": on("scratch", "kube-apiserver", server / "kube-apiserver"),
        f"{REGISTRY}/kube-controller-manager:{version}":
            on("scratch", "kube-controller-manager", server / "kube-controller-manager"),
        f"{REGISTRY}/kube-scheduler:{version}": on("scratch", "kube-scheduler", node / "kube-scheduler"),
        f"{REGISTRY}/kube-proxy:{version}": on(NETWORK_TOOLS.image(), "kube-proxy", node / "kube-proxy"),
        f"{REGISTRY}/etcd:{ETCD_TAG}": on("scratch", "etcd", gobuild.etcd_bin() / "etcd"),
        f"{REGISTRY}/coredns/coredns:{versions.COREDNS}":
            on("scratch", "coredns", gobuild.coredns_bin() / "coredns", 'ENTRYPOINT ["/usr/local/bin/coredns"]\n'),
        f"{REGISTRY}/pause:{PAUSE_TAG}":
            on("scratch", "pause", pause_bin() / "pause", 'ENTRYPOINT ["/usr/local/bin/pause"]\n'),
    }


def _assembled() -> str:
    server, node = gobuild.kubernetes_bin(), gobuild.kubernetes_node_bin()
    files = _kind_base_files()
    files |= {f"/usr/bin/{name}": images.binary(directory / name)
              for directory, name in ((node, "kubelet"), (node, "kubeadm"), (server, "kubectl"))}
    files["/kind/version"] = (f"{versions.KUBERNETES}\n".encode(), 0o644)
    return images.build_from_files("kind-node-assembled", NODE_ROOTFS.image(), files, f"RUN {_NODE_SETUP}\n")


def node_image() -> str:
    """The node image for `kind create cluster --image`, with kubeadm's images already in its containerd."""
    assembled, preload = _assembled(), control_plane_images()
    ref = f"{images.REPOSITORY}/kind-node:{images.digest(assembled, *sorted(f'{t}={r}' for t, r in preload.items()))}"
    if images.exists(ref):
        return ref
    log.info("preloading %d control-plane images into the node image %s", len(preload), ref)
    _preload(assembled, preload, ref)
    return ref


def _preload(assembled: str, preload: Mapping[str, str], ref: str) -> None:
    for target, source in preload.items():
        images.tag(source, target)
    container = docker("run", "-d", "--privileged", "--entrypoint=sleep", assembled, "infinity").stdout.decode().strip()
    try:
        docker("exec", "-d", container, "sh", "-c", "containerd > /var/log/preload-containerd.log 2>&1")
        deadline = time.monotonic() + 60
        while docker("exec", container, "ctr", "version", check=False, timeout=30).returncode != 0:
            if time.monotonic() > deadline:
                raise RuntimeError("containerd did not start inside the node image to preload images")
            time.sleep(0.5)
        for target in preload:
            saved = docker("save", target, timeout=600).stdout
            docker("exec", "-i", container, "ctr", "--namespace=k8s.io", "images", "import", "--all-platforms",
                   "--no-unpack", "-", input_bytes=saved, timeout=600)
        docker("exec", container, "sh", "-c", "pkill containerd; while pgrep -x containerd; do sleep 0.2; done",
               timeout=60)
        committed = docker("commit", container).stdout.decode().strip()
    finally:
        docker("rm", "-f", container, check=False)
    final = images.build_from_files("kind-node-final", committed, {}, "\n".join((
        "ENV container=docker", "STOPSIGNAL SIGRTMIN+3",
        'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]', "CMD []", "")))
    images.tag(final, ref)
