"""The four kinds as whole objects, and what the CRD generator needs to know of each."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import Field

from edgeml.api.common import API_VERSION, KubeModel, StatusBase
from edgeml.api.driftpolicy import DriftPolicySpec, DriftPolicyStatus
from edgeml.api.edgedeployment import EdgeDeploymentSpec, EdgeDeploymentStatus
from edgeml.api.edgemodel import EdgeModelSpec, EdgeModelStatus
from edgeml.api.trainingrun import TrainingRunSpec, TrainingRunStatus

SpecT = TypeVar("SpecT", bound=KubeModel)
StatusT = TypeVar("StatusT", bound=StatusBase)


class ObjectMeta(KubeModel):
    """The parts of metadata the operator reads."""

    name: str
    namespace: str | None = None
    uid: str | None = None
    generation: int | None = None
    resource_version: str | None = None
    creation_timestamp: datetime | None = None
    deletion_timestamp: datetime | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class KubeObject(KubeModel, Generic[SpecT, StatusT]):
    """An object of one of our kinds: metadata, spec and status."""

    api_version: str = API_VERSION
    kind: str
    metadata: ObjectMeta
    spec: SpecT
    status: StatusT | None = None

    @classmethod
    def from_body(cls, body: Any) -> KubeObject[SpecT, StatusT]:
        """Parse an object as the API server returns it (a dict or kopf Body)."""
        return cls.model_validate(dict(body))

    @property
    def ref(self) -> str:
        """`namespace/name`, for logs and messages."""
        return f"{self.metadata.namespace}/{self.metadata.name}"


class EdgeModel(KubeObject[EdgeModelSpec, EdgeModelStatus]):
    """A named model: its training template, its registry entry, versions and champion."""

    kind: str = "EdgeModel"


class TrainingRun(KubeObject[TrainingRunSpec, TrainingRunStatus]):
    """One training execution; its spec is immutable."""

    kind: str = "TrainingRun"


class EdgeDeployment(KubeObject[EdgeDeploymentSpec, EdgeDeploymentStatus]):
    """A model served on edge nodes, rolled out in waves."""

    kind: str = "EdgeDeployment"


class DriftPolicy(KubeObject[DriftPolicySpec, DriftPolicyStatus]):
    """What drift means for a deployment and what to do about it."""

    kind: str = "DriftPolicy"


@dataclass(frozen=True)
class PrinterColumn:
    """An additional printer column of `kubectl get`."""

    name: str
    json_path: str
    type: str = "string"
    priority: int = 0
    description: str = ""


AGE = PrinterColumn("Age", ".metadata.creationTimestamp", "date")
READY = PrinterColumn("Ready", '.status.conditions[?(@.type=="Ready")].status')
PHASE = PrinterColumn("Phase", ".status.phase")


@dataclass(frozen=True)
class KindInfo:
    """How a kind is named and shown; the CRD generator's input besides the models."""

    model: type[KubeObject[Any, Any]]
    plural: str
    short_names: tuple[str, ...]
    columns: tuple[PrinterColumn, ...]
    description: str

    @property
    def kind(self) -> str:
        return str(self.model.model_fields["kind"].default)

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def spec_model(self) -> type[KubeModel]:
        return self.model.model_fields["spec"].annotation  # type: ignore[return-value]

    @property
    def status_model(self) -> type[StatusBase]:
        annotation: Any = self.model.model_fields["status"].annotation
        status: type[StatusBase] = next(a for a in annotation.__args__ if a is not type(None))
        return status


KINDS: tuple[KindInfo, ...] = (
    KindInfo(
        EdgeModel,
        "edgemodels",
        ("em",),
        (
            PrinterColumn("Champion", ".status.champion.version", "integer"),
            PrinterColumn("Latest", ".status.latestVersion", "integer"),
            PrinterColumn("Mode", ".spec.promotion.mode"),
            PHASE,
            READY,
            AGE,
            PrinterColumn("Registered-Model", ".status.registeredModel", priority=1),
        ),
        "A named model: how it is trained, where its versions are registered, and which "
        "version is champion.",
    ),
    KindInfo(
        TrainingRun,
        "trainingruns",
        ("tr",),
        (
            PrinterColumn("Model", ".spec.modelRef.name"),
            PrinterColumn("Trigger", ".spec.trigger"),
            PHASE,
            PrinterColumn("Version", ".status.modelVersion", "integer"),
            AGE,
            PrinterColumn("Job", ".status.job", priority=1),
            PrinterColumn("Reason", ".status.failureReason", priority=1),
        ),
        "One training execution of an EdgeModel: a Job that trains, converts to ONNX and "
        "registers a version.",
    ),
    KindInfo(
        EdgeDeployment,
        "edgedeployments",
        ("ed",),
        (
            PrinterColumn("Model", ".spec.modelRef.name"),
            PrinterColumn("Target", ".status.target.version", "integer"),
            PrinterColumn("Stable", ".status.stable.version", "integer"),
            PrinterColumn("Stable-Nodes", ".status.stable.ready", "integer"),
            PrinterColumn("Canary", ".status.canary.version", "integer"),
            PrinterColumn("Canary-Nodes", ".status.canary.ready", "integer"),
            PHASE,
            AGE,
            PrinterColumn("Step", ".status.canary.step", "integer", priority=1),
        ),
        "A model served on the edge nodes a selector picks, rolled out in waves of nodes "
        "gated by analysis.",
    ),
    KindInfo(
        DriftPolicy,
        "driftpolicies",
        ("dp",),
        (
            PrinterColumn("Deployment", ".spec.deploymentRef.name"),
            PrinterColumn("Action", ".spec.action"),
            PrinterColumn("Drifted", ".status.drifted", "boolean"),
            PrinterColumn("Worst", ".status.worst.name"),
            PrinterColumn("Score", ".status.worst.score", "number"),
            PrinterColumn("Samples", ".status.evaluation.samples", "integer"),
            PHASE,
            AGE,
            PrinterColumn("Last-Retrain", ".status.lastRetrain", "date", priority=1),
        ),
        "What drift means for a deployed model, and what to do about it: alert, retrain, "
        "or retrain and roll out.",
    ),
)

CATEGORY = "edgeml"
