"""The canary/wave rollout of an EdgeDeployment as a pure state machine (no I/O).

`decide_rollout` takes the strategy, target, observed nodes, persisted state, analysis
window, manual commands and `now`, and returns a `RolloutDecision`.
"""

from edgeml.rollout.machine import decide_rollout
from edgeml.rollout.model import (
    AnalysisObservation,
    AnalysisStep,
    AnalysisTemplate,
    Commands,
    Event,
    Measurement,
    MetricLimit,
    MetricObservation,
    MetricResult,
    NodeObservation,
    NodeReport,
    NodesStep,
    PauseStep,
    Phase,
    Pod,
    RolloutDecision,
    RolloutState,
    RolloutStrategy,
    Version,
    VersionCount,
    ZoneCount,
)
from edgeml.rollout.strategy import strategy_from_spec

__all__ = [
    "AnalysisObservation",
    "AnalysisStep",
    "AnalysisTemplate",
    "Commands",
    "Event",
    "Measurement",
    "MetricLimit",
    "MetricObservation",
    "MetricResult",
    "NodeObservation",
    "NodeReport",
    "NodesStep",
    "PauseStep",
    "Phase",
    "Pod",
    "RolloutDecision",
    "RolloutState",
    "RolloutStrategy",
    "Version",
    "VersionCount",
    "ZoneCount",
    "decide_rollout",
    "strategy_from_spec",
]
