"""The EdgeModel's status from its spec and its registry mirror."""

from __future__ import annotations

from datetime import datetime

from edgeml.api.edgemodel import EdgeModelSpec, EdgeModelStatus
from edgeml.api.kinds import EdgeModel
from edgeml.plans.common import (
    INVALID_SPEC,
    READY,
    ConditionSpec,
    Plan,
    apply_conditions,
    transition_events,
)
from edgeml.plans.parsing import Parsed


def check_edge_model(spec: EdgeModelSpec) -> str | None:
    """What the schema cannot catch: gates on metrics that are never computed."""
    computed = set(spec.training.evaluation.metrics)
    for index, gate in enumerate(spec.promotion.gates):
        if gate.max_slice_gap is not None:
            if spec.training.dataset.slice_column is None:
                return (
                    f"spec.promotion.gates[{index}] checks maxSliceGap, but "
                    "spec.training.dataset.sliceColumn is not set, so there are no slices"
                )
        elif gate.metric not in computed:
            return (
                f"spec.promotion.gates[{index}] checks {gate.metric}, which "
                f"spec.training.evaluation.metrics does not compute ({', '.join(sorted(computed))})"
            )
    return None


def plan_edge_model(
    parsed: Parsed[EdgeModel, EdgeModelStatus], *, now: datetime
) -> Plan[EdgeModelStatus]:
    """The status an EdgeModel should have."""
    old = parsed.status
    base = old or EdgeModelStatus()
    generation = parsed.metadata.generation
    error = parsed.error or (check_edge_model(parsed.obj.spec) if parsed.obj else None)
    if error is not None or parsed.obj is None:
        wanted = [
            ConditionSpec(READY, "False", INVALID_SPEC, error or "the spec could not be read")
        ]
        phase = "Invalid"
        registered = base.registered_model
    else:
        spec = parsed.obj.spec
        registered = spec.registry.registered_model or parsed.metadata.name
        if base.champion is None:
            phase = "Pending"
            wanted = [
                ConditionSpec(
                    READY,
                    "False",
                    "NoChampion",
                    f"No version of {registered} is champion yet: create a TrainingRun "
                    f"with modelRef.name {parsed.metadata.name} to train one.",
                )
            ]
        else:
            phase = "Ready"
            wanted = [
                ConditionSpec(
                    READY,
                    "True",
                    "ChampionAvailable",
                    f"Version {base.champion.version} is champion.",
                )
            ]
    status = base.model_copy(
        update={
            "observed_generation": generation,
            "phase": phase,
            "registered_model": registered,
            "conditions": apply_conditions(base.conditions, wanted, now=now, generation=generation),
        }
    )
    return Plan(status=status, events=transition_events(old, status))
