"""DriftPolicy: what drift means for a deployed model, and what to do about it."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, StringConstraints

from edgeml.api.common import Cron, Duration, KubeModel, LocalObjectReference, StatusBase


class DataDrift(KubeModel):
    """Drift of the inputs: the live feature distributions against the training baseline."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.method != 'jsd' || self.threshold <= 1.0",
                    "message": "a Jensen-Shannon (jsd) threshold must be at most 1",
                },
                {
                    "rule": "self.method != 'ks' || self.threshold <= 1.0",
                    "message": "a Kolmogorov-Smirnov (ks) threshold must be at most 1",
                },
            ]
        }
    )

    method: Literal["psi", "ks", "jsd"] = "psi"
    """psi (population stability index), ks (Kolmogorov-Smirnov statistic) or jsd
    (Jensen-Shannon distance)."""
    threshold: Annotated[float, Field(gt=0, le=10)] = 0.2
    """A feature has drifted when its score exceeds this."""
    window: Duration = "15m"
    """The span of live data compared with the baseline."""
    min_samples: Annotated[int, Field(ge=1)] = 500
    """Rows needed in the window before a score counts."""
    features: list[Annotated[str, StringConstraints(min_length=1, max_length=256)]] | None = None
    """Features to watch; all when omitted."""


class ConceptDrift(KubeModel):
    """Drift of the relation between inputs and truth, from feedback labels."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "has(self.minimum) != has(self.maximum)",
                    "message": "set exactly one of minimum (for scores such as accuracy) or "
                    "maximum (for errors such as rmse)",
                }
            ]
        }
    )

    metric: Literal["accuracy", "f1", "precision", "recall", "rmse", "mae"]
    """The live metric computed from feedback."""
    minimum: float | None = None
    """Drifted when the metric falls below this."""
    maximum: float | None = None
    """Drifted when the metric rises above this."""
    min_samples: Annotated[int, Field(ge=1)] = 100
    """Feedback labels needed before the metric counts."""


class DriftPolicySpec(KubeModel):
    """The desired state of a DriftPolicy."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "has(self.dataDrift) || has(self.conceptDrift) || has(self.schedule)",
                    "message": "set at least one of dataDrift, conceptDrift or schedule",
                }
            ]
        }
    )

    deployment_ref: LocalObjectReference
    """The EdgeDeployment whose pods are watched."""
    data_drift: DataDrift | None = None
    """Input drift detection."""
    concept_drift: ConceptDrift | None = None
    """Accuracy drift detection from feedback labels."""
    schedule: Cron | None = None
    """Retrain on this schedule too (UTC)."""
    action: Literal["Alert", "Retrain", "RetrainAndDeploy"] = "Alert"
    """Alert: condition and Event only. Retrain: also create a TrainingRun.
    RetrainAndDeploy: also let the new version roll out if it becomes champion."""
    cooldown: Duration = "6h"
    """The least time between two retrains triggered by this policy."""


class DriftPolicyStatus(StatusBase):
    """The observed state of a DriftPolicy."""

    drifted: bool | None = None
    """Whether the latest evaluation found drift; absent until drift is evaluated."""
    scores: dict[str, float] = Field(default_factory=dict)
    """The latest score per feature (data drift) or metric (concept drift)."""
    last_evaluated: datetime | None = None
    """When drift was last evaluated."""
    last_retrain: datetime | None = None
    """When this policy last created a TrainingRun."""
    triggered_runs: list[str] = Field(default_factory=list)
    """Recent TrainingRuns this policy created, newest first."""
