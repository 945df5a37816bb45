"""DriftPolicy: what drift means for a deployed model, and what to do about it."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, StringConstraints

from edgeml.api.common import Cron, Duration, KubeModel, LocalObjectReference, StatusBase
from edgeml.api.edgedeployment import MetricsSource
from edgeml.api.notify import Episode, NotificationRecord, Receiver
from edgeml.api.trainingrun import TrainingOverrides, Trigger


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
                {
                    "rule": "!has(self.window) || (duration(self.window) >= duration('1m') "
                    "&& duration(self.window) <= duration('24h'))",
                    "message": "window must be between 1m and 24h (the pods keep 24 hours)",
                },
            ]
        }
    )

    method: Literal["psi", "ks", "jsd"] = "psi"
    """psi (population stability index), ks (Kolmogorov-Smirnov statistic) or jsd
    (Jensen-Shannon distance)."""
    threshold: Annotated[float, Field(gt=0, le=10)] = 0.2
    """A feature has drifted when its score exceeds this."""
    prediction_threshold: Annotated[float, Field(gt=0, le=10)] | None = None
    """The predictions (classes, or regression bins) have drifted when their score, by
    the same method, exceeds this; `threshold` when omitted."""
    window: Duration = "15m"
    """The span of live data compared with the baseline: the pods' counts of the last
    `window` (at least 1m, at most 24h; windows over an hour are whole hours)."""
    min_samples: Annotated[int, Field(ge=1)] = 500
    """Rows needed in the window before a score counts."""
    features: list[Annotated[str, StringConstraints(min_length=1, max_length=256)]] | None = Field(
        default=None, max_length=1000
    )
    """Features to watch (model inputs, or categorical columns, which are scored over
    their categories); all when omitted."""


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


class Evaluation(KubeModel):
    """How often drift is evaluated, and how many evaluations make a decision."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.interval) || duration(self.interval) >= duration('5s')",
                    "message": "interval must be at least 5s",
                }
            ]
        }
    )

    interval: Duration | None = None
    """Time between evaluations; a fifth of the window when omitted (at least 10s)."""
    consecutive: Annotated[int, Field(ge=1, le=100)] = 2
    """Evaluations in a row that must find drift before Drifted turns True, and that
    must find it gone before it clears."""
    hysteresis: Annotated[float, Field(ge=0, lt=1)] = 0.2
    """Drift clears only once every score is below threshold * (1 - hysteresis)."""


class Retraining(KubeModel):
    """The governor of the TrainingRuns a policy creates, and what they train on."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.failureBackoff) || (duration(self.failureBackoff) >= "
                    "duration('10s') && duration(self.failureBackoff) <= duration('24h'))",
                    "message": "failureBackoff must be between 10s and 24h",
                },
                {
                    "rule": "!has(self.startingDeadline) || "
                    "duration(self.startingDeadline) >= duration('10s')",
                    "message": "startingDeadline must be at least 10s",
                },
            ]
        }
    )

    max_per_day: Annotated[int, Field(ge=1, le=1000)] = 4
    """At most this many TrainingRuns created by this policy in any 24 hours."""
    pause_after_rejections: Annotated[int, Field(ge=1, le=100)] = 3
    """After this many retrained versions in a row were rejected or rolled back, the
    policy stops retraining (RetrainingPaused) until a person resumes it (`edgeml retrain
    MODEL --resume`, or the edgeml.io/resume-retraining annotation) or the spec changes."""
    failure_backoff: Duration = "10m"
    """After a TrainingRun failed, wait this long before the next one, doubled for each
    failure in a row (at most a day)."""
    starting_deadline: Duration = "1h"
    """A schedule tick missed by more than this (the operator was down) is skipped; a later
    one is caught up once."""
    overrides: TrainingOverrides | None = None
    """What a retrain trains on instead of the model's training template, for example
    the newest partition only (`dataset.select: Newest` on an s3:// prefix). Old and new
    data together: an s3:// prefix with `select: All` (the default) reads every object
    under it as one table, so new objects landing there are trained on with the old."""


class NewData(KubeModel):
    """Retrain when the data a retrain reads changed since the champion was trained."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.interval) || (duration(self.interval) >= duration('10s')"
                    " && duration(self.interval) <= duration('24h'))",
                    "message": "newData.interval must be between 10s and 24h",
                }
            ]
        }
    )

    interval: Duration = "5m"
    """How often the operator looks at the dataset: the objects under an s3:// prefix
    (their keys and ETags), or an http(s) dataset's ETag or Last-Modified (a HEAD
    request). A file:// dataset lives on a volume only the training pod mounts, so it
    cannot be watched: the policy is InvalidSpec."""


class DriftPolicySpec(KubeModel):
    """The desired state of a DriftPolicy."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "has(self.dataDrift) || has(self.conceptDrift) || has(self.schedule)"
                    " || has(self.newData) || (has(self.codeChange) && self.codeChange)",
                    "message": "set at least one of dataDrift, conceptDrift, schedule, newData "
                    "or codeChange",
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
    """Retrain on this schedule too (UTC), whatever the action; with action Alert the
    scheduled versions wait for approval as with Retrain."""
    new_data: NewData | None = None
    """Retrain, whatever the action, when the data changed since the champion was
    trained (a new or replaced object under the prefix, a new ETag): once per data
    version. Versions wait for approval unless the action is RetrainAndDeploy."""
    code_change: bool = False
    """Retrain, whatever the action, when the EdgeModel's training template (estimator
    and its parameters, columns, evaluation) or the training image differs from the one
    the champion was trained with: once per template."""
    action: Literal["Alert", "Retrain", "RetrainAndDeploy"] = "Alert"
    """Alert: conditions, Events and notifications only. Retrain: also create a
    TrainingRun when drift is detected; the version it registers waits for a person's
    approval. RetrainAndDeploy: the version faces the EdgeModel's promotion rules, and a
    new champion rolls out through the deployments that follow the champion alias."""
    cooldown: Duration = "6h"
    """The least time between two TrainingRuns this policy creates (a scheduled run
    counts from its tick); at most a year."""
    retraining: Retraining = Field(default_factory=Retraining)
    """Limits on retraining, and what a retrain trains on."""
    evaluation: Evaluation = Field(default_factory=Evaluation)
    """Evaluation interval and the decision rule."""
    notify: list[Receiver] = Field(
        default_factory=list,
        max_length=10,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    """Webhooks told of each drift episode: once when it is detected, once when it clears."""
    source: MetricsSource | None = None
    """Where the pods' window counts are read: PodIP (each pod's /drift/window),
    APIServerProxy, or Prometheus (increase() of the pods' counters over the window);
    the EdgeDeployment's analysis source when omitted, else PodIP."""


class FeatureDrift(KubeModel):
    """One feature's score in the latest evaluation."""

    name: str
    """The feature (a model input, or a categorical column)."""
    score: float
    """Its score by the policy's method."""
    drifted: bool = False
    """Whether the score exceeds the threshold."""
    q_value: float | None = None
    """The chi-square test's p-value of its bin counts, Benjamini-Hochberg adjusted across
    features; reported, not decisive (at large samples any shift is significant)."""


class ZoneDrift(KubeModel):
    """One zone's result in the latest evaluation."""

    zone: str
    """The zone (topology.kubernetes.io/zone of the pods' nodes)."""
    drifted: bool = False
    """Whether drift was found there."""
    samples: int = 0
    """Rows its pods predicted in the window."""
    reasons: list[str] = Field(default_factory=list)
    """What drifted there: DataDrift, PredictionDrift, ConceptDrift."""
    top: list[FeatureDrift] = Field(default_factory=list)
    """Its worst features (at most 3)."""
    prediction_score: float | None = None
    """Its prediction drift score."""


class ConceptStatus(KubeModel):
    """The live metric from feedback labels."""

    metric: str
    """The metric (spec.conceptDrift.metric)."""
    value: float | None = None
    """Its value over the window's labelled rows; absent below minSamples labels."""
    labelled: int = 0
    """Feedback labels in the window."""
    coverage: float | None = None
    """Labelled rows / predicted rows in the window (labels arrive late and partly)."""


class EvaluationStatus(KubeModel):
    """What the latest evaluation looked at."""

    method: str
    """psi, ks or jsd."""
    threshold: float
    """The feature threshold."""
    window: str
    """The window (spec.dataDrift.window)."""
    samples: int = 0
    """Rows the fleet's pods predicted in the window."""
    covered_seconds: float | None = None
    """The shortest span a pod's counts covered (shorter while pods are young)."""
    pods: int = 0
    """Pods whose counts were read."""
    pods_total: int = 0
    """Pods serving the deployment."""
    versions: list[str] = Field(default_factory=list)
    """Model versions the pods served, each compared with its own baseline."""
    source: str = "PodIP"
    """Where the counts came from."""


class WorstFeature(KubeModel):
    """The feature with the highest score in the fleet."""

    name: str
    """The feature."""
    score: float
    """Its score."""


class Streak(KubeModel):
    """Evaluations in a row that found drift, and that found it gone."""

    drifting: int = 0
    """Evaluations in a row that found drift."""
    clear: int = 0
    """Evaluations in a row that found every score below the hysteresis margin."""


RunOutcome = Literal[
    "Training",
    "Failed",
    "Evaluating",
    "AwaitingApproval",
    "Rejected",
    "Promoted",
    "RollingOut",
    "RolledOut",
    "RolledBack",
    "Superseded",
]


class TriggeredRun(KubeModel):
    """A TrainingRun this policy created, and what became of it."""

    name: str
    """The TrainingRun."""
    trigger: Trigger
    """Drift, Schedule or Manual."""
    trigger_id: str
    """The id that follows the chain (labels, MLflow tags, the version, the rollout)."""
    created: datetime | None = None
    """When it was created."""
    finished: datetime | None = None
    """When it succeeded or failed."""
    decided: datetime | None = None
    """When the loop was done with it: failed, rejected, awaiting approval, promoted, rolled
    out or rolled back (its notification's end)."""
    version: int | None = None
    """The version it registered."""
    outcome: RunOutcome = "Training"
    """Training, Failed, Evaluating (registered, not decided yet), AwaitingApproval,
    Rejected, Promoted, RollingOut, RolledOut, RolledBack, or Superseded (a newer version
    was registered before this one was decided)."""
    tick: datetime | None = None
    """The schedule tick it was created for (Schedule runs); the cooldown counts from it."""
    message: str = ""
    """Why: the failure, the gates with both numbers, the rollback's cause."""


RetrainingState = Literal[
    "Idle", "Training", "Cooldown", "DailyLimit", "Backoff", "Paused", "Disabled"
]


class NewDataStatus(KubeModel):
    """What the operator saw of the dataset at its last look."""

    uri: str = ""
    """The dataset looked at (the policy's override, else the model's)."""
    data_version: str | None = None
    """The data version now (None until a look succeeds)."""
    objects: int | None = None
    """How many objects the dataset reads now (s3:// only)."""
    newest: str | None = None
    """The most recently modified of them."""
    baseline: str | None = None
    """What the data version is compared with when the champion records none (the first
    version seen)."""
    checked: datetime | None = None
    """When the operator last looked (successfully or not)."""
    error: str | None = None
    """Why the last look failed, when it did; the last good data version is kept."""


class RetrainingStatus(KubeModel):
    """The governor's memory and decision, so a restart resumes it."""

    state: RetrainingState = "Idle"
    """Idle (a retrain may start), Training (one is in flight), Cooldown, DailyLimit,
    Backoff (after failed runs), Paused (after rejections) or Disabled (action Alert,
    no schedule)."""
    until: datetime | None = None
    """When Cooldown, DailyLimit or Backoff ends."""
    message: str = ""
    """The decision in a sentence."""
    last_tick: datetime | None = None
    """The newest schedule tick acted on (a run created, or skipped and why)."""
    next_tick: datetime | None = None
    """The schedule's next tick."""
    rejections_in_a_row: int = 0
    """Retrained versions in a row that were rejected or rolled back."""
    counting_since: datetime | None = None
    """Rejections before this time do not count (the policy was resumed or changed)."""
    counted_generation: int | None = None
    """The spec generation counting_since belongs to."""
    resumed: str | None = None
    """The last edgeml.io/resume-retraining value acted on."""


class DriftPolicyStatus(StatusBase):
    """The observed state of a DriftPolicy."""

    drifted: bool | None = None
    """The decision: whether the policy is in a drift episode (absent until decided)."""
    scores: dict[str, float] = Field(default_factory=dict)
    """The fleet's latest score per feature (at most 20, worst first), `prediction` for
    the predictions and the concept metric by its name."""
    features: list[FeatureDrift] = Field(default_factory=list)
    """The fleet's features in the latest evaluation, worst first (at most 20)."""
    worst: WorstFeature | None = None
    """The fleet's worst feature."""
    prediction_score: float | None = None
    """The fleet's prediction drift score."""
    zones: list[ZoneDrift] = Field(default_factory=list)
    """Each zone's result (at most 50, drifted first)."""
    concept: ConceptStatus | None = None
    """The live metric from feedback labels (spec.conceptDrift)."""
    evaluation: EvaluationStatus | None = None
    """What the latest evaluation looked at."""
    streak: Streak = Field(default_factory=Streak)
    """The decision's memory, so an operator restart resumes it."""
    last_evaluated: datetime | None = None
    """When drift was last evaluated."""
    drifted_since: datetime | None = None
    """When the current drift episode began."""
    episode: Episode | None = None
    """The current or last drift episode (its alert)."""
    notifications: list[NotificationRecord] = Field(default_factory=list)
    """What each receiver in spec.notify was told of the episode."""
    retrain_notifications: list[NotificationRecord] = Field(default_factory=list)
    """What each receiver was told of the newest retrain (started, then its outcome)."""
    retraining: RetrainingStatus | None = None
    """The governor's state: whether a retrain may start now, and if not, until when."""
    last_retrain: datetime | None = None
    """When this policy last created a TrainingRun."""
    triggered_runs: list[TriggeredRun] = Field(default_factory=list)
    """Recent TrainingRuns this policy created, newest first (at most 10), each with what
    became of it."""
    new_data: NewDataStatus | None = None
    """The newData trigger's last look at the dataset."""
    code_change_baseline: str | None = None
    """The template digest codeChange compares with when the champion records none."""
