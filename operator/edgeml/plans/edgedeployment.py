"""What an EdgeDeployment should be: its status, its pods and Service (pure).

The rollout itself is decided by `edgeml.rollout.decide_rollout`; this module turns the
object and the observed world into its inputs, and its decision into pods to create or
delete, a status, and events.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from edgeml.api.common import API_VERSION, ConditionStatus, parse_duration
from edgeml.api.edgedeployment import (
    AnalysisResult,
    CanaryStatus,
    EdgeDeploymentSpec,
    EdgeDeploymentStatus,
    Measurement,
    RolloutProgress,
    VersionNodes,
    ZoneSummary,
)
from edgeml.api.events import Event
from edgeml.api.kinds import EdgeDeployment
from edgeml.conditions import find_condition
from edgeml.config import OperatorConfig
from edgeml.objects.inference import (
    ServingInputs,
    build_inference_pod,
    build_service,
)
from edgeml.plans.common import (
    INVALID_SPEC,
    READY,
    ConditionSpec,
    Plan,
    apply_conditions,
    transition_events,
)
from edgeml.plans.notifications import (
    Send,
    Target,
    rollout_alert_of,
    sends_due,
    track_episode,
)
from edgeml.plans.parsing import Parsed
from edgeml.rollout import (
    AnalysisObservation,
    AnalysisStep,
    Commands,
    MetricResult,
    Phase,
    RolloutDecision,
    RolloutState,
    RolloutStrategy,
    Version,
    decide_rollout,
    strategy_from_spec,
)
from edgeml.rollout import Measurement as MachineMeasurement
from edgeml.rollout.fleet import (
    Fleet,
    observe_fleet,
    pod_version,
    serving_pods,
    verification_candidates,
)
from edgeml.rollout.signals import Sample, analysis_observation, refused, signals_of

COMMANDS = ("promote", "abort", "pause", "resume")
COMMAND_PREFIX = "edgeml.io/"
MAX_STATUS_ZONES = 64
PROGRESS_FIELDS = (
    "step",
    "step_started_at",
    "progressed_at",
    "pending",
    "measured",
    "failures",
    "last_measured_at",
    "paused",
    "paused_since",
    "promoted",
    "rolling_back",
    "reason",
)
"""RolloutState fields kept as they are in status.rollout (same names, same types)."""

PROGRESSING = "Progressing"
DEGRADED = "Degraded"


def check_edge_deployment(spec: EdgeDeploymentSpec) -> str | None:
    """What the schema cannot catch: waves that shrink, an analysis longer than its step."""
    canary = spec.strategy.canary
    if canary is None:
        return None
    last: dict[type, int] = {}
    for index, step in enumerate(canary.steps):
        if step.nodes is None:
            continue
        kind = type(step.nodes)
        size = step.nodes if isinstance(step.nodes, int) else int(step.nodes.rstrip("%"))
        if kind in last and size < last[kind]:
            return (
                f"spec.strategy.canary.steps[{index}] moves {step.nodes} nodes, fewer than an "
                "earlier step: waves only grow (nodes counts the total on the new version)"
            )
        last[kind] = size
    try:
        parse_duration(canary.progress_deadline)
        for step in canary.steps:
            if step.pause is not None and step.pause.duration is not None:
                parse_duration(step.pause.duration)
        interval = parse_duration(canary.analysis.interval) if canary.analysis else None
        analysis_steps = [
            (i, s.analysis, parse_duration(s.analysis.duration))
            for i, s in enumerate(canary.steps)
            if s.analysis is not None
        ]
    except ValueError as err:
        return f"spec.strategy.canary: {err}"
    if canary.analysis is not None and interval is not None:
        for index, step_analysis, length in analysis_steps:
            if length < interval:
                return (
                    f"spec.strategy.canary.steps[{index}].analysis.duration "
                    f"({step_analysis.duration}) is shorter than analysis.interval "
                    f"({canary.analysis.interval}), so it would never measure"
                )
    return None


def with_lineage(events: list[Event], model: Mapping[str, Any], version: int) -> list[Event]:
    """A rollout's start names why its version exists: the trigger, its id and the
    TrainingRun (one id follows a retrain from its trigger to the rollout)."""
    listed: Mapping[str, Any] = next(
        (
            v
            for v in (model.get("status") or {}).get("versions") or []
            if v.get("version") == version
        ),
        {},
    )
    if not listed.get("triggerId"):
        return events
    why = (
        f" Version {version} comes from TrainingRun {listed.get('trainingRun', '?')} "
        f"(trigger {listed.get('trigger', '?')}, id {listed['triggerId']})."
    )
    return [
        replace(e, message=e.message + why) if e.reason == "RolloutStarted" else e for e in events
    ]


def resolve_target(
    spec: EdgeDeploymentSpec, model: Mapping[str, Any]
) -> tuple[VersionNodes | None, str]:
    """The version the spec asks for, from the EdgeModel's status; or None and why not."""
    ref = spec.model_ref
    status = model.get("status") or {}
    if ref.version is not None:
        known: Mapping[str, Any] = next(
            (v for v in status.get("versions") or [] if v.get("version") == ref.version), {}
        )
        return (
            VersionNodes(version=ref.version, sha256=known.get("sha256")),
            f"version {ref.version} is pinned",
        )
    champion = status.get("champion")
    if ref.alias == "champion":
        if not champion:
            return (
                None,
                f"EdgeModel {ref.name} has no champion yet; "
                "the rollout starts when one is promoted.",
            )
        return (
            VersionNodes(version=champion.get("version"), sha256=champion.get("sha256")),
            f"alias champion is version {champion.get('version')}",
        )
    return None, f"alias {ref.alias} is not known to EdgeModel {ref.name}"


@dataclass(frozen=True)
class Blocked:
    """Nothing to roll out, and why: the phase and the reason of Ready and Progressing."""

    phase: str
    reason: str
    message: str
    progressing: ConditionStatus = "False"
    target: VersionNodes | None = None
    resolved: bool = False
    """Whether the spec was resolved (`target` is what it resolved to, for status.target);
    before that, status.target keeps what it was."""


@dataclass(frozen=True)
class Resolved:
    """A target every pod can verify: a version with its sha256."""

    target: VersionNodes
    why: str

    @property
    def version(self) -> Version:
        assert self.target.version is not None
        return Version(self.target.version, self.target.sha256 or "")


def rollout_gate(
    parsed: Parsed[EdgeDeployment, EdgeDeploymentStatus],
    model: Mapping[str, Any] | None,
    config: OperatorConfig,
) -> Blocked | Resolved:
    """Whether the EdgeDeployment has something to roll out: a valid spec, its EdgeModel,
    an MLflow address for the pods, a target version and its sha256; else why not."""
    error = parsed.error or (check_edge_deployment(parsed.obj.spec) if parsed.obj else None)
    if error is not None or parsed.obj is None:
        return Blocked("Invalid", INVALID_SPEC, error or "the spec could not be read")
    name = parsed.obj.spec.model_ref.name
    if model is None:
        return Blocked(
            "Pending",
            "ModelNotFound",
            f"EdgeModel {name} does not exist in namespace {parsed.metadata.namespace}; "
            "the deployment starts when it is created.",
        )
    if not registry_uri(model, config):
        return Blocked(
            "Pending",
            "RegistryNotConfigured",
            f"EdgeModel {name} names no spec.registry.trackingUri "
            "and the operator has no default MLflow address (chart value mlflow.trackingUri, "
            "EDGEML_MLFLOW_TRACKING_URI): the inference pods would have nowhere to fetch "
            "the model from. Set one of them.",
        )
    target, why = resolve_target(parsed.obj.spec, model)
    if target is None or target.version is None:
        return Blocked("Pending", "NoTargetVersion", why, target=target, resolved=True)
    if not target.sha256:
        # Pods verify the artifact's sha256 before serving: without it nothing rolls out
        # (and a pin resolved early would restart its rollout once the sha256 appears).
        return Blocked(
            "Pending",
            "TargetUnverified",
            f"Target is version {target.version} ({why}), but EdgeModel {name} lists no "
            "sha256 for it yet (its training run records one on the registered version); "
            "the rollout starts once it does, so every pod can verify what it serves.",
            target=target,
            resolved=True,
        )
    return Resolved(target, why)


MAX_CANARY_READS = 100
MAX_STABLE_READS = 50
"""Pods whose metrics one analysis reads, per side (by node name: the same ones each time)."""


@dataclass(frozen=True)
class DeploymentReads:
    """What one reconcile of an EdgeDeployment reads beyond its EdgeModel."""

    node_selector: Mapping[str, str]
    target: Version
    canary: Version | None = None
    stable: Version | None = None
    metrics: tuple[str, ...] = ()
    """The analysis' metrics when the persisted step is an analysis step, else empty:
    then only the target's unready pods are read (did they refuse the artifact?)."""


def reads_for(
    parsed: Parsed[EdgeDeployment, EdgeDeploymentStatus],
    model: Mapping[str, Any] | None,
    config: OperatorConfig,
) -> DeploymentReads | None:
    """What to read for a rollout; None when there is none to make (the plan says why)."""
    gate = rollout_gate(parsed, model, config)
    if isinstance(gate, Blocked):
        return None
    assert parsed.obj is not None
    spec = parsed.obj.spec
    strategy = strategy_from_spec(spec)
    state = state_from_status(parsed.status)
    metrics: tuple[str, ...] = ()
    if strategy.analysis is not None and in_analysis(strategy, state):
        metrics = tuple(m.name for m in strategy.analysis.metrics)
    return DeploymentReads(
        dict(spec.node_selector), gate.version, state.canary, state.stable, metrics
    )


def pods_to_read(
    reads: DeploymentReads, nodes: Sequence[Mapping[str, Any]], pods: Sequence[Mapping[str, Any]]
) -> list[Mapping[str, Any]]:
    """Every pod whose metrics this reconcile needs, read in one round: the target's
    unready pods, and during analysis the canary's and the stable version's serving pods.

    A refusal is only ever found on an unready pod, and only ready pods serve, so which
    pods serve does not depend on what the unready ones say.
    """
    wanted = list(verification_candidates(nodes, pods, reads.target))
    if reads.metrics:
        fleet = observe_fleet(nodes, pods)
        wanted += serving_pods(fleet, reads.canary, MAX_CANARY_READS)
        wanted += serving_pods(fleet, reads.stable, MAX_STABLE_READS)
    unique = {str(p["metadata"]["name"]): p for p in wanted}
    return [unique[name] for name in sorted(unique)]


def world_from_reads(
    reads: DeploymentReads,
    model: Mapping[str, Any],
    nodes: Sequence[Mapping[str, Any]],
    pods: Sequence[Mapping[str, Any]],
    samples: Mapping[str, list[Sample]] | None,
    metrics_error: str = "",
) -> DeploymentWorld:
    """The world the plan decides on, from what was read (`samples` None: the metrics
    source failed with `metrics_error`)."""
    got = samples or {}
    fleet = observe_fleet(nodes, pods, [name for name, s in got.items() if refused(s)])
    if not reads.metrics:
        return DeploymentWorld(model, fleet)
    if samples is None:
        return DeploymentWorld(model, fleet, None, f"Metrics could not be read: {metrics_error}.")
    canary_pods = serving_pods(fleet, reads.canary, MAX_CANARY_READS)
    stable_pods = serving_pods(fleet, reads.stable, MAX_STABLE_READS)
    canary = [s for p in canary_pods if (s := got.get(p["metadata"]["name"]))]
    stable = [s for p in stable_pods if (s := got.get(p["metadata"]["name"]))]
    observation = analysis_observation(
        list(reads.metrics), signals_of(canary), signals_of(stable) if stable else None
    )
    missing = len(canary_pods) + len(stable_pods) - len(canary) - len(stable)
    note = f"The metrics of {missing} pods could not be read." if missing else ""
    return DeploymentWorld(model, fleet, observation, note)


@dataclass(frozen=True)
class DeploymentWorld:
    """What the controller observed for one EdgeDeployment."""

    model: Mapping[str, Any] | None
    """The EdgeModel, None if it does not exist."""
    fleet: Fleet | None = None
    """The targeted nodes and their pods (observed once a target is known)."""
    observation: AnalysisObservation | None = None
    """The canary's metrics, read during analysis steps."""
    analysis_note: str = ""
    """Why no metrics could be read, for the status message."""
    targets: Mapping[str, Target | str] = field(default_factory=dict)
    """The operator-wide receivers' addresses, or why one cannot be used."""


@dataclass(frozen=True)
class CreatePod:
    """Create this pod."""

    manifest: dict[str, Any]


@dataclass(frozen=True)
class DeletePod:
    """Delete this pod (its grace period lets it drain)."""

    namespace: str
    name: str


def state_from_status(status: EdgeDeploymentStatus | None) -> RolloutState:
    """The machine's persisted state, read back from status."""
    if status is None:
        return RolloutState()
    r = status.rollout or RolloutProgress()

    def version(v: VersionNodes | None) -> Version | None:
        if v is None or v.version is None:
            return None
        return Version(v.version, v.sha256 or "")

    measurements = tuple(
        MachineMeasurement(
            at=m.at,
            counted=m.counted,
            passed=m.passed,
            results=tuple(
                MetricResult(x.metric, x.canary, x.stable, x.max, x.passed, x.samples)
                for x in m.results
            ),
        )
        for m in r.measurements
    )
    return RolloutState(
        stable=version(status.stable),
        canary=version(status.canary),
        measurements=measurements,
        rejected=tuple(status.rejected_versions),
        **{name: getattr(r, name) for name in PROGRESS_FIELDS},
    )


def commands_from(
    annotations: Mapping[str, str], handled: Mapping[str, str]
) -> tuple[Commands, dict[str, str]]:
    """The commands whose annotation changed since last acted on, and the new record.

    `kubectl annotate edgedeployment/x edgeml.io/resume=$(date +%s)` (or `edgeml rollout
    resume x`) sets a fresh value; a value already in status.rollout.handledCommands is
    old news, so a command acts exactly once, whatever restarts happen.
    """
    seen = {c: annotations.get(COMMAND_PREFIX + c, "") for c in COMMANDS}
    fresh = {c: bool(v) and handled.get(c) != v for c, v in seen.items()}
    record = {c: v for c, v in seen.items() if v}
    return Commands(**fresh), record


def in_analysis(strategy: RolloutStrategy, state: RolloutState) -> bool:
    """Whether the persisted step is an analysis step (so metrics should be read)."""
    steps = strategy.steps or ()
    return (
        state.canary is not None
        and not state.promoted
        and state.step < len(steps)
        and isinstance(steps[state.step], AnalysisStep)
    )


def registry_uri(model: Mapping[str, Any], config: OperatorConfig) -> str:
    """The MLflow address the pods fetch from: the EdgeModel's, else the operator's default."""
    registry = (model.get("spec") or {}).get("registry") or {}
    return str(registry.get("trackingUri") or config.mlflow_tracking_uri)


def serving_inputs(
    deployment: Mapping[str, Any],
    spec: EdgeDeploymentSpec,
    model: Mapping[str, Any],
    config: OperatorConfig,
) -> ServingInputs:
    """Where the pods fetch the model from: the EdgeModel's registry, else the operator's."""
    model_spec = model.get("spec") or {}
    registry = model_spec.get("registry") or {}
    status = model.get("status") or {}
    registered = (
        status.get("registeredModel") or registry.get("registeredModel") or spec.model_ref.name
    )
    creds = (registry.get("credentialsSecretRef") or {}).get("name")
    known = [*(status.get("versions") or []), status.get("champion") or {}]
    recommended = {
        int(v["version"]): dict(v["recommendedRequests"])
        for v in known
        if v.get("version") is not None and v.get("recommendedRequests")
    }
    return ServingInputs(
        deployment=dict(deployment),
        spec=spec,
        registered_model=str(registered),
        tracking_uri=registry_uri(model, config),
        credentials_secret=creds,
        recommended=recommended,
    )


def pod_actions(
    decision: RolloutDecision, fleet: Fleet, inputs: ServingInputs, config: OperatorConfig
) -> list[CreatePod | DeletePod]:
    """Pods to delete and create so each node runs what the decision assigns it."""
    actions: list[CreatePod | DeletePod] = []
    namespace = inputs.deployment["metadata"]["namespace"]
    for pod in fleet.extra:
        actions.append(DeletePod(namespace, pod["metadata"]["name"]))
    for node, want in sorted(decision.assignments.items()):
        current = fleet.pods.get(node)
        have = pod_version(current) if current is not None else None
        if want == have:
            continue
        if current is not None:
            actions.append(DeletePod(namespace, current["metadata"]["name"]))
        if want is not None:
            pod = build_inference_pod(inputs, node, want.version, want.sha256, config)
            actions.append(CreatePod(pod))
    return actions


def _version_nodes(count: Any) -> VersionNodes | None:
    if count is None or count.version is None:
        return None
    v = count.version
    return VersionNodes(
        version=v.version, sha256=v.sha256 or None, nodes=count.nodes, ready=count.ready
    )


def _rollout_status(
    base: EdgeDeploymentStatus, decision: RolloutDecision, handled: dict[str, str]
) -> dict[str, Any]:
    st = decision.state
    measurements = [
        Measurement(
            at=m.at,
            counted=m.counted,
            passed=m.passed,
            results=[
                AnalysisResult(
                    metric=r.metric,
                    canary=r.canary,
                    stable=r.stable,
                    max=r.max,
                    passed=r.passed,
                    samples=r.samples,
                    measured_at=m.at,
                )
                for r in m.results
            ],
        )
        for m in st.measurements
    ]
    canary = None
    if decision.canary is not None and decision.canary.version is not None:
        v = decision.canary.version
        canary = CanaryStatus(
            version=v.version,
            sha256=v.sha256 or None,
            nodes=decision.canary.nodes,
            ready=decision.canary.ready,
            step=st.step,
            failures=st.failures,
            analysis=measurements[-1].results if measurements else [],
        )
    return {
        "stable": _version_nodes(decision.stable),
        "canary": canary,
        "zones": [
            ZoneSummary(zone=z.zone, nodes=z.nodes, canary=z.canary, ready=z.ready)
            for z in decision.zones[:MAX_STATUS_ZONES]
        ],
        "rejected_versions": list(st.rejected),
        "message": decision.message,
        "rollout": RolloutProgress(
            measurements=measurements,
            handled_commands=handled,
            **{name: getattr(st, name) for name in PROGRESS_FIELDS},
        ),
    }


UNDER_WAY = (Phase.PROGRESSING, Phase.ANALYZING, Phase.PAUSED, Phase.ROLLING_BACK)
FAILING = (Phase.ROLLING_BACK, Phase.ROLLED_BACK, Phase.DEGRADED)


def _rollout_conditions(decision: RolloutDecision) -> list[ConditionSpec]:
    phase, reason, message = decision.phase, decision.reason, decision.message
    ready: ConditionStatus = "True" if phase == Phase.HEALTHY else "False"
    moving: ConditionStatus = "True" if phase in UNDER_WAY else "False"
    failing: ConditionStatus = "True" if phase in FAILING else "False"
    return [
        ConditionSpec(READY, ready, reason, message),
        ConditionSpec(PROGRESSING, moving, reason, message),
        ConditionSpec(
            DEGRADED,
            failing,
            reason if phase in FAILING else "AsExpected",
            message if phase in FAILING else "No node is failing.",
        ),
    ]


def plan_edge_deployment(
    parsed: Parsed[EdgeDeployment, EdgeDeploymentStatus],
    world: DeploymentWorld,
    *,
    now: datetime,
    config: OperatorConfig | None = None,
) -> Plan[EdgeDeploymentStatus]:
    """The status, pods and Service an EdgeDeployment should have, given the world.

    Without a target (bad spec, missing model, no champion) nothing is created or
    deleted: pods already serving keep serving until there is something better to do.
    """
    config = config or OperatorConfig()
    old = parsed.status
    base = old or EdgeDeploymentStatus()
    generation = parsed.metadata.generation
    target = base.target
    model = world.model
    update: dict[str, Any] = {}
    objects: list[dict[str, Any]] = []
    actions: tuple[object, ...] = ()
    events: list[Event] = []
    requeue_at = None
    rollout = False
    gate = rollout_gate(parsed, model, config)
    if isinstance(gate, Blocked):
        phase = gate.phase
        target = gate.target if gate.resolved else target
        wanted = [
            ConditionSpec(READY, "False", gate.reason, gate.message),
            ConditionSpec(PROGRESSING, gate.progressing, gate.reason, gate.message),
        ]
    elif world.fleet is None:
        target = gate.target
        phase = "Pending"
        message = f"Target is version {gate.target.version} ({gate.why}); waiting for the rollout."
        wanted = [
            ConditionSpec(READY, "False", "TargetResolved", message),
            ConditionSpec(PROGRESSING, "True", "TargetResolved", message),
        ]
    else:
        target = gate.target
        assert parsed.obj is not None
        assert model is not None
        rollout = True
        spec = parsed.obj.spec
        meta = parsed.metadata
        raw = {
            "apiVersion": API_VERSION,
            "kind": "EdgeDeployment",
            "metadata": {"name": meta.name, "namespace": meta.namespace, "uid": meta.uid},
        }
        handled = (base.rollout or RolloutProgress()).handled_commands
        commands, record = commands_from(parsed.metadata.annotations, handled)
        decision = decide_rollout(
            strategy_from_spec(spec),
            gate.version,
            world.fleet.nodes,
            state_from_status(old),
            observation=world.observation,
            commands=commands,
            now=now,
        )
        inputs = serving_inputs(raw, spec, model, config)
        actions = tuple(pod_actions(decision, world.fleet, inputs, config))
        objects = [build_service(raw, spec)]
        update = _rollout_status(base, decision, record)
        if world.analysis_note and decision.phase == Phase.ANALYZING:
            update["message"] = f"{decision.message} {world.analysis_note}"
        phase = decision.phase.value
        wanted = _rollout_conditions(decision)
        events = with_lineage(list(decision.events), model, gate.version.version)
        requeue_at = decision.requeue_at
    if not rollout:
        wanted.append(ConditionSpec(DEGRADED, "False", "AsExpected", "No node is failing."))
    status = base.model_copy(
        update={
            "observed_generation": generation,
            "phase": phase,
            "target": target,
            "conditions": apply_conditions(base.conditions, wanted, now=now, generation=generation),
            **update,
        }
    )
    if not rollout:
        events = transition_events(old, status)
    status, sends, retry_at = _notifications(parsed, status, world, config, now)
    if retry_at is not None:
        requeue_at = min(requeue_at, retry_at) if requeue_at else retry_at
    return Plan(
        status=status,
        objects=objects,
        events=events,
        actions=actions + sends,
        requeue_at=requeue_at,
    )


def _notifications(
    parsed: Parsed[EdgeDeployment, EdgeDeploymentStatus],
    status: EdgeDeploymentStatus,
    world: DeploymentWorld,
    config: OperatorConfig,
    now: datetime,
) -> tuple[EdgeDeploymentStatus, tuple[Send, ...], datetime | None]:
    """A failed rollout (Degraded=True) is an episode the operator-wide receivers are told
    of, once when it begins and once when it clears."""
    degraded = find_condition(status.conditions, DEGRADED)
    active = degraded is not None and degraded.status == "True"
    # The condition says RollingBack; the rollout's own record says why (AnalysisFailed,
    # ArtifactVerificationFailed, ProgressDeadlineExceeded, Aborted): the alert's reason.
    cause, _, _ = (status.rollout.reason if status.rollout else "").partition(": ")
    episode = track_episode(
        status.episode,
        active,
        parsed.metadata.uid or "",
        now,
        cause if cause.isidentifier() else (degraded.reason if degraded else ""),
        degraded.message if degraded else "",
    )
    status = status.model_copy(update={"episode": episode})
    receivers = config.notify_receivers
    if episode is None or not receivers:
        return status, (), None
    alert = rollout_alert_of(episode, parsed.metadata.namespace or "", parsed.metadata.name)
    sends, retry_at = sends_due(alert, receivers, status.notifications, world.targets, now)
    return status, sends, retry_at
