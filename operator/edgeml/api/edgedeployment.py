"""EdgeDeployment: serve a model on the edge nodes a selector picks, rolled out in waves."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, StringConstraints

from edgeml.api.common import (
    Duration,
    KubeModel,
    Name,
    PercentOrCount,
    ResourceRequirements,
    StatusBase,
)
from edgeml.api.notify import Episode, NotificationRecord


class ModelReference(KubeModel):
    """Which EdgeModel, and which of its versions: pinned, or following an alias."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "has(self.version) != has(self.alias)",
                    "message": "set exactly one of version (a pinned version) or alias "
                    "(such as champion)",
                }
            ]
        }
    )

    name: Name
    """The EdgeModel's name."""
    version: Annotated[int, Field(ge=1)] | None = None
    """A pinned registry version."""
    alias: (
        Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]*$", max_length=63)] | None
    ) = None
    """A registry alias to follow, such as champion; a move of the alias starts a rollout."""


class Toleration(KubeModel):
    """A toleration, as in a Pod spec, so pods can run on tainted edge nodes."""

    key: str | None = None
    """The taint key; empty with operator Exists tolerates everything."""
    operator: Literal["Exists", "Equal"] = "Equal"
    """Exists or Equal."""
    value: str | None = None
    """The taint value, for Equal."""
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    """The taint effect to tolerate; all when omitted."""
    toleration_seconds: int | None = None
    """For NoExecute: how long the pod stays after the taint appears."""


class AnalysisMetric(KubeModel):
    """A health metric of the canary nodes and its limit."""

    name: Literal["error-rate", "latency-p99-ms", "prediction-shift"]
    """error-rate (failed / all requests), latency-p99-ms, or prediction-shift (the
    distance between canary and stable prediction distributions, 0 to 1)."""
    max: Annotated[float, Field(ge=0)]
    """The canary fails this metric above this value."""


LABEL_NAME = r"^[a-zA-Z_][a-zA-Z0-9_]*$"
"""A Prometheus label name."""


class PrometheusSource(KubeModel):
    """A Prometheus server to query instead of reading the pods."""

    address: Annotated[str, StringConstraints(pattern=r"^https?://.+", max_length=2048)]
    """The server's base URL (its HTTP API is under /api/v1)."""
    pod_label: Annotated[str, StringConstraints(pattern=LABEL_NAME, max_length=128)] = "pod"
    """The label that names a series' pod, as the server's scrape configuration sets it
    (`pod` with the Prometheus Operator and the usual kubernetes_sd relabelling)."""
    namespace_label: Annotated[str, StringConstraints(pattern=LABEL_NAME, max_length=128)] = (
        "namespace"
    )
    """The label that names a series' namespace."""


class MetricsSource(KubeModel):
    """Where analysis reads the canary's metrics."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.type != 'Prometheus' || has(self.prometheus)",
                    "message": "a Prometheus source needs prometheus.address",
                }
            ]
        }
    )

    type: Literal["PodIP", "APIServerProxy", "Prometheus"] = "PodIP"
    """PodIP reads each pod's /metrics directly; APIServerProxy goes through the API
    server (edge sites behind NAT); Prometheus runs PromQL against `prometheus`."""
    prometheus: PrometheusSource | None = None
    """The Prometheus server, for type Prometheus."""


class Analysis(KubeModel):
    """How a canary wave is judged against the stable nodes."""

    interval: Duration = "30s"
    """How often metrics are read and compared."""
    failure_limit: Annotated[int, Field(ge=0, le=100)] = 1
    """Failed measurements tolerated before the rollout is rolled back."""
    min_samples: Annotated[int, Field(ge=1)] = 50
    """Requests the canary must have served before a measurement counts."""
    metrics: list[AnalysisMetric] = Field(min_length=1, max_length=16)
    """The metrics and their limits."""
    source: MetricsSource = Field(default_factory=MetricsSource)
    """Where the metrics come from."""


class AnalysisStep(KubeModel):
    """Run the analysis for a while before the next step."""

    duration: Duration = "2m"
    """How long the analysis runs; it passes unless limits are broken more than
    failureLimit times."""


class PauseStep(KubeModel):
    """Hold the rollout: for a duration, or until resumed when no duration is given."""

    duration: Duration | None = None
    """How long to wait; omitted means until `edgeml resume` (or the resume annotation)."""


class CanaryStep(KubeModel):
    """One step of a canary: move nodes, analyse, or pause. Exactly one of the three."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "[has(self.nodes), has(self.analysis), has(self.pause)]"
                    ".filter(x, x).size() == 1",
                    "message": "a step sets exactly one of nodes, analysis or pause",
                }
            ]
        }
    )

    nodes: PercentOrCount | None = None
    """Move this many of the targeted nodes (a count, or a percentage) to the new version."""
    analysis: AnalysisStep | None = None
    """Judge the canary nodes against the stable ones."""
    pause: PauseStep | None = None
    """Wait."""


class Canary(KubeModel):
    """A rollout in waves of whole nodes, gated by analysis."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!self.steps.exists(s, has(s.analysis)) || has(self.analysis)",
                    "message": "steps include an analysis step, so the canary needs an "
                    "analysis template (strategy.canary.analysis)",
                },
                {
                    "rule": "self.steps.exists(s, has(s.nodes))",
                    "message": "steps must move nodes at least once (a step with nodes)",
                },
            ]
        }
    )

    steps: list[CanaryStep] = Field(min_length=1, max_length=64)
    """The steps, in order; after the last, every targeted node runs the new version."""
    analysis: Analysis | None = None
    """The analysis that analysis steps run."""
    max_unavailable: PercentOrCount = 1
    """At most this many targeted nodes may be without a ready inference pod because of
    the rollout at any time (offline nodes do not count)."""
    progress_deadline: Duration = "10m"
    """A wave whose pods are not ready by then is rolled back."""


class Strategy(KubeModel):
    """How a new version reaches the nodes."""

    canary: Canary | None = None
    """Waves of nodes gated by analysis; without it every node moves at once."""


class Serving(KubeModel):
    """How the inference pods serve."""

    port: Annotated[int, Field(ge=1024, le=65535)] = 8080
    """The HTTP port of the Open Inference Protocol API and /metrics."""
    threads: Annotated[int, Field(ge=1, le=64)] = 1
    """onnxruntime intra-op threads per pod."""
    resources: ResourceRequirements | None = None
    """CPU and memory of each pod; the model's profile recommends them when omitted."""


class EdgeDeploymentSpec(KubeModel):
    """The desired state of an EdgeDeployment."""

    model_ref: ModelReference
    """The model and version to serve."""
    node_selector: dict[str, str] = Field(min_length=1)
    """Labels that pick the edge nodes, e.g. node-role.kubernetes.io/edge: "true"."""
    tolerations: list[Toleration] = Field(default_factory=list, max_length=32)
    """Tolerations for the edge nodes' taints."""
    serving: Serving = Field(default_factory=Serving)
    """How the pods serve."""
    strategy: Strategy = Field(default_factory=Strategy)
    """How a new version rolls out."""
    paused: bool = False
    """Hold any rollout where it is."""


class VersionNodes(KubeModel):
    """A version and the nodes serving it."""

    version: int | None = None
    """The registry version."""
    sha256: str | None = None
    """The sha256 of its ONNX bytes."""
    nodes: int = 0
    """Targeted nodes assigned this version."""
    ready: int = 0
    """Of those, how many serve it."""


class AnalysisResult(KubeModel):
    """One measurement of a canary metric."""

    metric: str
    """The metric's name."""
    canary: float | None = None
    """The canary's value."""
    stable: float | None = None
    """The stable nodes' value, for comparison."""
    max: float
    """The limit."""
    passed: bool
    """Whether the canary was within the limit."""
    samples: int = 0
    """Requests the measurement is based on."""
    measured_at: datetime
    """When."""


class CanaryStatus(VersionNodes):
    """The version being rolled out."""

    step: int = 0
    """The index of the current step."""
    failures: int = 0
    """Failed measurements so far."""
    analysis: list[AnalysisResult] = Field(default_factory=list)
    """The latest measurements."""


class ZoneSummary(KubeModel):
    """Per-zone node counts."""

    zone: str
    """The zone (topology.kubernetes.io/zone)."""
    nodes: int = 0
    """Targeted nodes in the zone."""
    canary: int = 0
    """Of those, on the canary version."""
    ready: int = 0
    """Of those, serving."""


class Measurement(KubeModel):
    """One analysis measurement of the current step."""

    at: datetime
    """When it was taken."""
    counted: bool
    """False when too few requests were seen to judge it: it counts when every metric
    had minSamples, or when one that had them is over its limit."""
    passed: bool
    """Whether every metric was within its limit."""
    results: list[AnalysisResult] = Field(default_factory=list)
    """Each metric's numbers."""


class RolloutProgress(KubeModel):
    """Where the rollout state machine is; the operator resumes from it after a restart."""

    step: int = 0
    """The index of the current canary step."""
    step_started_at: datetime | None = None
    """When the current step started."""
    progressed_at: datetime | None = None
    """The last progress (a move, a node becoming ready); progressDeadline counts from it."""
    pending: int = 0
    """Online nodes not yet where the current step wants them."""
    measurements: list[Measurement] = Field(default_factory=list, max_length=10)
    """The latest measurements of the current analysis step, oldest first."""
    measured: int = 0
    """Measurements of the current step that counted."""
    failures: int = 0
    """Measurements of the current step that failed."""
    last_measured_at: datetime | None = None
    """When the last measurement was taken."""
    paused: bool = False
    """Paused by a person (the pause annotation or `edgeml rollout pause`)."""
    paused_since: datetime | None = None
    """While held, timers stand still from here."""
    promoted: bool = False
    """A person promoted the canary: the remaining steps are skipped."""
    rolling_back: bool = False
    """Nodes are being returned to the stable version."""
    reason: str = ""
    """Why the last rollback or hold happened."""
    handled_commands: dict[str, str] = Field(default_factory=dict)
    """The value of each command annotation already acted on, so each acts once."""


class EdgeDeploymentStatus(StatusBase):
    """The observed state of an EdgeDeployment."""

    target: VersionNodes | None = None
    """The version the spec asks for, resolved from version or alias."""
    stable: VersionNodes | None = None
    """The last fully rolled-out version."""
    canary: CanaryStatus | None = None
    """The version being rolled out, if any."""
    zones: list[ZoneSummary] = Field(default_factory=list)
    """Per-zone summary."""
    rejected_versions: list[int] = Field(default_factory=list)
    """Versions rolled back; not retried until the spec or alias changes."""
    rollout: RolloutProgress | None = None
    """The rollout's progress, in detail."""
    message: str | None = None
    """What the rollout is doing, in a sentence."""
    episode: Episode | None = None
    """The current or last failed rollout (Degraded=True until it cleared): the alert the
    operator-wide receivers (chart value notify.receivers) are told of."""
    notifications: list[NotificationRecord] = Field(default_factory=list)
    """What each operator-wide receiver was told of the episode."""
