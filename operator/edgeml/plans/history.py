"""`edgeml history`: a model's lineage as one table, newest first.

Each row is a registered version (or a TrainingRun that registered none): why it was
trained (trigger, reason, the TrainingRun and its trigger id), what promotion decided
with both numbers of the fair comparison, and what each EdgeDeployment serving the
model did with it. Pure: the objects in, text out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

REASON_WIDTH = 60


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]


def _short(text: str | None, width: int = REASON_WIDTH) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _comparison(version: Mapping[str, Any]) -> str:
    """`f1 0.91 vs 0.62 (v3, same rows)`, for the first metric both have."""
    theirs = version.get("championMetrics") or {}
    ours = version.get("metrics") or {}
    for metric in sorted(theirs):
        if metric in ours:
            return (
                f"{metric} {ours[metric]:.3g} vs {theirs[metric]:.3g} "
                f"(v{version.get('comparedWith')}, same rows)"
            )
    return "-"


def _rollout(version: int, deployments: Sequence[Mapping[str, Any]]) -> str:
    parts = []
    for d in deployments:
        name = (d.get("metadata") or {}).get("name", "")
        ref = (d.get("spec") or {}).get("modelRef") or {}
        status = d.get("status") or {}
        stable = (status.get("stable") or {}).get("version")
        target = (status.get("target") or {}).get("version")
        if version in (status.get("rejectedVersions") or []):
            parts.append(f"{name}: rolled back")
        elif stable == version and target == version:
            parts.append(f"{name}: serving")
        elif target == version:
            parts.append(f"{name}: rolling out")
        elif ref.get("version") is not None and ref.get("version") != version:
            continue  # pinned elsewhere: nothing to say about this version
    return ", ".join(parts) or "-"


def _promotion(
    version: Mapping[str, Any], champion: int | None, candidate: Mapping[str, Any]
) -> str:
    number = version.get("version")
    if number == champion:
        return "champion"
    if version.get("promotion"):
        return str(version["promotion"])
    if candidate.get("version") == number:
        return str(candidate.get("outcome") or "-")
    return "-"


def render_history(
    model: Mapping[str, Any],
    runs: Sequence[Mapping[str, Any]],
    deployments: Sequence[Mapping[str, Any]],
    policies: Sequence[Mapping[str, Any]] = (),
) -> str:
    """The lineage table of one EdgeModel: its versions and runs, newest first."""
    meta = model.get("metadata") or {}
    status = model.get("status") or {}
    name = meta.get("name", "")
    champion = (status.get("champion") or {}).get("version")
    candidate = status.get("candidate") or {}
    serving = [
        d for d in deployments if ((d.get("spec") or {}).get("modelRef") or {}).get("name") == name
    ]
    runs_by_name = {(r.get("metadata") or {}).get("name"): r for r in runs}
    header = ["VERSION", "CREATED", "TRIGGER", "TRAININGRUN", "PROMOTION", "VS CHAMPION",
              "ROLLOUT", "TRIGGER ID", "REASON"]  # fmt: skip
    rows: list[tuple[str, list[str]]] = []
    listed: set[str] = set()
    for v in status.get("versions") or []:
        run = (v.get("trainingRun") or "").rpartition("/")[2]
        listed.add(run)
        rows.append(
            (
                str(v.get("created") or ""),
                [
                    str(v.get("version")),
                    str(v.get("created") or "-"),
                    str(v.get("trigger") or "-"),
                    run or "-",
                    _promotion(v, champion, candidate),
                    _comparison(v),
                    _rollout(int(v.get("version") or 0), serving),
                    str(v.get("triggerId") or "-"),
                    _short(v.get("reason") or ""),
                ],
            )
        )
    for run_name, run in runs_by_name.items():
        if not run_name or run_name in listed:
            continue
        rmeta = run.get("metadata") or {}
        rstatus = run.get("status") or {}
        spec = run.get("spec") or {}
        if (spec.get("modelRef") or {}).get("name") != name or rstatus.get("modelVersion"):
            continue
        phase = rstatus.get("phase") or "Pending"
        outcome = (
            phase if phase != "Failed" else f"Failed: {_short(rstatus.get('failureReason'), 40)}"
        )
        rows.append(
            (
                str(rmeta.get("creationTimestamp") or ""),
                [
                    "-",
                    str(rmeta.get("creationTimestamp") or "-"),
                    str(spec.get("trigger") or "-"),
                    run_name,
                    outcome,
                    "-",
                    "-",
                    str((rmeta.get("labels") or {}).get("edgeml.io/trigger-id") or "-"),
                    _short(spec.get("reason") or ""),
                ],
            )
        )
    rows.sort(key=lambda r: r[0], reverse=True)
    lines = [f"EdgeModel {meta.get('namespace')}/{name}: champion version {champion or '-'}"]
    if rows:
        lines += _table([header, *(r for _, r in rows)])
    else:
        lines.append("No versions or TrainingRuns yet.")
    for p in policies:
        pstatus = p.get("status") or {}
        retraining = pstatus.get("retraining") or {}
        if retraining:
            lines.append(
                f"DriftPolicy {(p.get('metadata') or {}).get('name')}: retraining "
                f"{retraining.get('state', '-')}"
                + (f" until {retraining['until']}" if retraining.get("until") else "")
                + (f": {retraining['message']}" if retraining.get("message") else "")
            )
    return "\n".join(lines) + "\n"
