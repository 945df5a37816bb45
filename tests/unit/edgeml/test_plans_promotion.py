"""Promotion: which version becomes champion, by gates in Auto mode or by approval."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgeml.api.edgemodel import Promotion, PromotionGate
from edgeml.plans.promotion import (
    APPROVAL_ID_ANNOTATION,
    APPROVAL_ID_TAG,
    APPROVE_ANNOTATION,
    APPROVED_BY_ANNOTATION,
    APPROVED_OVER_TAG,
    PROMOTED_AT_TAG,
    Candidate,
    check_gate,
    decide_promotion,
)
from edgeml.registry.versions import COMPARED_WITH_TAG, REQUIRES_APPROVAL_TAG

MIN_F1 = PromotionGate(metric="f1", min=0.8)
NOT_WORSE = PromotionGate(metric="f1", not_worse_than_champion_by=0.01)
MAX_RMSE = PromotionGate(metric="rmse", max=2.0)
RMSE_NOT_WORSE = PromotionGate(metric="rmse", not_worse_than_champion_by=0.1)
SLICE_GAP = PromotionGate(metric="f1", max_slice_gap=0.05)


def v(version: int, **metrics: float) -> Candidate:
    return Candidate(version, metrics)


@pytest.mark.parametrize(
    ("gate", "candidate", "champion", "passed"),
    [
        (MIN_F1, v(2, f1=0.81), None, True),
        (MIN_F1, v(2, f1=0.79), None, False),
        (MIN_F1, v(2, accuracy=0.9), None, False),  # f1 not logged
        (NOT_WORSE, v(2, f1=0.80), v(1, f1=0.805), True),  # within the margin
        (NOT_WORSE, v(2, f1=0.79), v(1, f1=0.805), False),
        (NOT_WORSE, v(1, f1=0.1), None, True),  # no champion to compare with
        (MAX_RMSE, v(2, rmse=1.9), None, True),
        (MAX_RMSE, v(2, rmse=2.1), None, False),
        (RMSE_NOT_WORSE, v(2, rmse=1.05), v(1, rmse=1.0), True),  # lower is better
        (RMSE_NOT_WORSE, v(2, rmse=1.2), v(1, rmse=1.0), False),
        (SLICE_GAP, v(2, f1=0.9, slice_gap_f1=0.04), None, True),
        (SLICE_GAP, v(2, f1=0.9, slice_gap_f1=0.06), None, False),
    ],
)
def test_gate(
    gate: PromotionGate, candidate: Candidate, champion: Candidate | None, passed: bool
) -> None:
    assert check_gate(gate, candidate, champion).passed is passed


AUTO = Promotion(mode="Auto", gates=[MIN_F1, NOT_WORSE])
MANUAL = Promotion(mode="Manual", gates=[MIN_F1])


def test_no_versions_means_nothing_to_do() -> None:
    assert decide_promotion(AUTO, [], None, {}).outcome == "NoVersions"


def test_auto_promotes_newest_version_that_passes_every_gate() -> None:
    decision = decide_promotion(AUTO, [v(1, f1=0.85), v(2, f1=0.9)], 1, {})
    assert (decision.outcome, decision.version, decision.by) == ("Promote", 2, "auto")


def test_auto_rejects_a_worse_version_and_keeps_the_champion() -> None:
    decision = decide_promotion(AUTO, [v(1, f1=0.9), v(2, f1=0.85)], 1, {})
    assert (decision.outcome, decision.version) == ("Rejected", 2)
    assert "vs champion 0.9" in decision.message


def test_champion_already_newest_is_up_to_date() -> None:
    assert decide_promotion(AUTO, [v(1, f1=0.9)], 1, {}).outcome == "UpToDate"


def test_manual_waits_for_approval_even_when_gates_pass() -> None:
    decision = decide_promotion(MANUAL, [v(1, f1=0.9)], None, {})
    assert (decision.outcome, decision.version) == ("AwaitingApproval", 1)
    assert "edgeml promote" in decision.message


def test_approval_promotes_the_named_version_and_records_who() -> None:
    notes = {
        APPROVE_ANNOTATION: "1",
        APPROVED_BY_ANNOTATION: "alice",
        APPROVAL_ID_ANNOTATION: "abc",
    }
    decision = decide_promotion(MANUAL, [v(1, f1=0.9)], None, notes)
    assert (decision.outcome, decision.version, decision.by, decision.approval_id) == (
        "Promote",
        1,
        "alice",
        "abc",
    )


def test_approval_can_roll_back_to_an_older_version_in_auto_mode() -> None:
    notes = {APPROVE_ANNOTATION: "1", APPROVAL_ID_ANNOTATION: "rollback"}
    decision = decide_promotion(AUTO, [v(1, f1=0.9), v(2, f1=0.95)], 2, notes)
    assert (decision.outcome, decision.version) == ("Promote", 1)


def test_a_consumed_approval_is_not_applied_again() -> None:
    notes = {APPROVE_ANNOTATION: "1", APPROVAL_ID_ANNOTATION: "abc"}
    consumed = Candidate(1, {"f1": 0.9}, {APPROVAL_ID_TAG: "abc"})
    decision = decide_promotion(AUTO, [consumed, v(2, f1=0.95)], 2, notes)
    assert decision.outcome == "UpToDate"


def test_a_rollback_by_approval_holds_in_auto_mode_until_a_newer_version_comes() -> None:
    notes = {APPROVE_ANNOTATION: "1", APPROVAL_ID_ANNOTATION: "rollback"}
    rolled_back = decide_promotion(AUTO, [v(1, f1=0.9), v(2, f1=0.95)], 2, notes)
    assert (rolled_back.outcome, rolled_back.version, rolled_back.approved_over) == (
        "Promote", 1, 2,
    )  # fmt: skip
    # What the operator tagged version 1 with, read back at the next reconcile:
    champion = Candidate(1, {"f1": 0.9}, {APPROVAL_ID_TAG: "rollback", APPROVED_OVER_TAG: "2"})
    held = decide_promotion(AUTO, [champion, v(2, f1=0.95)], 1, notes)
    assert (held.outcome, held.version) == ("UpToDate", 1)
    retrained = decide_promotion(AUTO, [champion, v(2, f1=0.95), v(3, f1=0.96)], 1, notes)
    assert (retrained.outcome, retrained.version, retrained.by) == ("Promote", 3, "auto")


@given(
    st.integers(min_value=1, max_value=6),
    st.integers(min_value=1, max_value=6),
    st.integers(min_value=0, max_value=4),
)
def test_auto_never_promotes_a_version_an_approver_chose_over(
    chosen: int, newest_then: int, added: int
) -> None:
    newest_then = max(chosen, newest_then)
    tags = {APPROVAL_ID_TAG: "x", APPROVED_OVER_TAG: str(newest_then)}
    versions = [
        Candidate(n, {"f1": 0.99}, tags if n == chosen else {})
        for n in range(1, newest_then + added + 1)
    ]
    decision = decide_promotion(AUTO, versions, chosen, {APPROVAL_ID_ANNOTATION: "x"})
    if added:
        assert (decision.outcome, decision.version) == ("Promote", newest_then + added)
    else:
        assert (decision.outcome, decision.version) == ("UpToDate", chosen)


def test_an_approval_whose_alias_move_was_interrupted_is_carried_out_again() -> None:
    # The operator tagged version 2 for the approval, then stopped before moving the alias.
    notes = {APPROVE_ANNOTATION: "2", APPROVAL_ID_ANNOTATION: "abc"}
    tagged = {APPROVAL_ID_TAG: "abc", PROMOTED_AT_TAG: "2026-12-03T10:00:00+00:00"}
    older = Candidate(1, {"f1": 0.9}, {PROMOTED_AT_TAG: "2026-12-01T09:00:00+00:00"})
    decision = decide_promotion(MANUAL, [older, Candidate(2, {"f1": 0.8}, tagged)], 1, notes)
    assert (decision.outcome, decision.version) == ("Promote", 2)
    first = decide_promotion(MANUAL, [Candidate(2, {"f1": 0.8}, tagged)], None, notes)
    assert (first.outcome, first.version) == ("Promote", 2)


def test_a_stale_approval_does_not_undo_a_later_promotion() -> None:
    notes = {APPROVE_ANNOTATION: "1", APPROVAL_ID_ANNOTATION: "abc"}
    approved = Candidate(
        1, {"f1": 0.9}, {APPROVAL_ID_TAG: "abc", PROMOTED_AT_TAG: "2026-12-01T09:00:00+00:00"}
    )
    later = Candidate(2, {"f1": 0.95}, {PROMOTED_AT_TAG: "2026-12-03T10:00:00+00:00"})
    assert decide_promotion(MANUAL, [approved, later], 2, notes).outcome == "UpToDate"
    by_hand = Candidate(2, {"f1": 0.95})  # the alias moved outside edgeml: no promoted-at
    assert decide_promotion(MANUAL, [approved, by_hand], 2, notes).outcome == "UpToDate"


def test_approval_of_an_unknown_version_is_ignored() -> None:
    decision = decide_promotion(MANUAL, [v(1, f1=0.9)], None, {APPROVE_ANNOTATION: "7"})
    assert decision.outcome == "AwaitingApproval"


@given(
    st.lists(st.floats(min_value=0, max_value=1, allow_nan=False), min_size=1, max_size=8),
    st.integers(min_value=0, max_value=8),
)
def test_auto_never_promotes_a_version_below_the_minimum(
    scores: list[float], champion_index: int
) -> None:
    versions = [v(i + 1, f1=s) for i, s in enumerate(scores)]
    champion = champion_index if 1 <= champion_index <= len(versions) else None
    decision = decide_promotion(AUTO, versions, champion, {})
    if decision.outcome == "Promote":
        promoted = versions[decision.version - 1]  # type: ignore[operator]
        assert promoted.metrics["f1"] >= 0.8
        assert champion is None or decision.version > champion  # type: ignore[operator]


# --- like with like: the champion scored on the candidate's own held-out rows ------------


def compared(version: int, champion: int, **metrics: float) -> Candidate:
    """A candidate whose training also scored `champion` on its held-out rows."""
    return Candidate(version, metrics, {COMPARED_WITH_TAG: str(champion)})


@pytest.mark.parametrize(
    ("candidate", "passed", "detail"),
    [
        # After drift: the champion's own 0.95 is of the old data; on the new rows it
        # scores 0.6, so 0.9 is better, not worse.
        (compared(2, 1, f1=0.9, **{"champion.f1": 0.6}), True,
         "f1 0.9 vs champion (version 1) 0.6 on the same held-out rows "
         "(margin 0.01; 0.95 on its own)"),
        (compared(2, 1, f1=0.5, **{"champion.f1": 0.6}), False, "vs champion (version 1) 0.6"),
        # Compared with another version than today's champion: its own numbers, said so.
        (compared(2, 7, f1=0.9, **{"champion.f1": 0.6}), False,
         "f1 0.9 vs champion 0.95 on its own held-out rows"),
        # The training could not score the champion: its own numbers, said so.
        (compared(2, 1, f1=0.9), False, "on its own held-out rows"),
    ],
)  # fmt: skip
def test_not_worse_than_champion_compares_like_with_like(
    candidate: Candidate, passed: bool, detail: str
) -> None:
    result = check_gate(NOT_WORSE, candidate, v(1, f1=0.95))
    assert result.passed is passed
    assert detail in result.detail


def test_a_drifted_champion_is_replaced_when_the_fair_comparison_says_so() -> None:
    versions = [v(1, f1=0.95), compared(2, 1, f1=0.88, **{"champion.f1": 0.61})]
    decision = decide_promotion(AUTO, versions, 1, {})
    assert (decision.outcome, decision.version) == ("Promote", 2)
    worse = [v(1, f1=0.95), compared(2, 1, f1=0.55, **{"champion.f1": 0.61})]
    rejected = decide_promotion(AUTO, worse, 1, {})
    assert rejected.outcome == "Rejected"
    assert "f1 0.55 vs champion (version 1) 0.61 on the same held-out rows" in rejected.message


def test_a_run_that_asks_for_approval_waits_even_in_auto_mode() -> None:
    asks = Candidate(2, {"f1": 0.9}, {REQUIRES_APPROVAL_TAG: "true"})
    decision = decide_promotion(AUTO, [v(1, f1=0.85), asks], 1, {})
    assert (decision.outcome, decision.version) == ("AwaitingApproval", 2)
    approved = decide_promotion(AUTO, [v(1, f1=0.85), asks], 1, {APPROVE_ANNOTATION: "2"})
    assert (approved.outcome, approved.version) == ("Promote", 2)
