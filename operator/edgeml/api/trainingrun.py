"""TrainingRun: one training execution of an EdgeModel; its spec never changes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, StringConstraints

from edgeml.api.common import KubeModel, LocalObjectReference, ResourceRequirements, StatusBase
from edgeml.api.edgemodel import Dataset, Estimator, Evaluation


class TrainingOverrides(KubeModel):
    """Parts of the model's training template replaced for this run only."""

    dataset: Dataset | None = None
    """Train on this data instead."""
    estimator: Estimator | None = None
    """Fit this estimator instead."""
    evaluation: Evaluation | None = None
    """Evaluate this way instead."""
    resources: ResourceRequirements | None = None
    """Run the Job with these resources instead."""


Trigger = Literal["Manual", "Schedule", "Drift", "NewData", "CodeChange"]


class TrainingRunSpec(KubeModel):
    """The desired state of a TrainingRun. Immutable: to train again, create a new one."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self == oldSelf",
                    "message": "a TrainingRun's spec is immutable: create a new TrainingRun "
                    "to train again",
                }
            ]
        }
    )

    model_ref: LocalObjectReference
    """The EdgeModel to train."""
    overrides: TrainingOverrides | None = None
    """Changes to the model's training template for this run."""
    trigger: Trigger = "Manual"
    """Why the run exists; set by whoever creates it (a DriftPolicy sets Drift or Schedule)."""
    reason: Annotated[str, StringConstraints(max_length=1024)] | None = None
    """A sentence on why, recorded with the registered version."""
    require_approval: bool = False
    """The version this run registers waits for a person's approval, even when the
    EdgeModel promotes automatically (a DriftPolicy with action Retrain sets this)."""


TrainingPhase = Literal["Pending", "Running", "Succeeded", "Failed"]


class TrainingRunStatus(StatusBase):
    """The observed state of a TrainingRun."""

    job: str | None = None
    """The name of the training Job."""
    start_time: datetime | None = None
    """When the Job started."""
    completion_time: datetime | None = None
    """When the run succeeded or failed."""
    mlflow_run_id: str | None = None
    """The MLflow run holding params, metrics and artifacts."""
    model_version: int | None = None
    """The registered version this run produced."""
    metrics: dict[str, float] = Field(default_factory=dict)
    """Evaluation metrics of the trained model."""
    failure_reason: str | None = None
    """On failure, the one-line reason from the training program."""
