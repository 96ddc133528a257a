"""The manifests users apply by hand (kind workflow, chaos Job, samples) are valid for the real API server."""

from pathlib import Path

import pytest

from tests.conftest import Kube

ROOT = Path(__file__).resolve().parents[2]
ORDERED = [ROOT / "examples" / "kind" / "rocketmq.yaml", ROOT / "chaos" / "manifests" / "rbac.yaml",
           ROOT / "chaos" / "manifests" / "job.yaml"]


@pytest.fixture
def applied(kube: Kube) -> list[str]:
    """Each file applied for real (server-side, strict field validation), deleted again afterwards."""
    outcomes = []
    try:
        for manifest in ORDERED:
            result = kube.plane.kubectl("apply", "--server-side", "--validate=strict", "-f", str(manifest))
            outcomes.append(f"{manifest.name}: {result.returncode} {result.stderr.strip()}")
        return outcomes
    finally:
        for manifest in reversed(ORDERED):
            kube.plane.kubectl("delete", "--ignore-not-found", "--wait=false", "-f", str(manifest))


def test_kind_and_chaos_manifests_apply_with_strict_validation(applied: list[str]) -> None:
    assert [line.split(":")[1].split()[0] for line in applied] == ["0"] * len(ORDERED), applied


def test_the_sample_policy_is_accepted(kube: Kube) -> None:
    kube.plane.kubectl("create", "namespace", "samples")
    result = kube.plane.kubectl("apply", "-n", "samples", "--server-side", "--validate=strict", "--dry-run=server",
                                "-f", str(ROOT / "examples" / "retrypolicy-orders.yaml"))
    assert result.returncode == 0, result.stderr
