"""`edgeml rollout status`: an EdgeDeployment's rollout as a person reads it (pure).

Like `kubectl rollout status` and Argo Rollouts' `status`: the phase and its message,
the versions with their nodes, the step, the latest analysis numbers, the zones; and
whether the rollout has ended (Healthy, or rolled back) for `--watch` and the exit code.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

ENDED_OK = frozenset({"Healthy"})
ENDED_BAD = frozenset({"RolledBack", "Invalid"})


def rollout_outcome(deployment: Mapping[str, Any]) -> str | None:
    """ "ok" once the rollout is done, "failed" once it was rolled back (or the spec is
    invalid), None while it is under way."""
    status = deployment.get("status") or {}
    if status.get("observedGeneration") != (deployment.get("metadata") or {}).get("generation"):
        return None  # the operator has not seen the latest spec yet
    phase = status.get("phase")
    if phase in ENDED_OK:
        return "ok"
    if phase in ENDED_BAD:
        return "failed"
    return None


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def render_rollout(deployment: Mapping[str, Any]) -> str:
    """The rollout's state in a few lines (and a table of the latest analysis)."""
    meta = deployment.get("metadata") or {}
    status = deployment.get("status") or {}
    lines = [
        f"EdgeDeployment {meta.get('namespace')}/{meta.get('name')}: "
        f"{status.get('phase', 'Pending')}",
    ]
    if status.get("message"):
        lines.append(f"  {status['message']}")
    target = status.get("target") or {}
    stable = status.get("stable") or {}
    canary = status.get("canary") or {}
    lines.append(
        f"Target version {_fmt(target.get('version'))}; stable version "
        f"{_fmt(stable.get('version'))} on {stable.get('nodes', 0)} nodes "
        f"({stable.get('ready', 0)} serving)"
        + (
            f"; canary version {_fmt(canary.get('version'))} on {canary.get('nodes', 0)} nodes "
            f"({canary.get('ready', 0)} serving), step {canary.get('step', 0)}"
            if canary.get("version") is not None
            else ""
        )
        + "."
    )
    rejected = status.get("rejectedVersions") or []
    if rejected:
        lines.append(f"Rejected versions: {', '.join(str(v) for v in rejected)}.")
    progress = status.get("rollout") or {}
    if progress.get("reason"):
        lines.append(f"Why: {progress['reason']}")
    analysis = canary.get("analysis") or []
    if analysis:
        rows = [["METRIC", "CANARY", "STABLE", "MAX", "SAMPLES", "PASSED"]] + [
            [a.get("metric", ""), _fmt(a.get("canary")), _fmt(a.get("stable")),
             _fmt(a.get("max")), str(a.get("samples", 0)), "yes" if a.get("passed") else "no"]
            for a in analysis
        ]  # fmt: skip
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines.append("")
        lines += [
            "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
        ]
    zones = status.get("zones") or []
    if zones:
        lines.append("")
        lines.append(
            "Zones: "
            + ", ".join(
                f"{z['zone']} {z.get('ready', 0)}/{z.get('nodes', 0)} serving"
                + (f" ({z['canary']} canary)" if z.get("canary") else "")
                for z in zones
            )
        )
    return "\n".join(lines) + "\n"
