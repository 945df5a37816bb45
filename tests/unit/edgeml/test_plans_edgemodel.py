"""The EdgeModel's status from its spec and its registry mirror, and the promotion to make."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from edgeml.api.edgemodel import Champion, EdgeModelSpec, EdgeModelStatus, ModelVersion
from edgeml.api.events import Event
from edgeml.api.kinds import EdgeModel
from edgeml.plans.common import Plan
from edgeml.plans.edgemodel import (
    REGISTRY_AVAILABLE,
    RETRAIN_ANNOTATION,
    RETRAIN_REASON_ANNOTATION,
    ClaimModel,
    ModelWorld,
    RecordRejection,
    check_edge_model,
    mirror_version,
    plan_edge_model,
)
from edgeml.plans.parsing import parse
from edgeml.plans.promotion import (
    APPROVE_ANNOTATION,
    APPROVED_BY_ANNOTATION,
    CHAMPION,
    PROMOTED_AT_TAG,
    PROMOTED_BY_TAG,
    Decision,
)
from edgeml.plans.retraining import CreateRun
from edgeml.registry.versions import (
    COMPARED_WITH_TAG,
    DATASET_TAG,
    PROMOTION_MESSAGE_TAG,
    PROMOTION_TAG,
    REASON_TAG,
    RUN_TAG,
    SHA256_TAG,
    TRIGGER_ID_TAG,
    TRIGGER_TAG,
    RegistryVersion,
)
from support.objects import DELETE, edge_model

T0 = datetime(2026, 1, 1, tzinfo=UTC)
T1 = T0 + timedelta(minutes=5)
URI = "http://mlflow:5000"
NO_CHAMPION = (
    "No version of vibration is champion yet: create a TrainingRun with modelRef.name "
    "vibration to train one."
)


def version(
    number: int,
    f1: float = 0.9,
    *,
    champion: bool = False,
    promoted: tuple[datetime, str] | None = None,
    **tags: str,
) -> RegistryVersion:
    all_tags = {SHA256_TAG: f"sha-{number}", RUN_TAG: f"vibration-{number}", **tags}
    if promoted is not None:
        all_tags[PROMOTED_AT_TAG] = promoted[0].isoformat()
        all_tags[PROMOTED_BY_TAG] = promoted[1]
    return RegistryVersion(
        version=number,
        run_id=f"run-{number}",
        source=None,
        created=T0,
        tags=all_tags,
        metrics={"f1": f1, "accuracy": f1},
        aliases=(CHAMPION,) if champion else (),
    )


OWNER = "ml/vibration"
"""The registered model's owner tag as the EdgeModel of body_of() claims it."""


def world(*versions: RegistryVersion, **kw: Any) -> ModelWorld:
    """The registry, with the registered model already claimed by this EdgeModel."""
    return ModelWorld(versions=list(versions), tracking_uri=URI, **{"owner": OWNER, **kw})


def body_of(
    status: dict[str, Any] | None = None,
    generation: int | None = 2,
    annotations: dict[str, str] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    body = edge_model(**spec)
    body["metadata"].update(namespace="ml", annotations=annotations or {})
    if generation is not None:
        body["metadata"]["generation"] = generation
    if status is not None:
        body["status"] = status
    return body


def plan(body: dict[str, Any], world_: ModelWorld, now: datetime = T0) -> Plan[EdgeModelStatus]:
    return plan_edge_model(parse(EdgeModel, EdgeModelStatus, body), world_, now=now)


def conditions(status: EdgeModelStatus) -> dict[str, tuple[str, str]]:
    return {c.type: (c.status, c.reason) for c in status.conditions}


def message_of(status: EdgeModelStatus, cond_type: str = "Ready") -> str:
    return next(c.message for c in status.conditions if c.type == cond_type)


def test_registry_available_is_a_condition_type() -> None:
    assert REGISTRY_AVAILABLE == "RegistryAvailable"


# --- check_edge_model ----------------------------------------------------------------------


def spec_of(**changes: Any) -> EdgeModelSpec:
    return EdgeModelSpec.model_validate(edge_model(**changes)["spec"])


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({}, None),
        ({"promotion": {"gates": []}}, None),
        ({"promotion": {"gates": [{"metric": "accuracy", "min": 0.9}]}}, None),
        ({"promotion": {"gates": [{"metric": "f1", "notWorseThanChampionBy": 0.01}]}}, None),
        (
            {
                "training": {
                    "estimator": {"class": "sklearn.ensemble.RandomForestRegressor"},
                    "evaluation": {"metrics": ["rmse", "mae"]},
                },
                "promotion": {"gates": [{"metric": "rmse", "max": 2.0}]},
            },
            None,
        ),
        (
            {"promotion": {"gates": [{"metric": "roc_auc", "min": 0.9}]}},
            "spec.promotion.gates[0] checks roc_auc, which spec.training.evaluation.metrics "
            "does not compute (accuracy, f1)",
        ),
        (
            {"promotion": {"gates": [{"metric": "f1", "min": 0.8}, {"metric": "rmse", "max": 1}]}},
            "spec.promotion.gates[1] checks rmse: rmse is not a classification metric, and "
            "sklearn.ensemble.RandomForestClassifier is a classifier",
        ),
        (
            {"promotion": {"gates": [{"metric": "f1", "maxSliceGap": 0.05}]}},
            "spec.promotion.gates[0] checks maxSliceGap, but spec.training.dataset.sliceColumn "
            "is not set, so there are no slices",
        ),
        (
            {
                "training": {"dataset": {"sliceColumn": "site"}},
                "promotion": {"gates": [{"metric": "roc_auc", "maxSliceGap": 0.05}]},
            },
            None,
        ),
    ],
)
def test_check_edge_model(changes: dict[str, Any], problem: str | None) -> None:
    assert check_edge_model(spec_of(**changes)) == problem


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"training": {"estimator": {"class": "sklearn.svm.SVC"}}}, None),
        (
            {"training": {"estimator": {"class": "os.system"}}},
            "spec.training.estimator.class: module os is not in the allow-list (sklearn); "
            "training Jobs may import only what the operator's training.allowedModules names "
            "(Helm value)",
        ),
        (
            {"training": {"estimator": {"class": "sklearn._x.Y"}}},
            "spec.training.estimator.class: sklearn._x.Y: private name '_x' is not allowed; "
            "training Jobs may import only what the operator's training.allowedModules names "
            "(Helm value)",
        ),
        (
            {"training": {"evaluation": {"metrics": ["f1", "rmse"]}}},
            "spec.training.evaluation.metrics mixes classification metrics (f1) with "
            "regression metrics (rmse); a model is a classifier or a regressor",
        ),
    ],
)
def test_a_template_no_job_could_train_is_invalid_before_any_job(
    changes: dict[str, Any], problem: str | None
) -> None:
    assert check_edge_model(spec_of(**changes), ("sklearn",)) == problem


def test_the_estimator_is_not_checked_without_an_allow_list() -> None:
    assert check_edge_model(spec_of(training={"estimator": {"class": "os.system"}})) is None


def test_check_edge_model_lists_computed_metrics_sorted() -> None:
    spec = spec_of(
        training={"evaluation": {"metrics": ["recall", "accuracy", "f1"]}},
        promotion={"gates": [{"metric": "precision", "min": 0.5}]},
    )
    problem = check_edge_model(spec)
    assert problem is not None
    assert problem.endswith("(accuracy, f1, recall)")


# --- mirror_version -----------------------------------------------------------------------------


def test_mirror_version_lists_what_pods_and_people_need() -> None:
    v = version(4, 0.91, **{DATASET_TAG: "data-sha"})
    assert mirror_version("vib", v) == ModelVersion(
        version=4,
        uri="models:/vib/4",
        sha256="sha-4",
        run_id="run-4",
        dataset_digest="data-sha",
        training_run="vibration-4",
        metrics={"f1": 0.91, "accuracy": 0.91},
        created=T0,
    )


def test_mirror_version_without_tags_leaves_them_unset() -> None:
    bare = RegistryVersion(version=1, run_id=None, source=None, created=None)
    mirrored = mirror_version("vib", bare)
    assert (mirrored.sha256, mirrored.training_run, mirrored.dataset_digest) == (None, None, None)
    assert mirrored.recommended_requests == {}


def test_mirror_version_carries_the_profiles_recommended_requests() -> None:
    tags = {"edgeml.io/recommended-cpu": "60m", "edgeml.io/recommended-memory": "96Mi"}
    v = version(4, 0.91, **tags, **{"edgeml.io/recommended-gpu": "1"})
    mirrored = mirror_version("vib", v)
    assert mirrored.recommended_requests == {"cpu": "60m", "memory": "96Mi"}
    bad = version(5, 0.91, **{**tags, "edgeml.io/recommended-cpu": "lots"})
    assert mirror_version("vib", bad).recommended_requests == {"memory": "96Mi"}
    assert mirrored.to_json()["recommendedRequests"] == {"cpu": "60m", "memory": "96Mi"}


# --- plan_edge_model ------------------------------------------------------------------------------

INVALID = {"training": {"dataset": {"uri": "ftp://nowhere"}}}
UNCHECKED_GATE = {"promotion": {"gates": [{"metric": "r2", "min": 0.5}]}}
MANUAL = {"promotion": {"mode": "Manual"}}
V3_CHAMPION = version(3, 0.85, champion=True, promoted=(T0, "auto"))

# id, spec changes, world, (phase, Ready, RegistryAvailable, champion, candidate, events)
SCENARIOS: list[tuple[str, dict[str, Any], ModelWorld, tuple[Any, ...]]] = [
    (
        "invalid-spec",
        INVALID,
        world(V3_CHAMPION),
        ("Invalid", ("False", "InvalidSpec"), None, None, None, [("Warning", "InvalidSpec")]),
    ),
    (
        "gate-on-an-uncomputed-metric",
        UNCHECKED_GATE,
        world(V3_CHAMPION),
        ("Invalid", ("False", "InvalidSpec"), None, None, None, [("Warning", "InvalidSpec")]),
    ),
    (
        "no-registry-configured",
        {},
        ModelWorld(),
        (
            "Pending",
            ("False", "NoChampion"),
            ("False", "RegistryNotConfigured"),
            None,
            None,
            [("Normal", "NoChampion")],
        ),
    ),
    (
        "registry-down",
        {},
        world(registry_error="connection refused"),
        (
            "Pending",
            ("False", "NoChampion"),
            ("False", "RegistryUnavailable"),
            None,
            None,
            [("Normal", "NoChampion"), ("Warning", "RegistryUnavailable")],
        ),
    ),
    (
        "not-registered-yet",
        {},
        ModelWorld(versions=None, tracking_uri=URI),
        (
            "Pending",
            ("False", "NoChampion"),
            ("True", "Reachable"),
            None,
            None,
            [("Normal", "NoChampion")],
        ),
    ),
    (
        "champion-up-to-date",
        {},
        world(V3_CHAMPION, version(2, 0.8)),
        (
            "Ready",
            ("True", "ChampionAvailable"),
            ("True", "Reachable"),
            3,
            None,
            [("Normal", "ChampionAvailable")],
        ),
    ),
    (
        "first-version-promoted",
        {},
        world(version(1, 0.9)),
        (
            "Ready",
            ("True", "ChampionAvailable"),
            ("True", "Reachable"),
            1,
            ("Promoted", 1),
            [("Normal", "ChampionAvailable"), ("Normal", "Promoted")],
        ),
    ),
    (
        "newer-version-promoted",
        {},
        world(version(4, 0.9), V3_CHAMPION),
        (
            "Ready",
            ("True", "ChampionAvailable"),
            ("True", "Reachable"),
            4,
            ("Promoted", 4),
            [("Normal", "ChampionAvailable"), ("Normal", "Promoted")],
        ),
    ),
    (
        "newer-version-rejected",
        {},
        world(version(4, 0.5), V3_CHAMPION),
        (
            "Ready",
            ("True", "ChampionAvailable"),
            ("True", "Reachable"),
            3,
            ("Rejected", 4),
            [("Normal", "ChampionAvailable"), ("Warning", "VersionRejected")],
        ),
    ),
    (
        "manual-awaits-approval",
        MANUAL,
        world(version(4, 0.9), V3_CHAMPION),
        (
            "Ready",
            ("True", "ChampionAvailable"),
            ("True", "Reachable"),
            3,
            ("AwaitingApproval", 4),
            [("Normal", "ChampionAvailable"), ("Normal", "AwaitingApproval")],
        ),
    ),
]
IDS = [s[0] for s in SCENARIOS]


@pytest.mark.parametrize(("name", "spec", "world_", "expected"), SCENARIOS, ids=IDS)
def test_plan_edge_model(
    name: str, spec: dict[str, Any], world_: ModelWorld, expected: tuple[Any, ...]
) -> None:
    phase, ready, registry, champion, candidate, events = expected
    result = plan(body_of(**spec), world_)
    status = result.status
    assert status.phase == phase
    conds = conditions(status)
    assert conds["Ready"] == ready
    assert conds.get(REGISTRY_AVAILABLE) == registry
    assert (status.champion.version if status.champion else None) == champion
    assert (
        (status.candidate.outcome, status.candidate.version) if status.candidate else None
    ) == candidate
    assert [(e.type, e.reason) for e in result.events] == events
    assert result.objects == []
    promoted = candidate is not None and candidate[0] == "Promoted"
    rejected = candidate is not None and candidate[0] == "Rejected"
    expected_actions = [Decision] if promoted else [RecordRejection] if rejected else []
    assert [type(a) for a in result.actions] == expected_actions
    if candidate is not None and candidate[0] in ("Promoted", "Rejected"):
        # Status lists the decision as the registry will hold it once the tags are written.
        decided = next(v for v in status.versions if v.version == candidate[1])
        assert decided.promotion == candidate[0]


@pytest.mark.parametrize(("name", "spec", "world_", "expected"), SCENARIOS, ids=IDS)
@pytest.mark.parametrize("generation", [None, 1, 7])
def test_observed_generation_on_status_and_conditions(
    name: str,
    spec: dict[str, Any],
    world_: ModelWorld,
    expected: tuple[Any, ...],
    generation: int | None,
) -> None:
    status = plan(body_of(generation=generation, **spec), world_).status
    assert status.observed_generation == generation
    assert {c.observed_generation for c in status.conditions} == {generation}


def after(world_: ModelWorld, first: Plan[EdgeModelStatus]) -> ModelWorld:
    """The registry once the plan's promotion was carried out (alias moved, tags written)."""
    promote = next((a for a in first.actions if isinstance(a, Decision)), None)
    reject = next((a for a in first.actions if isinstance(a, RecordRejection)), None)
    if reject is not None and world_.versions is not None:
        rejected = {PROMOTION_TAG: "Rejected", PROMOTION_MESSAGE_TAG: reject.message}
        return ModelWorld(
            versions=[
                RegistryVersion(v.version, v.run_id, v.source, v.created,
                                {**v.tags, **rejected}, v.metrics, v.aliases)
                if v.version == reject.version
                else v
                for v in world_.versions
            ],
            tracking_uri=world_.tracking_uri,
            owner=world_.owner,
        )  # fmt: skip
    if promote is None or world_.versions is None:
        return world_
    versions = []
    for v in world_.versions:
        if v.version == promote.version:
            tags = {**v.tags, PROMOTED_AT_TAG: T0.isoformat(), PROMOTED_BY_TAG: str(promote.by)}
            v = RegistryVersion(
                v.version, v.run_id, v.source, v.created, tags, v.metrics, (CHAMPION,)
            )
        else:
            v = RegistryVersion(v.version, v.run_id, v.source, v.created, v.tags, v.metrics, ())
        versions.append(v)
    return ModelWorld(versions=versions, tracking_uri=world_.tracking_uri, owner=world_.owner)


@pytest.mark.parametrize(("name", "spec", "world_", "expected"), SCENARIOS, ids=IDS)
def test_planning_again_changes_nothing_and_posts_nothing(
    name: str, spec: dict[str, Any], world_: ModelWorld, expected: tuple[Any, ...]
) -> None:
    first = plan(body_of(**spec), world_)
    second = plan(body_of(first.status.to_json(), **spec), after(world_, first), now=T1)
    assert second.status == first.status
    assert second.events == []
    assert second.actions == ()


@pytest.mark.parametrize(
    ("spec", "world_", "cond_type", "message"),
    [
        ({}, ModelWorld(), "Ready", NO_CHAMPION),
        (
            {},
            ModelWorld(),
            REGISTRY_AVAILABLE,
            "No MLflow tracking server is configured: set spec.registry.trackingUri or the "
            "operator's mlflow.trackingUri.",
        ),
        (
            {},
            world(registry_error="connection refused"),
            REGISTRY_AVAILABLE,
            "connection refused; retrying. The versions below are as last seen.",
        ),
        ({}, world(V3_CHAMPION), REGISTRY_AVAILABLE, "Read vibration."),
        (
            {"registry": {"registeredModel": "vib-prod"}},
            world(),
            REGISTRY_AVAILABLE,
            "Read vib-prod.",
        ),
        ({}, world(V3_CHAMPION), "Ready", "Version 3 is champion."),
    ],
)
def test_messages(spec: dict[str, Any], world_: ModelWorld, cond_type: str, message: str) -> None:
    assert message_of(plan(body_of(**spec), world_).status, cond_type) == message


@pytest.mark.parametrize(
    ("spec", "registered"),
    [
        ({}, "vibration"),
        ({"registry": {"registeredModel": "vib-prod"}}, "vib-prod"),
        (INVALID, None),
    ],
)
def test_the_registered_model_is_the_specs_or_the_objects_name(
    spec: dict[str, Any], registered: str | None
) -> None:
    assert plan(body_of(**spec), world()).status.registered_model == registered


def test_the_status_mirrors_the_registry_newest_first_up_to_the_limit() -> None:
    versions = [
        version(n, 0.5, champion=n == 3, promoted=(T0, "auto") if n == 3 else None)
        for n in (6, 5, 4, 3, 2, 1)
    ]
    status = plan(body_of(versionHistoryLimit=4), world(*versions)).status
    assert [v.version for v in status.versions] == [6, 5, 4, 3]
    assert status.latest_version == 6
    assert status.versions[1] == mirror_version("vibration", versions[1])


def test_the_champion_records_when_and_by_whom_it_was_promoted() -> None:
    status = plan(body_of(), world(V3_CHAMPION)).status
    assert status.champion == Champion(
        **mirror_version("vibration", V3_CHAMPION).model_dump(), promoted_at=T0, promoted_by="auto"
    )


def test_a_promotion_is_an_action_and_the_new_champion_in_the_status() -> None:
    result = plan(body_of(), world(version(4, 0.9), V3_CHAMPION), now=T1)
    (decision,) = result.actions
    assert isinstance(decision, Decision)
    assert (decision.outcome, decision.version, decision.by) == ("Promote", 4, "auto")
    assert result.status.champion is not None
    assert (result.status.champion.version, result.status.champion.promoted_at) == (4, T1)
    assert result.status.champion.promoted_by == "auto"
    assert message_of(result.status) == "Version 4 is champion."
    assert result.events[-1] == Event(
        "Normal", "Promoted", "Version 4 becomes champion (by auto): f1 0.9 vs min 0.8."
    )


def test_an_approval_promotes_the_named_version_by_the_approver() -> None:
    annotations = {APPROVE_ANNOTATION: "4", APPROVED_BY_ANNOTATION: "alice"}
    result = plan(body_of(annotations=annotations, **MANUAL), world(version(4, 0.5), V3_CHAMPION))
    (decision,) = result.actions
    assert (decision.outcome, decision.version, decision.by) == ("Promote", 4, "alice")
    assert result.status.champion is not None
    assert result.status.champion.promoted_by == "alice"


def test_a_rejection_says_which_gate_failed() -> None:
    result = plan(body_of(), world(version(4, 0.5), V3_CHAMPION))
    assert result.status.candidate is not None
    assert result.status.candidate.message == "Version 4 stays out: f1 0.5 vs min 0.8."
    assert result.events[-1] == Event(
        "Warning", "VersionRejected", "Version 4 stays out: f1 0.5 vs min 0.8."
    )


def test_while_the_registry_is_down_the_last_seen_mirror_is_kept() -> None:
    seen = plan(body_of(), world(version(4, 0.5), V3_CHAMPION), now=T0).status
    result = plan(body_of(seen.to_json()), world(registry_error="timeout"), now=T1)
    status = result.status
    assert (status.champion, status.versions, status.latest_version, status.candidate) == (
        seen.champion,
        seen.versions,
        seen.latest_version,
        seen.candidate,
    )
    assert conditions(status)["Ready"] == ("True", "ChampionAvailable")
    assert result.events == [
        Event(
            "Warning",
            "RegistryUnavailable",
            "timeout; retrying. The versions below are as last seen.",
        )
    ]
    assert result.actions == ()


def test_a_spec_made_invalid_warns_once_and_keeps_the_mirror() -> None:
    good = plan(body_of(), world(V3_CHAMPION), now=T0).status
    broken = plan(body_of(good.to_json(), **UNCHECKED_GATE), world(V3_CHAMPION), now=T1)
    assert [(e.type, e.reason) for e in broken.events] == [("Warning", "InvalidSpec")]
    assert broken.status.champion == good.champion
    assert broken.status.registered_model == "vibration"
    ready = next(c for c in broken.status.conditions if c.type == "Ready")
    assert ready.last_transition_time == T1  # True -> False


def test_a_missing_spec_is_invalid() -> None:
    result = plan(body_of(training=DELETE), world())
    assert conditions(result.status)["Ready"] == ("False", "InvalidSpec")
    assert message_of(result.status) == "spec.training: Field required"


def test_an_unreadable_spec_without_an_error_is_still_invalid() -> None:
    """A Parsed with neither object nor error (not built by parse) is not a crash."""
    parsed = parse(EdgeModel, EdgeModelStatus, body_of(training=DELETE))
    result = plan_edge_model(type(parsed)(parsed.metadata, None), world(), now=T0)
    assert message_of(result.status) == "the spec could not be read"


def test_an_unreadable_promoted_at_tag_does_not_stop_planning() -> None:
    champion = version(3, champion=True, **{PROMOTED_AT_TAG: "last tuesday"})
    status = plan(body_of(), world(champion)).status
    assert status.champion is not None
    assert status.champion.promoted_at is None


# --- lineage and manual retrains ------------------------------------------------------------


def test_a_version_lists_its_lineage_and_the_fair_comparison() -> None:
    tagged = version(
        4,
        0.88,
        **{
            TRIGGER_TAG: "Drift",
            TRIGGER_ID_TAG: "0123456789abcdef",
            REASON_TAG: "Drift detected: zone site-c",
            COMPARED_WITH_TAG: "3",
        },
    )
    tagged = replace(
        tagged, metrics={**tagged.metrics, "champion.f1": 0.61, "training.rows": 400.0}
    )
    mirrored = mirror_version("vibration", tagged)
    assert (mirrored.trigger, mirrored.trigger_id) == ("Drift", "0123456789abcdef")
    assert mirrored.reason == "Drift detected: zone site-c"
    assert (mirrored.compared_with, mirrored.champion_metrics) == (3, {"f1": 0.61})
    assert "champion.f1" not in mirrored.metrics
    assert "training.rows" not in mirrored.metrics
    rejected = version(5, **{PROMOTION_TAG: "Rejected", PROMOTION_MESSAGE_TAG: "f1 0.5 vs min 0.8"})
    assert mirror_version("vibration", rejected).promotion == "Rejected"
    assert mirror_version("vibration", rejected).promotion_message == "f1 0.5 vs min 0.8"


def test_a_retrain_request_creates_one_training_run_per_value() -> None:
    annotations = {RETRAIN_ANNOTATION: "req-1", RETRAIN_REASON_ANNOTATION: "new sensor firmware"}
    body = body_of(annotations=annotations)
    body["metadata"]["uid"] = "model-uid"
    first = plan(body, world(V3_CHAMPION))
    (create,) = [a for a in first.actions if isinstance(a, CreateRun)]
    manifest = create.manifest
    assert manifest["spec"]["trigger"] == "Manual"
    assert manifest["spec"]["reason"] == "new sensor firmware"
    assert manifest["spec"]["requireApproval"] is False
    assert manifest["metadata"]["name"].startswith("vibration-manual-")
    assert first.status.retrain is not None
    assert first.status.retrain.training_run == manifest["metadata"]["name"]
    assert ("Normal", "RetrainRequested") in [(e.type, e.reason) for e in first.events]
    # The same request again: nothing; a new value: a new run with another name.
    again = plan({**body, "status": first.status.to_json()}, world(V3_CHAMPION), now=T1)
    assert not [a for a in again.actions if isinstance(a, CreateRun)]
    assert again.events == []
    body["metadata"]["annotations"] = {RETRAIN_ANNOTATION: "req-2"}
    other = plan({**body, "status": first.status.to_json()}, world(V3_CHAMPION), now=T1)
    (create2,) = [a for a in other.actions if isinstance(a, CreateRun)]
    assert create2.manifest["metadata"]["name"] != manifest["metadata"]["name"]
    assert "request req-2" in create2.manifest["spec"]["reason"]


def test_a_hostpath_training_volume_is_invalid_spec_before_any_job() -> None:
    """The operator refuses it itself, for a cluster without the admission policy."""
    hostpath = {
        "volumes": [{"name": "node", "hostPath": {"path": "/etc"}}],
        "volumeMounts": [{"name": "node", "mountPath": "/data"}],
    }
    result = plan(
        body_of(training=hostpath),
        world(allowed_volume_types=("persistentVolumeClaim", "emptyDir")),
    )
    assert conditions(result.status)["Ready"] == ("False", "InvalidSpec")
    assert message_of(result.status) == (
        "spec.training.volumes[0] (node): hostPath volumes are not allowed; training Jobs "
        "may mount persistentVolumeClaim, emptyDir (the operator's "
        "training.allowedVolumeTypes, Helm value)"
    )
    assert result.actions == ()


def test_a_gate_of_the_other_task_is_invalid_before_any_job() -> None:
    """No rmse gate on a classifier: named as such, not as an uncomputed metric."""
    spec = spec_of(promotion={"gates": [{"metric": "rmse", "max": 0.5}]})
    assert check_edge_model(spec) == (
        "spec.promotion.gates[0] checks rmse: rmse is not a classification metric, and "
        "sklearn.ensemble.RandomForestClassifier is a classifier"
    )


def test_evaluation_metrics_of_the_other_task_are_invalid_before_any_job() -> None:
    spec = spec_of(
        training={
            "estimator": {"class": "sklearn.linear_model.LinearRegression"},
            "evaluation": {"metrics": ["accuracy"]},
        },
        promotion={"gates": []},
    )
    assert check_edge_model(spec) == (
        "spec.training.evaluation.metrics: accuracy is not a regression metric, and "
        "sklearn.linear_model.LinearRegression is a regressor"
    )


def test_a_regressor_with_the_default_metrics_is_valid() -> None:
    """The default (accuracy, f1) becomes rmse, mae, r2 in the Job for a regressor."""
    spec = spec_of(
        training={"estimator": {"class": "sklearn.ensemble.RandomForestRegressor"}},
        promotion={"gates": []},
    )
    assert check_edge_model(spec) is None


def test_an_unclaimed_registered_model_is_claimed_first_and_decided_once_the_tag_stands() -> None:
    """Two EdgeModels reading one untagged model at once both tag it: neither promotes
    nor rejects in the pass that tags, and the next pass reads which tag stood."""
    claiming = plan(body_of(), world(version(4, 0.9), V3_CHAMPION, owner=None), now=T1)
    assert claiming.actions == (ClaimModel("ml/vibration"),)
    assert conditions(claiming.status)["Ready"] == ("True", "ChampionAvailable")
    assert claiming.status.champion is not None
    assert claiming.status.champion.version == 3  # as the registry has it, nothing moved
    assert [v.version for v in claiming.status.versions] == [4, 3]
    assert claiming.status.candidate is None
    assert [e.reason for e in claiming.events] == ["ChampionAvailable"]

    seen = claiming.status.to_json()
    ours = plan(body_of(status=seen), world(version(4, 0.9), V3_CHAMPION), now=T1)
    assert [type(a) for a in ours.actions] == [Decision]  # the tag stood: promote
    lost = plan(body_of(status=seen), world(version(4, 0.9), V3_CHAMPION, owner="other/vibration"))
    assert lost.actions == ()  # another's tag stood: nothing of the model is touched
    assert conditions(lost.status)["Ready"] == ("False", "RegisteredModelInUse")


def test_a_version_to_reject_is_not_recorded_by_the_pass_that_claims() -> None:
    claiming = plan(body_of(), world(version(4, 0.5), V3_CHAMPION, owner=None), now=T1)
    assert claiming.actions == (ClaimModel("ml/vibration"),)


def test_a_registered_model_that_does_not_exist_yet_is_not_claimed() -> None:
    result = plan(body_of(), ModelWorld(versions=None, tracking_uri=URI))
    assert not [a for a in result.actions if isinstance(a, ClaimModel)]
    assert conditions(result.status)["Ready"] == ("False", "NoChampion")


def test_a_registered_model_another_edge_model_owns_is_neither_mirrored_nor_promoted() -> None:
    earlier = plan(body_of(), world(V3_CHAMPION)).status.to_json()  # as it was before
    result = plan(
        body_of(status=earlier), world(version(4, 0.9), V3_CHAMPION, owner="other/vibration")
    )
    assert result.actions == ()
    assert result.status.phase == "Invalid"
    assert conditions(result.status)["Ready"] == ("False", "RegisteredModelInUse")
    message = message_of(result.status)
    assert "belongs to EdgeModel other/vibration" in message
    assert "spec.registry.registeredModel" in message
    assert "ml-vibration" in message
    status = result.status
    assert (status.champion, status.versions, status.latest_version) == (None, [], None)
    assert result.events == [Event("Warning", "RegisteredModelInUse", message)]


@pytest.mark.parametrize(
    "reason",
    ["RegistryCredentialsNotFound", "RegistryCredentialsNotLabelled", "RegistryCredentialsInvalid"],
)
def test_registry_credentials_it_cannot_use_keep_the_versions_and_act_on_nothing(
    reason: str,
) -> None:
    seen = plan(body_of(), world(version(4, 0.9), V3_CHAMPION)).status
    problem = (reason, "Secret mlflow says why")
    result = plan(
        body_of(seen.to_json()),
        ModelWorld(tracking_uri=URI, versions=None, credentials_problem=problem),
        now=T1,
    )
    assert result.actions == ()  # no claim, no promotion, no rejection written
    assert conditions(result.status)["RegistryAvailable"] == ("False", reason)
    assert message_of(result.status, "RegistryAvailable") == (
        "Secret mlflow says why. The versions below are as last seen; training waits."
    )
    assert (result.status.versions, result.status.champion) == (seen.versions, seen.champion)
    assert result.status.phase == seen.phase
    assert [(e.type, e.reason) for e in result.events] == [("Warning", reason)]
