"""The EdgeModel's status from its spec and its MLflow registered model, and promotion."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from edgeml.api.edgemodel import (
    Champion,
    EdgeModelSpec,
    EdgeModelStatus,
    ModelVersion,
    PromotionCandidate,
    RetrainRequest,
)
from edgeml.api.events import Event
from edgeml.api.kinds import EdgeModel
from edgeml.objects.training_run import build_training_run, run_name, trigger_id
from edgeml.plans.common import (
    INVALID_SPEC,
    READY,
    REGISTERED_MODEL_IN_USE,
    REGISTRY_AVAILABLE,
    ConditionSpec,
    Plan,
    apply_conditions,
    transition_events,
)
from edgeml.plans.estimators import check_template, task_mismatch
from edgeml.plans.parsing import Parsed
from edgeml.plans.promotion import (
    CHAMPION,
    PROMOTED_AT_TAG,
    PROMOTED_BY_TAG,
    Candidate,
    Decision,
    decide_promotion,
)
from edgeml.plans.retraining import CreateRun
from edgeml.registry.versions import (
    CHAMPION_METRIC_PREFIX,
    COMPARED_WITH_TAG,
    DATA_VERSION_TAG,
    DATASET_TAG,
    OWNER_TAG,
    PROMOTION_MESSAGE_TAG,
    PROMOTION_TAG,
    REASON_TAG,
    RUN_TAG,
    TEMPLATE_DIGEST_TAG,
    TRAINING_METRIC_PREFIX,
    TRIGGER_ID_TAG,
    TRIGGER_TAG,
    RegistryVersion,
)

RETRAIN_ANNOTATION = "edgeml.io/retrain"
RETRAIN_REASON_ANNOTATION = "edgeml.io/retrain-reason"


@dataclass(frozen=True)
class ClaimModel:
    """Tag the registered model as this EdgeModel's (it exists and names no owner)."""

    owner: str


def model_owner(namespace: str | None, name: str) -> str:
    """The OWNER_TAG value that names an EdgeModel."""
    return f"{namespace}/{name}"


def in_use_message(registered: str, owner: str, namespace: str | None, name: str) -> str:
    """Why an EdgeModel may not use a registered model another EdgeModel holds."""
    return (
        f"MLflow registered model {registered} belongs to EdgeModel {owner} (its tag "
        f"{OWNER_TAG}): this EdgeModel would promote and train into another's versions. Set "
        f"spec.registry.registeredModel to a name of its own, such as {namespace}-{name}."
    )


@dataclass(frozen=True)
class RecordRejection:
    """Tag a version with promotion's refusal, so the registry keeps the why."""

    version: int
    message: str


def retrain_request(
    parsed: Parsed[EdgeModel, EdgeModelStatus], now: datetime
) -> tuple[CreateRun | None, RetrainRequest | None, list[Event]]:
    """A new edgeml.io/retrain value: the one TrainingRun it asks for (named after the
    request, so it is created once however often this runs)."""
    request = parsed.metadata.annotations.get(RETRAIN_ANNOTATION, "").strip()
    old = parsed.status.retrain if parsed.status else None
    if not request or (old is not None and old.request == request):
        return None, old, []
    name = parsed.metadata.name
    tid = trigger_id(parsed.metadata.uid or name, "Manual", request)
    run = run_name(name, "Manual", tid)
    reason = parsed.metadata.annotations.get(RETRAIN_REASON_ANNOTATION, "").strip() or (
        f"Requested with edgeml retrain (request {request})."
    )
    manifest = build_training_run(
        namespace=parsed.metadata.namespace or "",
        name=run,
        model=name,
        trigger="Manual",
        tid=tid,
        reason=reason,
        require_approval=False,
    )
    message = f"Created TrainingRun {run}: {reason}"
    record = RetrainRequest(request=request, training_run=run, at=now, message=message)
    return CreateRun(manifest), record, [Event("Normal", "RetrainRequested", message)]


@dataclass(frozen=True)
class ModelWorld:
    """What the registry says about the model (observed by the controller)."""

    versions: list[RegistryVersion] | None = None
    """Newest first; None when the registered model does not exist yet."""
    registry_error: str | None = None
    """Why the registry could not be read, if it could not."""
    tracking_uri: str | None = None
    """Where the registry is; None when none is configured."""
    observed: bool = field(default=True)
    allowed_modules: tuple[str, ...] = ()
    """The operator's estimator allow-list (empty: not checked)."""
    allowed_volume_types: tuple[str, ...] = ()
    """The volume sources a training Job may mount (empty: not checked)."""
    owner: str | None = None
    """The registered model's OWNER_TAG: the EdgeModel (`namespace/name`) it belongs to,
    None when it has none (or does not exist)."""
    credentials_problem: tuple[str, str] | None = None
    """(reason, message) when spec.registry.credentialsSecretRef names a Secret the
    operator cannot use: the registry was then not read."""

    @property
    def read(self) -> bool:
        """Whether the registry was read (configured, credentials usable, answered)."""
        return (
            self.tracking_uri is not None
            and self.registry_error is None
            and self.credentials_problem is None
        )


def check_edge_model(
    spec: EdgeModelSpec,
    allowed_modules: Sequence[str] = (),
    allowed_volume_types: Sequence[str] = (),
) -> str | None:
    """What the schema cannot catch: an estimator no Job may import (when the allow-list
    is known), metrics of two tasks, volumes outside the allow-list, gates on metrics
    that are never computed."""
    problem = check_template(spec.training, allowed_modules, "spec.training", allowed_volume_types)
    if problem is not None:
        return problem
    computed = set(spec.training.evaluation.metrics)
    for index, gate in enumerate(spec.promotion.gates):
        mismatch = task_mismatch(spec.training.estimator.class_path, [gate.metric])
        if mismatch is not None:
            return f"spec.promotion.gates[{index}] checks {gate.metric}: {mismatch}"
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


def _int(text: str | None) -> int | None:
    return int(text) if text and text.isdigit() else None


def mirror_version(registered_model: str, v: RegistryVersion) -> ModelVersion:
    """A registry version as the EdgeModel's status lists it, with its lineage."""
    prefix = len(CHAMPION_METRIC_PREFIX)
    if PROMOTED_BY_TAG in v.tags:
        promotion: Literal["Promoted", "Rejected"] | None = "Promoted"
    elif v.tags.get(PROMOTION_TAG) == "Rejected":
        promotion = "Rejected"
    else:
        promotion = None
    return ModelVersion(
        version=v.version,
        uri=f"models:/{registered_model}/{v.version}",
        sha256=v.sha256,
        run_id=v.run_id,
        dataset_digest=v.tags.get(DATASET_TAG),
        data_version=v.tags.get(DATA_VERSION_TAG),
        template_digest=v.tags.get(TEMPLATE_DIGEST_TAG),
        training_run=v.tags.get(RUN_TAG),
        metrics={
            k: m
            for k, m in v.metrics.items()
            if not k.startswith((CHAMPION_METRIC_PREFIX, TRAINING_METRIC_PREFIX))
        },
        created=v.created,
        recommended_requests=v.recommended,
        trigger=v.tags.get(TRIGGER_TAG),
        trigger_id=v.tags.get(TRIGGER_ID_TAG),
        reason=v.tags.get(REASON_TAG),
        compared_with=_int(v.tags.get(COMPARED_WITH_TAG)),
        champion_metrics={
            k[prefix:]: m for k, m in v.metrics.items() if k.startswith(CHAMPION_METRIC_PREFIX)
        },
        promotion=promotion,
        promotion_message=v.tags.get(PROMOTION_MESSAGE_TAG) if promotion == "Rejected" else None,
    )


def _decided(mirrored: ModelVersion, decision: Decision, outcome: str) -> ModelVersion:
    """A version as it reads once promotion's decision is recorded on it."""
    if outcome == "Promoted":
        return mirrored.model_copy(update={"promotion": "Promoted", "promotion_message": None})
    return mirrored.model_copy(
        update={"promotion": "Rejected", "promotion_message": decision.message[:5000]}
    )


def _timestamp(text: str | None) -> datetime | None:
    """A registry tag's timestamp; a tag someone mangled is ignored, never fatal."""
    try:
        return datetime.fromisoformat(text) if text else None
    except ValueError:
        return None


def _champion(
    registered_model: str, v: RegistryVersion, decision: Decision | None, now: datetime
) -> Champion:
    base = mirror_version(registered_model, v).model_dump()
    if decision is not None and decision.outcome == "Promote" and decision.version == v.version:
        base["promotion"] = "Promoted"
        return Champion(**base, promoted_at=now, promoted_by=decision.by)
    return Champion(
        **base,
        promoted_at=_timestamp(v.tags.get(PROMOTED_AT_TAG)),
        promoted_by=v.tags.get(PROMOTED_BY_TAG),
    )


def _candidate_events(
    old: PromotionCandidate | None, new: PromotionCandidate | None
) -> list[Event]:
    if new is None or (
        old is not None and (old.version, old.outcome) == (new.version, new.outcome)
    ):
        return []
    kind = {"Promoted": "Normal", "AwaitingApproval": "Normal", "Rejected": "Warning"}[new.outcome]
    reason = {
        "Promoted": "Promoted",
        "AwaitingApproval": "AwaitingApproval",
        "Rejected": "VersionRejected",
    }
    return [Event(kind, reason[new.outcome], new.message)]  # type: ignore[arg-type]


def plan_edge_model(
    parsed: Parsed[EdgeModel, EdgeModelStatus], world: ModelWorld, *, now: datetime
) -> Plan[EdgeModelStatus]:
    """The status an EdgeModel should have, and the promotion to carry out first."""
    old = parsed.status
    base = old or EdgeModelStatus()
    generation = parsed.metadata.generation
    error = parsed.error or (
        check_edge_model(parsed.obj.spec, world.allowed_modules, world.allowed_volume_types)
        if parsed.obj
        else None
    )
    update: dict[str, object] = {}
    actions: tuple[object, ...] = ()
    claim: tuple[ClaimModel, ...] = ()  # carried out before the other actions
    if error is not None or parsed.obj is None:
        wanted = [
            ConditionSpec(READY, "False", INVALID_SPEC, error or "the spec could not be read")
        ]
        phase = "Invalid"
    else:
        spec = parsed.obj.spec
        registered = spec.registry.registered_model or parsed.metadata.name
        update["registered_model"] = registered
        me = model_owner(parsed.metadata.namespace, parsed.metadata.name)
        wanted = []
        if world.tracking_uri is None:
            wanted.append(
                ConditionSpec(
                    REGISTRY_AVAILABLE,
                    "False",
                    "RegistryNotConfigured",
                    "No MLflow tracking server is configured: set spec.registry.trackingUri or "
                    "the operator's mlflow.trackingUri.",
                )
            )
        elif world.credentials_problem is not None:
            reason, message = world.credentials_problem
            wanted.append(
                ConditionSpec(
                    REGISTRY_AVAILABLE,
                    "False",
                    reason,
                    f"{message}. The versions below are as last seen; training waits.",
                )
            )
        elif world.registry_error is not None:
            wanted.append(
                ConditionSpec(
                    REGISTRY_AVAILABLE,
                    "False",
                    "RegistryUnavailable",
                    f"{world.registry_error}; retrying. The versions below are as last seen.",
                )
            )
        else:
            wanted.append(
                ConditionSpec(REGISTRY_AVAILABLE, "True", "Reachable", f"Read {registered}.")
            )
            if world.versions is not None and world.owner is None:
                claim = (ClaimModel(me),)
        taken = world.read and world.versions is not None and world.owner not in (None, me)
        if taken:
            # Nothing of the other EdgeModel's registered model is mirrored or acted on.
            update.update(champion=None, versions=[], latest_version=None, candidate=None)
        elif world.read:
            versions = world.versions or []
            champion_v = next((v for v in versions if CHAMPION in v.aliases), None)
            if claim:
                # Nothing is decided on a model this pass only tags: two EdgeModels that
                # read it untagged at once both tag it, and only the one whose tag stands
                # (read back by the next pass, which this pass's status write wakes) may
                # promote or reject in it.
                decision = Decision("UpToDate", champion_v.version if champion_v else None)
            else:
                decision = decide_promotion(
                    spec.promotion,
                    [Candidate(v.version, v.metrics, v.tags) for v in versions],
                    champion_v.version if champion_v else None,
                    parsed.metadata.annotations,
                )
            if decision.outcome == "Promote":
                actions = (decision,)
                champion_v = next(v for v in versions if v.version == decision.version)
            elif decision.outcome == "Rejected" and decision.version is not None:
                rejected = next(v for v in versions if v.version == decision.version)
                if rejected.tags.get(PROMOTION_TAG) != "Rejected":
                    actions = (RecordRejection(decision.version, decision.message),)
            update["champion"] = (
                _champion(registered, champion_v, decision, now) if champion_v else None
            )
            # As the registry will read once this plan's tags are written.
            decided = {"Promote": "Promoted", "Rejected": "Rejected"}.get(decision.outcome)
            update["versions"] = [
                _decided(mirror_version(registered, v), decision, decided)
                if decided and v.version == decision.version
                else mirror_version(registered, v)
                for v in versions
            ][: spec.version_history_limit]
            update["latest_version"] = versions[0].version if versions else None
            outcome: dict[str, Literal["Promoted", "Rejected", "AwaitingApproval"]] = {
                "Promote": "Promoted",
                "Rejected": "Rejected",
                "AwaitingApproval": "AwaitingApproval",
            }
            if decision.outcome in outcome and decision.version is not None:
                update["candidate"] = PromotionCandidate(
                    version=decision.version,
                    outcome=outcome[decision.outcome],
                    message=decision.message,
                )
        champion = update.get("champion", base.champion)
        if taken:
            assert world.owner is not None
            phase = "Invalid"
            wanted.append(
                ConditionSpec(
                    READY,
                    "False",
                    REGISTERED_MODEL_IN_USE,
                    in_use_message(
                        registered, world.owner, parsed.metadata.namespace, parsed.metadata.name
                    ),
                )
            )
        elif champion is None:
            phase = "Pending"
            wanted.append(
                ConditionSpec(
                    READY,
                    "False",
                    "NoChampion",
                    f"No version of {registered} is champion yet: create a TrainingRun "
                    f"with modelRef.name {parsed.metadata.name} to train one.",
                )
            )
        else:
            assert isinstance(champion, Champion)
            phase = "Ready"
            wanted.append(
                ConditionSpec(
                    READY, "True", "ChampionAvailable", f"Version {champion.version} is champion."
                )
            )
    actions = (*claim, *actions)
    retrain_events: list[Event] = []
    if parsed.obj is not None and error is None:
        create, update["retrain"], retrain_events = retrain_request(parsed, now)
        if create is not None:
            actions = (*actions, create)
    status = base.model_copy(
        update={
            "observed_generation": generation,
            "phase": phase,
            "conditions": apply_conditions(base.conditions, wanted, now=now, generation=generation),
            **update,
        }
    )
    events = (
        transition_events(old, status)
        + _candidate_events(base.candidate, status.candidate)
        + retrain_events
    )
    return Plan(status=status, events=events, actions=actions)
