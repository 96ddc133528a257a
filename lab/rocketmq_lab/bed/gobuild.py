"""Kubernetes, etcd and Helm binaries built from their Go modules through pinned wrapper modules.

No release binaries can be downloaded here, so each wrapper module in toolchains/go pins the
upstream module (and, for Kubernetes, every staging module at its published v0.x tag).
"""

from pathlib import Path

from . import artifacts, paths, prerequisites, versions

_GO_ENV = {"GOTOOLCHAIN": "local", "CGO_ENABLED": "0", "GOFLAGS": "-mod=readonly"}


def _version_ldflags(packages: tuple[str, ...], version: str) -> str:
    major, minor = version.lstrip("v").split(".")[:2]
    flags = []
    for package in packages:
        flags += [f"-X {package}.gitVersion={version}", f"-X {package}.gitMajor={major}",
                  f"-X {package}.gitMinor={minor}", f"-X {package}.gitTreeState=clean",
                  f"-X {package}.buildDate=1970-01-01T00:00:00Z"]
    return " ".join(flags)


def _go_build(module: str, out: Path, packages: list[str], ldflags: str, *, tags: str = "",
              binary: str = "") -> None:
    """Build `packages` into out/bin (as out/bin/<binary> when one package needs a fixed name)."""
    go = prerequisites.require(prerequisites.GO)
    (out / "bin").mkdir()
    destination = str(out / "bin" / binary) if binary else f"{out / 'bin'}/"
    argv = [go, "build", "-trimpath", "-pgo=off", f"-ldflags=-s -w {ldflags}", "-o", destination]
    if tags:
        argv.append(f"-tags={tags}")
    artifacts.run_logged([*argv, *packages], log_file=out.with_suffix(".log"),
                         cwd=paths.TOOLCHAINS / "go" / module, env=_GO_ENV)


def _kubernetes(flavour: str, names: tuple[str, ...]) -> Path:
    version = versions.KUBERNETES
    ldflags = _version_ldflags(("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"), version)
    commands = [f"k8s.io/kubernetes/cmd/{name}" for name in names]
    target = paths.cache_root() / flavour / version
    return artifacts.ensure(
        target, f"{', '.join(names)} {version}",
        lambda out: _go_build("kubernetes", out, commands, ldflags, tags="selinux,notest,grpcnotrace"),
        needs=(prerequisites.GO,),
    ) / "bin"


def kubernetes_bin() -> Path:
    """kube-apiserver, kube-controller-manager and kubectl (a cold build takes 15-30 min on 2 cores)."""
    return _kubernetes("kubernetes", ("kube-apiserver", "kube-controller-manager", "kubectl"))


def kubernetes_node_bin() -> Path:
    """What a kind node adds to kubernetes_bin(): kubelet, kubeadm, kube-scheduler and kube-proxy."""
    return _kubernetes("kubernetes-node", ("kubelet", "kubeadm", "kube-scheduler", "kube-proxy"))


def _go_install(module: str, version: str, package: str = "") -> Path:
    """`go install module/package@version` into the cache (modules whose own go.mod has no replace directives)."""
    target = paths.cache_root() / module.rsplit("/", 1)[-1] / version

    def install(out: Path) -> None:
        go = prerequisites.require(prerequisites.GO)
        artifacts.run_logged([go, "install", "-trimpath", "-ldflags=-s -w", f"{module}{package}@{version}"],
                             log_file=out.with_suffix(".log"), env={**_GO_ENV, "GOBIN": str(out / "bin"),
                                                                    "GOFLAGS": ""})

    return artifacts.ensure(target, f"{module} {version}", install, needs=(prerequisites.GO,)) / "bin"


def kind_bin() -> Path:
    return _go_install("sigs.k8s.io/kind", versions.KIND)


def coredns_bin() -> Path:
    return _go_install("github.com/coredns/coredns", versions.COREDNS)


def etcd_bin() -> Path:
    version = versions.ETCD
    ldflags = f"-X go.etcd.io/etcd/api/v3/version.GitSHA={version}"
    target = paths.cache_root() / "etcd" / version
    return artifacts.ensure(
        target, f"etcd {version}",
        lambda out: _go_build("etcd", out, ["go.etcd.io/etcd/server/v3"], ldflags, binary="etcd"),
        needs=(prerequisites.GO,),
    ) / "bin"


def helm_bin() -> Path:
    version = versions.HELM
    ldflags = f"-X helm.sh/helm/v3/internal/version.version={version}"
    target = paths.cache_root() / "helm" / version
    return artifacts.ensure(
        target, f"Helm {version}", lambda out: _go_build("helm", out, ["helm.sh/helm/v3/cmd/helm"], ldflags),
        needs=(prerequisites.GO,),
    ) / "bin"
