"""The spec's strategy as the machine's data."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from edgeml.api.edgedeployment import EdgeDeploymentSpec
from edgeml.rollout import AnalysisStep, MetricLimit, NodesStep, PauseStep, RolloutStrategy
from edgeml.rollout.strategy import strategy_from_spec


def spec(**extra: Any) -> EdgeDeploymentSpec:
    return EdgeDeploymentSpec.model_validate(
        {"modelRef": {"name": "m", "alias": "champion"}, "nodeSelector": {"edge": "true"}, **extra}
    )


def test_no_canary_moves_everything_at_once() -> None:
    assert strategy_from_spec(spec()) == RolloutStrategy()
    assert strategy_from_spec(spec(paused=True)).paused


def test_canary_steps_durations_and_analysis_are_parsed() -> None:
    s = strategy_from_spec(
        spec(
            strategy={
                "canary": {
                    "steps": [
                        {"nodes": "10%"},
                        {"analysis": {"duration": "1m30s"}},
                        {"pause": {}},
                        {"pause": {"duration": "5m"}},
                        {"nodes": 4},
                    ],
                    "analysis": {
                        "interval": "15s",
                        "failureLimit": 2,
                        "minSamples": 10,
                        "metrics": [{"name": "error-rate", "max": 0.01}],
                    },
                    "maxUnavailable": "20%",
                    "progressDeadline": "2m",
                }
            }
        )
    )
    assert s.steps == (
        NodesStep("10%"),
        AnalysisStep(timedelta(seconds=90)),
        PauseStep(None),
        PauseStep(timedelta(minutes=5)),
        NodesStep(4),
    )
    assert s.analysis is not None
    assert s.analysis.metrics == (MetricLimit("error-rate", 0.01),)
    assert (s.analysis.interval, s.analysis.failure_limit, s.analysis.min_samples) == (
        timedelta(seconds=15),
        2,
        10,
    )
    assert (s.max_unavailable, s.progress_deadline) == ("20%", timedelta(minutes=2))
