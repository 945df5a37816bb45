"""The TrainingRun's status from its model's existence (the Job comes with training)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from edgeml.api.kinds import TrainingRun
from edgeml.api.trainingrun import TrainingRunStatus
from edgeml.plans.common import (
    INVALID_SPEC,
    READY,
    ConditionSpec,
    Plan,
    apply_conditions,
    transition_events,
)
from edgeml.plans.parsing import Parsed

SUCCEEDED = "Succeeded"


def plan_training_run(
    parsed: Parsed[TrainingRun, TrainingRunStatus],
    model: dict[str, Any] | None,
    *,
    now: datetime,
) -> Plan[TrainingRunStatus]:
    """The status a TrainingRun should have, given its EdgeModel (None if it does not exist)."""
    old = parsed.status
    base = old or TrainingRunStatus()
    generation = parsed.metadata.generation
    namespace = parsed.metadata.namespace
    if parsed.error is not None or parsed.obj is None:
        message = parsed.error or "the spec could not be read"
        phase = "Failed"
        wanted = [
            ConditionSpec(READY, "False", INVALID_SPEC, message),
            ConditionSpec(SUCCEEDED, "False", INVALID_SPEC, message),
        ]
    elif base.phase in ("Succeeded", "Failed"):
        return Plan(status=base)  # finished runs are history: nothing changes them
    elif model is None:
        name = parsed.obj.spec.model_ref.name
        phase = "Pending"
        message = (
            f"EdgeModel {name} does not exist in namespace {namespace}; the run starts when it "
            "is created."
        )
        wanted = [
            ConditionSpec(READY, "False", "ModelNotFound", message),
            ConditionSpec(SUCCEEDED, "Unknown", "ModelNotFound", message),
        ]
    else:
        phase = "Pending"
        message = f"Queued for training EdgeModel {parsed.obj.spec.model_ref.name}."
        wanted = [
            ConditionSpec(READY, "False", "Queued", message),
            ConditionSpec(SUCCEEDED, "Unknown", "Queued", message),
        ]
    status = base.model_copy(
        update={
            "observed_generation": generation,
            "phase": phase,
            "conditions": apply_conditions(base.conditions, wanted, now=now, generation=generation),
        }
    )
    return Plan(status=status, events=transition_events(old, status))
