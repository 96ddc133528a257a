"""How GitOps tools judge our objects: Argo CD through our Lua health check, Flux through kstatus.

The e2e tests call `observed` at the moments a policy's status matters to them (Ready, Conflict, paused, ...): the
live object is judged on the spot, and with ROCKETMQ_RETRY_RECORD_GITOPS=1 also kept under tests/fixtures/gitops,
where tests/unit/test_gitops_health.py judges it again on every run without a cluster.
"""

import json
import os
from pathlib import Path
from typing import Any, Final, NamedTuple

from lupa import lua51  # Argo CD's gopher-lua implements Lua 5.1

REPO: Final = Path(__file__).resolve().parents[1]
HEALTH_LUA: Final = REPO / "examples" / "argocd" / "health.lua"
FIXTURES: Final = Path(__file__).resolve().parent / "fixtures" / "gitops"
RECORD_ENV: Final = "ROCKETMQ_RETRY_RECORD_GITOPS"
_NOT_IN_ARGOCD: Final = ("string", "math", "io", "os", "debug", "coroutine", "load", "loadstring", "dofile",
                         "loadfile", "require", "module", "package")


class Verdict(NamedTuple):
    status: str
    message: str


# What each recorded moment must look like to Argo CD (our Lua) and to Flux (kstatus).
EXPECTED: Final = {
    "created": ("Progressing", "Current"),  # kstatus cannot tell a CR without status from a finished one
    "ready": ("Healthy", "Current"),
    "conflict": ("Degraded", "Failed"),
    "invalid-spec": ("Degraded", "Failed"),
    "broker-unreachable": ("Progressing", "InProgress"),
    "partially-applied": ("Progressing", "InProgress"),
    "paused": ("Suspended", "InProgress"),  # Ready=Unknown: kstatus waits, Flux's `wait` times out on it
    "unmanaged": ("Suspended", "InProgress"),
}


def argocd_health(obj: dict[str, Any]) -> Verdict:
    """Run examples/argocd/health.lua as Argo CD does: a fresh state, `obj` global, base and table libraries only."""
    lua = lua51.LuaRuntime(register_eval=False, register_builtins=False)
    lua.execute('debug.setmetatable("", nil)')  # no string methods either: Argo CD never opens the string library
    globals_ = lua.globals()
    for name in _NOT_IN_ARGOCD:
        globals_[name] = None
    globals_.obj = lua.table_from(obj, recursive=True)
    result = lua.execute(HEALTH_LUA.read_text())
    return Verdict(str(result["status"]), str(result["message"]))


def kstatus(obj: dict[str, Any]) -> Verdict:
    """kstatus's Compute for a custom resource, as Flux's health checks use it (sigs.k8s.io/cli-utils,
    pkg/kstatus/status: checkGenericProperties, checkGeneration, then checkReadyCondition, else Current)."""
    metadata, status = obj.get("metadata", {}), obj.get("status") or {}
    if metadata.get("deletionTimestamp"):
        return Verdict("Terminating", "Resource scheduled for deletion")
    generation, observed = metadata.get("generation"), status.get("observedGeneration")
    if generation is not None and observed is not None and observed != generation:
        return Verdict("InProgress", f"{obj['kind']} generation is {generation}, but latest observed generation "
                                     f"is {observed}")
    conditions = status.get("conditions") or []
    for condition in conditions:
        if condition["type"] == "Reconciling" and condition["status"] == "True":
            return Verdict("InProgress", condition.get("message", ""))
        if condition["type"] == "Stalled" and condition["status"] == "True":
            return Verdict("Failed", condition.get("message", ""))
    for condition in conditions:
        if condition["type"] == "Ready":
            if condition["status"] == "True":
                return Verdict("Current", "Resource is Ready")
            if condition["status"] in ("False", "Unknown"):
                return Verdict("InProgress", condition.get("message", ""))
    return Verdict("Current", "Resource is current")


def verdicts(obj: dict[str, Any]) -> tuple[str, str]:
    return argocd_health(obj).status, kstatus(obj).status


def observed(moment: str, obj: dict[str, Any]) -> None:
    """Judge a live object as Argo CD and Flux would; keep it as a fixture when ROCKETMQ_RETRY_RECORD_GITOPS is set."""
    assert verdicts(obj) == EXPECTED[moment], f"{moment}: {argocd_health(obj)}, {kstatus(obj)}\n{obj}"
    if os.environ.get(RECORD_ENV):
        kept = {**obj, "metadata": {k: v for k, v in obj["metadata"].items() if k != "managedFields"}}
        FIXTURES.mkdir(parents=True, exist_ok=True)
        (FIXTURES / f"{obj['kind'].lower()}-{moment}.json").write_text(json.dumps(kept, indent=2) + "\n")
