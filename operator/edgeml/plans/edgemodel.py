"""The EdgeModel's status from its spec and its MLflow registered model, and promotion."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from edgeml.api.edgemodel import (
    Champion,
    EdgeModelSpec,
    EdgeModelStatus,
    ModelVersion,
    PromotionCandidate,
)
from edgeml.api.kinds import EdgeModel
from edgeml.plans.common import (
    INVALID_SPEC,
    READY,
    ConditionSpec,
    Event,
    Plan,
    apply_conditions,
    transition_events,
)
from edgeml.plans.parsing import Parsed
from edgeml.plans.promotion import (
    CHAMPION,
    PROMOTED_AT_TAG,
    PROMOTED_BY_TAG,
    Candidate,
    Decision,
    decide_promotion,
)
from edgeml.registry.versions import DATASET_TAG, RUN_TAG, RegistryVersion

REGISTRY_AVAILABLE = "RegistryAvailable"


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


def mirror_version(registered_model: str, v: RegistryVersion) -> ModelVersion:
    """A registry version as the EdgeModel's status lists it."""
    return ModelVersion(
        version=v.version,
        uri=f"models:/{registered_model}/{v.version}",
        sha256=v.sha256,
        run_id=v.run_id,
        dataset_digest=v.tags.get(DATASET_TAG),
        training_run=v.tags.get(RUN_TAG),
        metrics=dict(v.metrics),
        created=v.created,
        recommended_requests=v.recommended,
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
    error = parsed.error or (check_edge_model(parsed.obj.spec) if parsed.obj else None)
    update: dict[str, object] = {}
    actions: tuple[object, ...] = ()
    if error is not None or parsed.obj is None:
        wanted = [
            ConditionSpec(READY, "False", INVALID_SPEC, error or "the spec could not be read")
        ]
        phase = "Invalid"
    else:
        spec = parsed.obj.spec
        registered = spec.registry.registered_model or parsed.metadata.name
        update["registered_model"] = registered
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
            versions = world.versions or []
            champion_v = next((v for v in versions if CHAMPION in v.aliases), None)
            decision = decide_promotion(
                spec.promotion,
                [Candidate(v.version, v.metrics, v.tags) for v in versions],
                champion_v.version if champion_v else None,
                parsed.metadata.annotations,
            )
            if decision.outcome == "Promote":
                actions = (decision,)
                champion_v = next(v for v in versions if v.version == decision.version)
            update["champion"] = (
                _champion(registered, champion_v, decision, now) if champion_v else None
            )
            update["versions"] = [mirror_version(registered, v) for v in versions][
                : spec.version_history_limit
            ]
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
        if champion is None:
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
    status = base.model_copy(
        update={
            "observed_generation": generation,
            "phase": phase,
            "conditions": apply_conditions(base.conditions, wanted, now=now, generation=generation),
            **update,
        }
    )
    events = transition_events(old, status) + _candidate_events(base.candidate, status.candidate)
    return Plan(status=status, events=events, actions=actions)
