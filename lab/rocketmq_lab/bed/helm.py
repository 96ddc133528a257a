"""The project's Helm chart through Helm built from its Go module: lint, render, and the values users pass."""

import subprocess
from pathlib import Path
from typing import Any

import yaml

from .. import project
from . import gobuild, versions


def helm(*args: str, input_text: str | None = None, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(gobuild.helm_bin() / "helm"), *args], capture_output=True, text=True,
                          input=input_text, timeout=timeout, check=False)


def render(*, release: str, namespace: str, values: dict[str, Any] | None = None, include_crds: bool = False,
           chart: Path | None = None) -> subprocess.CompletedProcess[str]:
    """`helm template` with `values` on stdin; the caller judges the exit code (schema violations fail it).

    `chart` defaults to the checkout's. The bed's Kubernetes version is passed on: a Helm built from source otherwise
    assumes v1.20.
    """
    args = ["template", release, str(chart or project.checkout().chart), "--namespace", namespace, "--values", "-",
            "--kube-version", versions.KUBERNETES]
    if include_crds:
        args.append("--include-crds")
    return helm(*args, input_text=yaml.safe_dump(values or {}))


def manifests(rendered: str) -> list[dict[str, Any]]:
    """The objects of a rendered multi-document YAML stream, empty documents left out."""
    return [doc for doc in yaml.safe_load_all(rendered) if doc]
