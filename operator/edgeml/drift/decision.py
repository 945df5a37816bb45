"""Whether a policy is drifted, from its evaluations in a row: decisions that do not flap.

`Drifted` turns true only after `consecutive` evaluations in a row found drift, and
clears only after as many found every score below the threshold by the hysteresis
margin (threshold * (1 - hysteresis)). An evaluation between the two holds the current
state, and one that could not decide (too few samples, a source down) changes nothing.
The streaks live in the policy's status, so an operator restart resumes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from edgeml.drift.evaluation import DriftSettings, Evaluation

Signal = Literal["drift", "clear", "hold", "unknown"]


@dataclass(frozen=True)
class Streak:
    """Evaluations in a row that found drift, and that found it clear."""

    drifting: int = 0
    clear: int = 0


def signal_of(evaluation: Evaluation | None, settings: DriftSettings, hysteresis: float) -> Signal:
    """What one evaluation says: drift, clear (below the margin everywhere), or hold."""
    if evaluation is None or not evaluation.decided:
        return "unknown"
    if evaluation.drifted:
        return "drift"
    margin = 1.0 - hysteresis
    limit = settings.threshold * margin
    prediction_limit = (settings.prediction_threshold or settings.threshold) * margin
    for results in evaluation.versions.values():
        for g in results:
            if g.verdict == "TooFewSamples":
                continue
            if any(f.score >= limit for f in g.features):
                return "hold"
            if g.prediction is not None and g.prediction >= prediction_limit:
                return "hold"
            concept = settings.concept
            value = g.concept.value if g.concept else None
            if concept is not None and value is not None:
                span = abs(concept.minimum if concept.minimum is not None else concept.maximum or 0)
                if concept.minimum is not None and value < concept.minimum + hysteresis * span:
                    return "hold"
                if concept.maximum is not None and value > concept.maximum - hysteresis * span:
                    return "hold"
    return "clear"


def decide(
    drifted: bool | None, streak: Streak, signal: Signal, consecutive: int
) -> tuple[bool | None, Streak]:
    """The new drifted state and streaks, after one evaluation's signal.

    `drifted` None means never decided: it becomes False at the first clear signal (no
    alert hangs on it) and True after `consecutive` drift signals, like any other state.
    """
    if signal == "unknown":
        return drifted, streak
    if signal == "drift":
        streak = Streak(drifting=streak.drifting + 1, clear=0)
        if streak.drifting >= consecutive:
            return True, streak
        return drifted, streak
    if signal == "clear":
        streak = Streak(drifting=0, clear=streak.clear + 1)
        if drifted is None or streak.clear >= consecutive:
            return False, streak
        return drifted, streak
    # hold: neither a new episode nor its end; the streak that would change state resets
    if drifted:
        return drifted, Streak(drifting=streak.drifting, clear=0)
    return drifted, Streak(drifting=0, clear=streak.clear)
