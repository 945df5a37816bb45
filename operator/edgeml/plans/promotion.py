"""Which registered version should be champion: gates, approvals, and the alias move."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from edgeml.api.edgemodel import Promotion, PromotionGate
from edgeml.registry.versions import (
    CHAMPION_METRIC_PREFIX,
    COMPARED_WITH_TAG,
    REQUIRES_APPROVAL_TAG,
)

CHAMPION = "champion"
APPROVE_ANNOTATION = "edgeml.io/approve"
APPROVED_BY_ANNOTATION = "edgeml.io/approved-by"
APPROVAL_ID_ANNOTATION = "edgeml.io/approval-id"
APPROVAL_ID_TAG = "edgeml.io/approval-id"
PROMOTED_BY_TAG = "edgeml.io/promoted-by"
PROMOTED_AT_TAG = "edgeml.io/promoted-at"
APPROVED_OVER_TAG = "edgeml.io/approved-over"
"""On a version promoted by approval: the newest version registered then. Versions up to
it were the approver's to choose among, so promotion does not bring them back."""

# For these, smaller is better; every other metric, larger is better.
LOWER_IS_BETTER = frozenset({"rmse", "mae"})


@dataclass(frozen=True)
class Candidate:
    """A registered version as promotion sees it."""

    version: int
    metrics: Mapping[str, float]
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class GateResult:
    """One gate applied to one version."""

    gate: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class Decision:
    """What promotion decided for the newest version (and whether to move the alias)."""

    outcome: Literal["Promote", "Rejected", "AwaitingApproval", "UpToDate", "NoVersions"]
    version: int | None
    by: str | None = None
    approval_id: str | None = None
    gates: tuple[GateResult, ...] = ()
    approved_over: int | None = None
    """For a promotion by approval: the newest version registered (APPROVED_OVER_TAG)."""

    @property
    def message(self) -> str:
        failed = [g.detail for g in self.gates if not g.passed]
        if self.outcome == "Promote":
            passed = "; ".join(g.detail for g in self.gates)
            return f"Version {self.version} becomes champion (by {self.by})" + (
                f": {passed}." if passed else "."
            )
        if self.outcome == "Rejected":
            return f"Version {self.version} stays out: {'; '.join(failed)}."
        if self.outcome == "AwaitingApproval":
            passed = "passes every gate" if not failed else f"fails gates ({'; '.join(failed)})"
            compared = [g.detail for g in self.gates if g.passed and "champion" in g.detail]
            if compared and not failed:
                passed += f" ({'; '.join(compared)})"
            return (
                f"Version {self.version} {passed} and waits for approval: "
                f"`edgeml promote <model> --version {self.version}`."
            )
        if self.outcome == "UpToDate":
            return f"Version {self.version} is champion; no newer version."
        return "No version is registered yet."


def describe_gate(gate: PromotionGate) -> str:
    """A gate in words, e.g. `f1 >= 0.85`."""
    if gate.min is not None:
        return f"{gate.metric} >= {gate.min}"
    if gate.max is not None:
        return f"{gate.metric} <= {gate.max}"
    if gate.not_worse_than_champion_by is not None:
        margin = gate.not_worse_than_champion_by
        return f"{gate.metric} not worse than champion's by more than {margin}"
    return f"slice gap of {gate.metric} <= {gate.max_slice_gap}"


def check_gate(gate: PromotionGate, candidate: Candidate, champion: Candidate | None) -> GateResult:
    """Apply one gate; a metric the version did not log fails it."""
    name = describe_gate(gate)
    key = f"slice_gap_{gate.metric}" if gate.max_slice_gap is not None else gate.metric
    value = candidate.metrics.get(key)
    if value is None:
        return GateResult(name, False, f"{key} was not logged")
    if gate.min is not None:
        return GateResult(name, value >= gate.min, f"{gate.metric} {value:.4g} vs min {gate.min}")
    if gate.max is not None:
        return GateResult(name, value <= gate.max, f"{gate.metric} {value:.4g} vs max {gate.max}")
    if gate.max_slice_gap is not None:
        return GateResult(
            name, value <= gate.max_slice_gap, f"{key} {value:.4g} vs max {gate.max_slice_gap}"
        )
    margin = gate.not_worse_than_champion_by or 0.0
    own = champion.metrics.get(gate.metric) if champion else None
    if champion is None or own is None:
        return GateResult(name, True, f"{gate.metric} {value:.4g}, no champion to compare")
    # Like with like: the champion scored on this version's own held-out rows, when the
    # training could (after drift, the champion's own numbers are of the old data).
    same_rows = (
        candidate.metrics.get(CHAMPION_METRIC_PREFIX + gate.metric)
        if candidate.tags.get(COMPARED_WITH_TAG) == str(champion.version)
        else None
    )
    best = own if same_rows is None else same_rows
    lower = gate.metric in LOWER_IS_BETTER
    passed = value <= best + margin if lower else value >= best - margin
    if same_rows is None:
        detail = (
            f"{gate.metric} {value:.4g} vs champion {best:.4g} on its own held-out rows "
            f"(margin {margin})"
        )
    else:
        detail = (
            f"{gate.metric} {value:.4g} vs champion (version {champion.version}) {best:.4g} "
            f"on the same held-out rows (margin {margin}; {own:.4g} on its own)"
        )
    return GateResult(name, passed, detail)


def _chosen_up_to(champion: Candidate | None, champion_version: int) -> int:
    """The newest version the champion was chosen over: itself, or for a champion an
    approver picked (a rollback to an older version, say) every version registered then,
    so Auto does not promote a newer one of those back over the approver's choice."""
    over = champion.tags.get(APPROVED_OVER_TAG, "") if champion is not None else ""
    return max(champion_version, int(over)) if over.isdigit() else champion_version


def _alias_move_missed(target: Candidate, champion: Candidate | None) -> bool:
    """The approved version was tagged for its promotion but the alias never moved (the
    operator stopped between the two): the champion was promoted before it, so the
    approval is not consumed yet. A champion promoted after it (or by someone else, with
    no promoted-at tag) means a later choice, which a stale approval must not undo."""
    tagged_at = _when(target.tags.get(PROMOTED_AT_TAG))
    if tagged_at is None:
        return False
    if champion is None:
        return True
    champion_at = _when(champion.tags.get(PROMOTED_AT_TAG))
    return champion_at is not None and champion_at < tagged_at


def _when(text: str | None) -> datetime | None:
    try:
        when = datetime.fromisoformat(text) if text else None
    except ValueError:
        return None
    return when if when is None or when.tzinfo is not None else None


def decide_promotion(
    promotion: Promotion,
    versions: list[Candidate],
    champion_version: int | None,
    annotations: Mapping[str, str],
) -> Decision:
    """Promote an approved version, or the newest one that passes the gates in Auto mode
    (unless its TrainingRun asked for approval: a DriftPolicy with action Retrain)."""
    by_number = {v.version: v for v in versions}
    champion = by_number.get(champion_version) if champion_version is not None else None
    approved = annotations.get(APPROVE_ANNOTATION, "").strip()
    approval_id = annotations.get(APPROVAL_ID_ANNOTATION, "") or f"version-{approved}"
    if approved.isdigit() and int(approved) in by_number:
        target = by_number[int(approved)]
        consumed = target.tags.get(APPROVAL_ID_TAG) == approval_id and not _alias_move_missed(
            target, champion
        )
        if not consumed and int(approved) != champion_version:
            who = annotations.get(APPROVED_BY_ANNOTATION) or "an approver"
            return Decision(
                "Promote", target.version, by=who, approval_id=approval_id,
                approved_over=max(by_number),
            )  # fmt: skip
    if not versions:
        return Decision("NoVersions", None)
    newest = max(versions, key=lambda v: v.version)
    if champion_version is not None and newest.version <= _chosen_up_to(champion, champion_version):
        return Decision("UpToDate", champion_version)
    gates = tuple(check_gate(g, newest, champion) for g in promotion.gates)
    if promotion.mode == "Manual" or newest.tags.get(REQUIRES_APPROVAL_TAG) == "true":
        return Decision("AwaitingApproval", newest.version, gates=gates)
    if all(g.passed for g in gates):
        return Decision("Promote", newest.version, by="auto", gates=gates)
    return Decision("Rejected", newest.version, gates=gates)
