"""Drifted turns on and off only after `consecutive` evaluations in a row: no flapping."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from edgeml.drift.decision import Signal, Streak, decide, signal_of
from edgeml.drift.evaluation import DriftSettings, evaluate

from .support import baseline, window

SETTINGS = DriftSettings(threshold=0.2, min_samples=500)


def run(signals: list[Signal], consecutive: int = 2) -> list[bool | None]:
    drifted: bool | None = None
    streak = Streak()
    out = []
    for s in signals:
        drifted, streak = decide(drifted, streak, s, consecutive)
        out.append(drifted)
    return out


def test_drift_needs_consecutive_evaluations_and_so_does_clearing() -> None:
    assert run(["clear", "drift", "drift", "clear", "clear"]) == [False, False, True, True, False]


def test_a_hold_between_the_margins_keeps_the_state() -> None:
    assert run(["clear", "drift", "drift", "hold", "clear", "hold", "clear", "clear"]) == [
        False, False, True, True, True, True, True, False,
    ]  # fmt: skip


def test_an_undecided_evaluation_changes_nothing() -> None:
    assert run(["drift", "unknown", "drift", "unknown", "clear"]) == [None, None, True, True, True]


def test_the_first_clear_evaluation_decides_no_drift() -> None:
    assert run(["clear"]) == [False]


@given(
    st.lists(st.sampled_from(["drift", "clear", "hold", "unknown"]), max_size=40), st.integers(1, 4)
)
def test_the_state_changes_only_after_consecutive_agreeing_signals(
    signals: list[Signal], consecutive: int
) -> None:
    states = run(signals, consecutive)
    for i in range(1, len(states)):
        if states[i] is True and states[i - 1] is not True:
            decided = [s for s in signals[: i + 1] if s != "unknown"]
            assert decided[-consecutive:] == ["drift"] * consecutive
        if states[i] is False and states[i - 1] is True:
            decided = [s for s in signals[: i + 1] if s != "unknown"]
            assert decided[-consecutive:] == ["clear"] * consecutive


def test_signals_of_evaluations() -> None:
    b = {"1": baseline()}
    assert signal_of(None, SETTINGS, 0.2) == "unknown"
    assert (
        signal_of(evaluate(b, {"": {"1": window(rows=10)}}, SETTINGS), SETTINGS, 0.2) == "unknown"
    )
    assert signal_of(evaluate(b, {"": {"1": window()}}, SETTINGS), SETTINGS, 0.2) == "clear"
    drifted = evaluate(b, {"": {"1": window(shifted=("f1",))}}, SETTINGS)
    assert signal_of(drifted, SETTINGS, 0.2) == "drift"
    # Under the threshold but over its margin: neither drift nor clear.
    near = DriftSettings(threshold=drifted.groups[0].features[0].score * 1.1, min_samples=500)
    assert signal_of(evaluate(b, {"": {"1": window(shifted=("f1",))}}, near), near, 0.2) == "hold"
