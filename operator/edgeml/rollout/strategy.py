"""The spec's strategy as the machine's plain data (durations parsed once, here)."""

from __future__ import annotations

from datetime import timedelta

from edgeml.api.common import parse_duration
from edgeml.api.edgedeployment import EdgeDeploymentSpec
from edgeml.rollout.model import (
    AnalysisStep,
    AnalysisTemplate,
    MetricLimit,
    NodesStep,
    PauseStep,
    RolloutStrategy,
    Step,
)

DEFAULT_PROGRESS_DEADLINE = timedelta(minutes=10)


def strategy_from_spec(spec: EdgeDeploymentSpec) -> RolloutStrategy:
    """The machine's view of `spec.strategy` and `spec.paused`.

    Raises ValueError on a malformed duration; the controller checks the spec first
    (plans.edgedeployment.check_edge_deployment) and reports InvalidSpec instead.
    """
    canary = spec.strategy.canary
    if canary is None:
        return RolloutStrategy(paused=spec.paused)
    steps: list[Step] = []
    for step in canary.steps:
        if step.nodes is not None:
            steps.append(NodesStep(step.nodes))
        elif step.analysis is not None:
            steps.append(AnalysisStep(parse_duration(step.analysis.duration)))
        elif step.pause is not None:
            duration = step.pause.duration
            steps.append(PauseStep(parse_duration(duration) if duration else None))
    template = None
    if canary.analysis is not None:
        template = AnalysisTemplate(
            metrics=tuple(MetricLimit(m.name, m.max) for m in canary.analysis.metrics),
            interval=parse_duration(canary.analysis.interval),
            failure_limit=canary.analysis.failure_limit,
            min_samples=canary.analysis.min_samples,
        )
    return RolloutStrategy(
        steps=tuple(steps),
        analysis=template,
        max_unavailable=canary.max_unavailable,
        progress_deadline=parse_duration(canary.progress_deadline),
        paused=spec.paused,
    )
