"""`edgeml drift`: a DriftPolicy's latest evaluation as a table a person reads at a glance."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "<1e-6" if 0 < value < 1e-6 else f"{value:.3g}"
    return str(value)


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]


def render_drift(policy: Mapping[str, Any]) -> str:
    """The policy's decision, what the evaluation read, and its features by zone."""
    meta = policy.get("metadata") or {}
    status = policy.get("status") or {}
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    drifted = conditions.get("Drifted", {})
    lines = [
        f"DriftPolicy {meta.get('namespace')}/{meta.get('name')}: "
        f"Drifted={drifted.get('status', 'Unknown')} ({drifted.get('reason', 'NotEvaluated')})"
        + (f" since {status['driftedSince']}" if status.get("driftedSince") else ""),
    ]
    if drifted.get("message"):
        lines.append(f"  {drifted['message']}")
    ready = conditions.get("Ready", {})
    if ready.get("status") != "True" and ready.get("message"):
        lines.append(f"  Ready={ready.get('status')} ({ready.get('reason')}): {ready['message']}")
    ev = status.get("evaluation")
    if not ev:
        lines.append("No evaluation yet.")
        return "\n".join(lines) + "\n"
    lines.append(
        f"Window {ev.get('window')}, {ev.get('method')} > {_fmt(ev.get('threshold'))}: "
        f"{ev.get('samples', 0)} rows from {ev.get('pods', 0)} of {ev.get('podsTotal', 0)} pods "
        f"({ev.get('source')}), versions {', '.join(ev.get('versions') or []) or '-'}; "
        f"evaluated {status.get('lastEvaluated', '-')}."
    )
    zones = status.get("zones") or []
    by_zone = {z["zone"]: {f["name"]: f for f in z.get("top") or []} for z in zones}
    header = ["FEATURE", "SCORE", "DRIFTED", "Q-VALUE", *[z["zone"] for z in zones]]
    rows = [header]
    for f in status.get("features") or []:
        marks = []
        for z in zones:
            seen = by_zone[z["zone"]].get(f["name"])
            marks.append(
                "." if seen is None else _fmt(seen["score"]) + ("*" if seen.get("drifted") else "")
            )
        rows.append(
            [
                f["name"],
                _fmt(f["score"]),
                "yes" if f.get("drifted") else "no",
                _fmt(f.get("qValue")),
                *marks,
            ]
        )
    if status.get("predictionScore") is not None:
        marks = [_fmt(z.get("predictionScore")) for z in zones]
        rows.append(["(predictions)", _fmt(status["predictionScore"]), "", "", *marks])
    lines.append("")
    lines += _table(rows)
    if zones:
        lines.append("")
        lines += _table(
            [["ZONE", "SAMPLES", "DRIFTED", "WHY"]]
            + [
                [z["zone"], str(z.get("samples", 0)), "yes" if z.get("drifted") else "no",
                 ", ".join(z.get("reasons") or []) or "-"]
                for z in zones
            ]
        )  # fmt: skip
        lines.append("(a zone's column shows its 3 worst features; * over the threshold)")
    concept = status.get("concept")
    if concept:
        lines.append("")
        lines.append(
            f"{concept.get('metric')} from feedback: {_fmt(concept.get('value'))} over "
            f"{concept.get('labelled', 0)} labels (coverage {_fmt(concept.get('coverage'))})"
        )
    return "\n".join(lines) + "\n"
