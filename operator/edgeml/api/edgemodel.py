"""EdgeModel: a named model, its training template, its registry entry and its champion."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, ConfigDict, Field, StringConstraints, model_validator

from edgeml.api.common import (
    KubeModel,
    LocalObjectReference,
    ResourceRequirements,
    SecretKeyReference,
    StatusBase,
)

ClassificationMetric = Literal["accuracy", "precision", "recall", "f1", "roc_auc"]
RegressionMetric = Literal["rmse", "mae", "r2"]
Metric = Literal["accuracy", "precision", "recall", "f1", "roc_auc", "rmse", "mae", "r2"]
DEFAULT_METRICS: tuple[Metric, ...] = ("accuracy", "f1")


UNSUPPORTED_DATASET = (
    "gs:// datasets are not supported yet: use s3:// (AWS S3 or an S3-compatible store), "
    "file:// (a mounted volume or PVC) or http(s)://"
)
S3_BUCKET_URI = r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$"


def _supported_scheme(uri: str) -> str:
    if not uri.startswith(("file://", "http://", "https://", "s3://")):
        raise ValueError(UNSUPPORTED_DATASET)
    return uri


class S3Options(KubeModel):
    """How to reach the object store of an s3:// dataset."""

    endpoint: Annotated[str, StringConstraints(pattern=r"^https?://[^/\s]+/?$", max_length=512)] | (
        None
    ) = None
    """The store's URL for an S3-compatible store (MinIO, Ceph RGW, versitygw...), for
    example https://minio.storage:9000; AWS S3 when omitted. Requests to an endpoint use
    path-style addressing."""
    region: Annotated[str, StringConstraints(pattern=r"^[a-z0-9-]{1,32}$")] = "us-east-1"
    """The region requests are signed for."""
    credentials_secret_ref: LocalObjectReference | None = None
    """A Secret with the keys AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and optionally
    AWS_SESSION_TOKEN). Requests are unsigned (a public bucket) when omitted: no ambient
    identity is ever used. For the NewData trigger the operator reads this Secret itself,
    and only when it carries the label edgeml.io/dataset-credentials=true."""


class Dataset(KubeModel):
    """Where the training data is and how to read it."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.uri.startsWith('file://') || self.uri.startsWith('http://')"
                    " || self.uri.startsWith('https://') || self.uri.startsWith('s3://')",
                    "message": f"uri: {UNSUPPORTED_DATASET}",
                },
                {
                    "rule": f"!self.uri.startsWith('s3://') || self.uri.matches('{S3_BUCKET_URI}')",
                    "message": "uri: an s3:// URI is s3://BUCKET/KEY or s3://BUCKET/PREFIX/, "
                    "with a bucket name of 3-63 lowercase letters, digits, dots and hyphens",
                },
                {
                    "rule": "!has(self.s3) || self.uri.startsWith('s3://')",
                    "message": "s3: applies to s3:// datasets only",
                },
                {
                    "rule": "!self.uri.startsWith('s3://') || !has(self.credentialsSecretRef)",
                    "message": "credentialsSecretRef is an http(s) Authorization header; an "
                    "s3:// dataset's keys go in s3.credentialsSecretRef",
                },
                {
                    "rule": "!has(self.select) || self.select == 'All' || "
                    "(self.uri.startsWith('s3://') && self.uri.endsWith('/'))",
                    "message": "select: Newest applies to an s3:// prefix (a uri ending in /)",
                },
            ]
        }
    )

    uri: Annotated[
        str,
        StringConstraints(pattern=r"^(file|https?|s3|gs)://.+", max_length=2048),
        AfterValidator(_supported_scheme),
    ]
    """The data's location: file:// (including mounted volumes, e.g. a PVC), http(s)://,
    or s3://BUCKET/KEY; s3://BUCKET/PREFIX/ (ending in /) reads the objects under the
    prefix whose names end in the format's suffix (.csv, .parquet). gs:// is refused until
    it is supported."""
    format: Literal["csv", "parquet"] = "csv"
    """The file format."""
    target: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    """The column to predict."""
    features: list[Annotated[str, StringConstraints(min_length=1, max_length=256)]] | None = Field(
        default=None, max_length=4096
    )
    """The feature columns; all other columns when omitted."""
    categorical: list[Annotated[str, StringConstraints(min_length=1, max_length=256)]] | None = (
        Field(default=None, max_length=4096)
    )
    """Feature columns that are categorical (one-hot encoded); all others must be numeric."""
    slice_column: Annotated[str, StringConstraints(min_length=1, max_length=256)] | None = None
    """A column to report per-slice metrics on (for example a site); not used as a feature."""
    credentials_secret_ref: SecretKeyReference | None = None
    """A key of a Secret sent as the Authorization header of an http(s) dataset."""
    s3: S3Options | None = None
    """The object store of an s3:// dataset (endpoint, region, keys)."""
    select: Literal["All", "Newest"] = "All"
    """For an s3:// prefix: All reads every matching object under it, in key order, as one
    table (old and new data together); Newest reads only the most recently modified one
    (the newest partition)."""

    @model_validator(mode="after")
    def _consistent(self) -> Dataset:
        s3 = self.uri.startswith("s3://")
        if self.s3 is not None and not s3:
            raise ValueError("s3: applies to s3:// datasets only")
        if s3 and self.credentials_secret_ref is not None:
            raise ValueError(
                "credentialsSecretRef is an http(s) Authorization header; an s3:// dataset's "
                "keys go in s3.credentialsSecretRef"
            )
        if s3 and not re.match(S3_BUCKET_URI, self.uri):
            raise ValueError("uri: an s3:// URI is s3://BUCKET/KEY or s3://BUCKET/PREFIX/")
        if self.select == "Newest" and not (s3 and self.uri.endswith("/")):
            raise ValueError("select: Newest applies to an s3:// prefix (a uri ending in /)")
        return self


class Estimator(KubeModel):
    """The estimator to fit, by its Python class path, and its parameters."""

    model_config = ConfigDict(populate_by_name=True)

    class_path: Annotated[
        str,
        StringConstraints(
            pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$", max_length=256
        ),
    ] = Field(alias="class")
    """Dotted class path, e.g. sklearn.ensemble.RandomForestClassifier; its module must be
    in the operator's allow-list (scikit-learn by default)."""
    params: dict[str, Any] = Field(
        default_factory=dict, json_schema_extra={"x-kubernetes-preserve-unknown-fields": True}
    )
    """Constructor parameters of the estimator."""


class Evaluation(KubeModel):
    """How a trained model is evaluated before it can be registered."""

    test_fraction: Annotated[float, Field(ge=0.05, le=0.5)] = 0.2
    """The share of rows held out for evaluation."""
    metrics: list[Metric] = Field(default_factory=lambda: list(DEFAULT_METRICS), min_length=1)
    """Metrics to compute on the held-out rows."""
    random_seed: Annotated[int, Field(ge=0)] = 0
    """Seed of the split and the estimator, for reproducible runs."""
    parity_tolerance: Annotated[float, Field(gt=0, le=0.1)] = 1e-4
    """The largest difference allowed between the ONNX model's and the estimator's
    probabilities on the held-out rows."""


class TrainingTemplate(KubeModel):
    """What every TrainingRun of this model trains, unless it overrides a part."""

    dataset: Dataset
    """The training data."""
    estimator: Estimator
    """The estimator and its parameters."""
    evaluation: Evaluation = Field(default_factory=Evaluation)
    """How the trained model is evaluated."""
    resources: ResourceRequirements | None = None
    """CPU and memory of the training Job."""
    volumes: list[dict[str, Any]] = Field(
        default_factory=list,
        max_length=16,
        json_schema_extra={
            "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
        },
    )
    """Pod volumes for the training Job (as in a Pod spec), e.g. the PVC holding a
    file:// dataset. Only the types the operator allows (Helm value
    training.allowedVolumeTypes; by default persistentVolumeClaim, configMap, secret,
    emptyDir, csi); a secret volume's Secret must be one its author may get."""
    volume_mounts: list[dict[str, Any]] = Field(
        default_factory=list,
        max_length=16,
        json_schema_extra={
            "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
        },
    )
    """Where those volumes are mounted in the training container (as in a Pod spec)."""
    backoff_limit: Annotated[int, Field(ge=0, le=10)] = 3
    """How many times a training Job whose failure may pass (registry or data server down)
    is retried, 10, 20 and 40 s apart (the Job controller's backoff), so the default rides
    out about a minute of outage; bad input fails at once."""
    active_deadline_seconds: Annotated[int, Field(ge=60, le=604800)] = 3600
    """How long a training Job may run before it is stopped."""


class PromotionGate(KubeModel):
    """One condition a new version must meet to become champion."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "[has(self.min), has(self.max), has(self.notWorseThanChampionBy),"
                    " has(self.maxSliceGap)].filter(x, x).size() == 1",
                    "message": "a gate sets exactly one of min, max, notWorseThanChampionBy "
                    "or maxSliceGap",
                }
            ]
        }
    )

    metric: Metric
    """The metric the gate looks at."""
    min: float | None = None
    """The metric must be at least this."""
    max: float | None = None
    """The metric must be at most this (for errors such as rmse)."""
    not_worse_than_champion_by: Annotated[float, Field(ge=0)] | None = None
    """The metric may fall short of the current champion's by at most this margin."""
    max_slice_gap: Annotated[float, Field(ge=0)] | None = None
    """The gap between the best and the worst slice may be at most this."""


class Promotion(KubeModel):
    """When a newly registered version becomes the champion."""

    mode: Literal["Auto", "Manual"] = "Auto"
    """Auto: a version that passes every gate becomes champion. Manual: it waits for
    approval (the edgeml.io/approve annotation or `edgeml promote`)."""
    gates: list[PromotionGate] = Field(default_factory=list, max_length=32)
    """Every gate must pass."""


LOCAL_TRACKING_STORE = (
    "trackingUri: a file:// store is a directory on one machine, which the operator, the "
    "training Jobs and the edge pods cannot share; name an http(s):// MLflow tracking server"
)


def _served_tracking_uri(uri: str | None) -> str | None:
    if uri is not None and uri.startswith("file://"):
        raise ValueError(LOCAL_TRACKING_STORE)
    return uri


class Registry(KubeModel):
    """The MLflow registered model that holds this model's versions."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.trackingUri) || !self.trackingUri.startsWith('file://')",
                    "message": LOCAL_TRACKING_STORE,
                }
            ]
        }
    )

    registered_model: Annotated[str, StringConstraints(min_length=1, max_length=256)] | None = None
    """The registered model's name; the EdgeModel's name when omitted. It holds one
    EdgeModel's versions: the tag edgeml.io/edge-model names that EdgeModel, and another
    naming it is refused (RegisteredModelInUse)."""
    tracking_uri: Annotated[
        Annotated[str, StringConstraints(pattern=r"^(https?|file)://.+")] | None,
        AfterValidator(_served_tracking_uri),
    ] = None
    """The MLflow tracking server (http:// or https://); the operator's configured one when
    omitted. file:// is refused: a local store cannot be shared with the Jobs and pods."""
    credentials_secret_ref: LocalObjectReference | None = None
    """A Secret with MLFLOW_TRACKING_USERNAME/PASSWORD or MLFLOW_TRACKING_TOKEN keys: the
    training Jobs and inference pods get those keys (and no other), and the operator calls
    MLflow with them for this EdgeModel once the Secret is labelled
    edgeml.io/registry-credentials=true (until then RegistryAvailable=False, and training
    waits)."""


class EdgeModelSpec(KubeModel):
    """The desired state of an EdgeModel."""

    registry: Registry = Field(default_factory=Registry)
    """Where versions are registered."""
    training: TrainingTemplate
    """The template of this model's TrainingRuns."""
    promotion: Promotion = Field(default_factory=Promotion)
    """How a new version becomes champion."""
    version_history_limit: Annotated[int, Field(ge=1, le=100)] = 10
    """How many versions status lists, newest first."""


class ModelVersion(KubeModel):
    """One registered version of the model."""

    version: int
    """The registry's version number."""
    uri: str | None = None
    """The version's model URI, e.g. models:/vibration-anomaly/6."""
    sha256: str | None = None
    """The sha256 of the ONNX bytes; pods verify it before serving."""
    run_id: str | None = None
    """The MLflow run that produced it."""
    dataset_digest: str | None = None
    """The sha256 of the training data."""
    data_version: str | None = None
    """The version of the data it was trained on (from the objects' ETags or the http
    ETag/Last-Modified): a DriftPolicy's newData trigger compares it with the data now."""
    template_digest: str | None = None
    """The digest of the training template it was trained with (estimator, columns,
    evaluation, image): a DriftPolicy's codeChange trigger compares it."""
    training_run: str | None = None
    """The TrainingRun that produced it."""
    metrics: dict[str, float] = Field(default_factory=dict)
    """Evaluation metrics on the held-out rows."""
    created: datetime | None = None
    """When it was registered."""
    recommended_requests: dict[str, str] = Field(default_factory=dict, max_length=2)
    """What an edge inference pod should request for it (`cpu`, `memory`), from the
    training profile; EdgeDeployments without spec.serving.resources use it."""
    trigger: str | None = None
    """Why it was trained: Manual, Schedule, Drift, NewData or CodeChange."""
    trigger_id: str | None = None
    """The id that follows the retrain from its trigger to the rollout (absent for runs
    no DriftPolicy or `edgeml retrain` started)."""
    reason: str | None = None
    """The sentence its TrainingRun gave for training it."""
    compared_with: int | None = None
    """The champion version its training scored on the same held-out rows."""
    champion_metrics: dict[str, float] = Field(default_factory=dict)
    """That champion's metrics on this version's held-out rows: what the promotion
    gates compare with, like with like."""
    promotion: Literal["Promoted", "Rejected"] | None = None
    """What promotion decided for it, as recorded on the registered version."""
    promotion_message: str | None = None
    """Why: the gates, with the numbers."""


class Champion(ModelVersion):
    """The version that deployments following the `champion` alias serve."""

    promoted_at: datetime | None = None
    """When it became champion."""
    promoted_by: str | None = None
    """Who promoted it: `auto`, or the approver."""


class PromotionCandidate(KubeModel):
    """The newest version and what promotion decided about it."""

    version: int
    """The version."""
    outcome: Literal["Promoted", "Rejected", "AwaitingApproval"]
    """Promoted (it became champion), Rejected (a gate failed) or AwaitingApproval."""
    message: str = ""
    """Which gates passed or failed, with the numbers."""


class RetrainRequest(KubeModel):
    """The last `edgeml retrain` request (edgeml.io/retrain annotation) acted on."""

    request: str
    """The annotation's value: each new value starts one TrainingRun."""
    training_run: str | None = None
    """The TrainingRun it started."""
    at: datetime | None = None
    """When it was acted on."""
    message: str = ""
    """What happened."""


class EdgeModelStatus(StatusBase):
    """The observed state of an EdgeModel."""

    registered_model: str | None = None
    """The MLflow registered model mirrored here."""
    champion: Champion | None = None
    """The current champion."""
    latest_version: int | None = None
    """The newest registered version."""
    versions: list[ModelVersion] = Field(default_factory=list)
    """Recent versions, newest first, at most versionHistoryLimit."""
    candidate: PromotionCandidate | None = None
    """The newest version's promotion decision."""
    retrain: RetrainRequest | None = None
    """The last manual retrain request acted on."""
