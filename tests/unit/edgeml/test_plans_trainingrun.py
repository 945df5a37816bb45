"""A TrainingRun's Job and status, from its EdgeModel, its Job and the Job's pods."""

from __future__ import annotations

import json
import warnings
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from edgeml.api.edgemodel import TrainingTemplate
from edgeml.api.events import Event
from edgeml.api.kinds import TrainingRun
from edgeml.api.trainingrun import TrainingRunSpec, TrainingRunStatus
from edgeml.config import OperatorConfig
from edgeml.plans.common import Plan
from edgeml.plans.parsing import parse
from edgeml.plans.trainingrun import (
    SUCCEEDED,
    TrainingWorld,
    failure_reason,
    merge_training,
    plan_training_run,
    success_summary,
)
from support.objects import edge_model, training_run

T0 = datetime(2026, 1, 1, tzinfo=UTC)
T1 = T0 + timedelta(minutes=5)
CONFIG = OperatorConfig(mlflow_tracking_uri="http://mlflow:5000", training_image="edgeml:test")
RECONCILED = {"status": {"observedGeneration": 1}}
"""An EdgeModel the operator has reconciled once (it has read its champion)."""
MODEL = {**edge_model(), **RECONCILED}
JOB_NAME = "vibration-1-train"


def body_of(
    status: dict[str, Any] | None = None, generation: int | None = 1, **spec: Any
) -> dict[str, Any]:
    body = training_run(**spec)
    body["metadata"].update(namespace="ml", uid="run-uid")
    if generation is not None:
        body["metadata"]["generation"] = generation
    if status is not None:
        body["status"] = status
    return body


def plan(
    body: dict[str, Any],
    world: TrainingWorld,
    config: OperatorConfig = CONFIG,
    now: datetime = T0,
) -> Plan[TrainingRunStatus]:
    return plan_training_run(parse(TrainingRun, TrainingRunStatus, body), world, config, now=now)


def job(**status: Any) -> dict[str, Any]:
    return {"metadata": {"name": JOB_NAME, "namespace": "ml"}, "status": status}


def job_condition(cond_type: str, reason: str = "", message: str = "") -> dict[str, Any]:
    return {"type": cond_type, "status": "True", "reason": reason, "message": message}


def pod(
    exit_code: int, message: str = "", finished: str = "2026-01-01T00:01:00Z"
) -> dict[str, Any]:
    terminated = {"exitCode": exit_code, "message": message, "finishedAt": finished}
    return {
        "status": {"containerStatuses": [{"name": "train", "state": {"terminated": terminated}}]}
    }


def oom_killed_pod() -> dict[str, Any]:
    """What the kubelet reports of a container the kernel killed for its memory."""
    found = pod(137)
    found["status"]["containerStatuses"][0]["state"]["terminated"]["reason"] = "OOMKilled"
    return found


def conditions(status: TrainingRunStatus) -> dict[str, tuple[str, str]]:
    return {c.type: (c.status, c.reason) for c in status.conditions}


def message_of(status: TrainingRunStatus) -> str:
    return next(c.message for c in status.conditions if c.type == "Ready")


SUMMARY = {
    "modelVersion": 4,
    "runId": "run-1",
    "modelUri": "models:/vibration/4",
    "metrics": {"f1": 0.9, "accuracy": 1},
}
COMPLETE = job(
    startTime="2026-01-01T00:00:10Z",
    completionTime="2026-01-01T00:02:00Z",
    succeeded=1,
    conditions=[job_condition("Complete")],
)
FAILED_JOB = job(
    failed=2,
    conditions=[job_condition("Failed", "BackoffLimitExceeded", "Job has reached the limit")],
)


def test_succeeded_is_the_condition_type() -> None:
    assert SUCCEEDED == "Succeeded"


# --- merge_training ----------------------------------------------------------------------------


def template() -> TrainingTemplate:
    return TrainingTemplate.model_validate(edge_model()["spec"]["training"])


def test_no_overrides_is_the_template() -> None:
    spec = TrainingRunSpec.model_validate(training_run()["spec"])
    assert merge_training(template(), spec) is not None
    assert merge_training(template(), spec) == template()


@pytest.mark.parametrize(
    ("overrides", "changed"),
    [
        ({"dataset": {"uri": "https://data.example/new.csv", "target": "y"}}, "dataset"),
        ({"estimator": {"class": "sklearn.linear_model.LogisticRegression"}}, "estimator"),
        ({"evaluation": {"testFraction": 0.3}}, "evaluation"),
        ({"resources": {"limits": {"cpu": "2"}}}, "resources"),
    ],
)
def test_an_override_replaces_only_the_part_it_names(
    overrides: dict[str, Any], changed: str
) -> None:
    spec = TrainingRunSpec.model_validate(training_run(overrides=overrides)["spec"])
    merged = merge_training(template(), spec)
    for part in ("dataset", "estimator", "evaluation", "resources", "backoff_limit", "volumes"):
        if part == changed:
            assert getattr(merged, part) == getattr(spec.overrides, part)
        else:
            assert getattr(merged, part) == getattr(template(), part)


# --- failure_reason / success_summary ------------------------------------------------------------


@pytest.mark.parametrize(
    ("job_", "pods", "expected"),
    [
        (
            FAILED_JOB,
            [pod(2, "DatasetNotFound: file:///data/x.csv does not exist")],
            ("DatasetNotFound", "file:///data/x.csv does not exist"),
        ),
        (
            FAILED_JOB,
            [pod(1, 'Traceback (most recent call last):\n  File "x", line 1\nValueError: bad')],
            ("ValueError", "bad"),
        ),
        (FAILED_JOB, [pod(1, "segfault\nmore")], ("TrainingFailed", "segfault")),
        (FAILED_JOB, [pod(1, "error: lower case")], ("TrainingFailed", "error: lower case")),
        (FAILED_JOB, [pod(1, "Not A Reason: x")], ("TrainingFailed", "Not A Reason: x")),
        (FAILED_JOB, [pod(1, "x" * 600)], ("TrainingFailed", "x" * 500)),
        (
            FAILED_JOB,
            [pod(137, "")],
            ("BackoffLimitExceeded", "Job has reached the limit (exit code 137)"),
        ),
        (FAILED_JOB, [], ("BackoffLimitExceeded", "Job has reached the limit")),
        (
            FAILED_JOB,
            [oom_killed_pod()],
            (
                "OOMKilled",
                "the training container exceeded its memory limit and was killed (exit code "
                "137); raise spec.training.resources.limits.memory or train on fewer rows",
            ),
        ),
        (job(failed=1), [], ("TrainingFailed", "the training Job failed")),
        (
            FAILED_JOB,
            [
                pod(3, "RegistryUnavailable: first try", "2026-01-01T00:01:00Z"),
                pod(2, "InvalidParams: last try", "2026-01-01T00:03:00Z"),
                pod(0, "{}", "2026-01-01T00:04:00Z"),
            ],
            ("InvalidParams", "last try"),
        ),
        (
            FAILED_JOB,
            [
                {
                    "status": {
                        "containerStatuses": [
                            {
                                "name": "sidecar",
                                "state": {"terminated": {"exitCode": 1, "message": "Oops: x"}},
                            }
                        ]
                    }
                }
            ],
            ("BackoffLimitExceeded", "Job has reached the limit"),
        ),
    ],
)
def test_failure_reason(
    job_: dict[str, Any], pods: list[dict[str, Any]], expected: tuple[str, str]
) -> None:
    assert failure_reason(job_, pods) == expected


@pytest.mark.parametrize(
    ("pods", "expected"),
    [
        ([pod(0, json.dumps(SUMMARY))], SUMMARY),
        ([pod(0, "log line\n" + json.dumps(SUMMARY) + "\n")], SUMMARY),
        ([], None),
        ([pod(2, json.dumps(SUMMARY))], None),
        ([pod(0, "not json")], None),
        ([pod(0, "")], None),
        ([pod(0, "[1, 2]")], None),
        (
            [
                pod(0, json.dumps({"modelVersion": 1}), "2026-01-01T00:01:00Z"),
                pod(0, json.dumps({"modelVersion": 2}), "2026-01-01T00:02:00Z"),
            ],
            {"modelVersion": 2},
        ),
        ([{"status": {}}, {"status": {"containerStatuses": None}}], None),
    ],
)
def test_success_summary(pods: list[dict[str, Any]], expected: dict[str, Any] | None) -> None:
    assert success_summary(pods) == expected


# --- plan_training_run ----------------------------------------------------------------------------

NO_REGISTRY = OperatorConfig()
INVALID_MODEL = edge_model(training={"dataset": {"uri": "ftp://x"}})
# id, spec changes, world, config, (phase, Ready, Succeeded, objects, events)
SCENARIOS: list[tuple[str, dict[str, Any], TrainingWorld, OperatorConfig, tuple[Any, ...]]] = [
    (
        "invalid-spec",
        {"trigger": "Cron"},
        TrainingWorld(model=MODEL),
        CONFIG,
        (
            "Failed",
            ("False", "InvalidSpec"),
            ("False", "InvalidSpec"),
            0,
            [("Warning", "InvalidSpec")],
        ),
    ),
    (
        "model-missing",
        {},
        TrainingWorld(),
        CONFIG,
        (
            "Pending",
            ("False", "ModelNotFound"),
            ("Unknown", "ModelNotFound"),
            0,
            [("Warning", "ModelNotFound")],
        ),
    ),
    (
        "model-invalid",
        {},
        TrainingWorld(model=INVALID_MODEL),
        CONFIG,
        (
            "Pending",
            ("False", "ModelInvalid"),
            ("Unknown", "ModelInvalid"),
            0,
            [("Warning", "ModelInvalid")],
        ),
    ),
    (
        "no-registry",
        {},
        TrainingWorld(model=MODEL),
        NO_REGISTRY,
        (
            "Pending",
            ("False", "RegistryNotConfigured"),
            ("Unknown", "RegistryNotConfigured"),
            0,
            [("Normal", "RegistryNotConfigured")],
        ),
    ),
    (
        "job-to-create",
        {},
        TrainingWorld(model=MODEL),
        CONFIG,
        (
            "Pending",
            ("False", "JobCreated"),
            ("Unknown", "JobCreated"),
            1,
            [("Normal", "JobCreated")],
        ),
    ),
    (
        "job-waiting-for-its-pod",
        {},
        TrainingWorld(model=MODEL, job=job()),
        CONFIG,
        (
            "Pending",
            ("False", "JobCreated"),
            ("Unknown", "JobCreated"),
            0,
            [("Normal", "JobCreated")],
        ),
    ),
    (
        "job-running",
        {},
        TrainingWorld(model=MODEL, job=job(active=1, startTime="2026-01-01T00:00:10Z")),
        CONFIG,
        ("Running", ("False", "Training"), ("Unknown", "Training"), 0, [("Normal", "Training")]),
    ),
    (
        "job-running-model-gone",
        {},
        TrainingWorld(job=job(active=1)),
        CONFIG,
        ("Running", ("False", "Training"), ("Unknown", "Training"), 0, [("Normal", "Training")]),
    ),
    (
        "job-complete",
        {},
        TrainingWorld(model=MODEL, job=COMPLETE, pods=[pod(0, json.dumps(SUMMARY))]),
        CONFIG,
        (
            "Succeeded",
            ("True", "VersionRegistered"),
            ("True", "VersionRegistered"),
            0,
            [("Normal", "VersionRegistered")],
        ),
    ),
    (
        "job-success-criteria-met",
        {},
        TrainingWorld(model=MODEL, job=job(conditions=[job_condition("SuccessCriteriaMet")])),
        CONFIG,
        (
            "Succeeded",
            ("True", "VersionRegistered"),
            ("True", "VersionRegistered"),
            0,
            [("Normal", "VersionRegistered")],
        ),
    ),
    (
        "job-failed",
        {},
        TrainingWorld(model=MODEL, job=FAILED_JOB, pods=[pod(2, "DatasetNotFound: gone")]),
        CONFIG,
        (
            "Failed",
            ("False", "DatasetNotFound"),
            ("False", "DatasetNotFound"),
            0,
            [("Warning", "DatasetNotFound")],
        ),
    ),
    (
        "job-failure-target",
        {},
        TrainingWorld(
            model=MODEL, job=job(conditions=[job_condition("FailureTarget")]), pods=[pod(1, "x")]
        ),
        CONFIG,
        (
            "Failed",
            ("False", "TrainingFailed"),
            ("False", "TrainingFailed"),
            0,
            [("Warning", "TrainingFailed")],
        ),
    ),
]
IDS = [s[0] for s in SCENARIOS]


@pytest.mark.parametrize(("name", "spec", "world", "config", "expected"), SCENARIOS, ids=IDS)
def test_plan_training_run(
    name: str,
    spec: dict[str, Any],
    world: TrainingWorld,
    config: OperatorConfig,
    expected: tuple[Any, ...],
) -> None:
    phase, ready, succeeded, objects, events = expected
    result = plan(body_of(**spec), world, config)
    assert result.status.phase == phase
    assert conditions(result.status) == {"Ready": ready, "Succeeded": succeeded}
    assert len(result.objects) == objects
    assert [(e.type, e.reason) for e in result.events] == events
    assert {c.last_transition_time for c in result.status.conditions} == {T0}


@pytest.mark.parametrize(("name", "spec", "world", "config", "expected"), SCENARIOS, ids=IDS)
@pytest.mark.parametrize("generation", [None, 1, 3])
def test_observed_generation_on_status_and_conditions(
    name: str,
    spec: dict[str, Any],
    world: TrainingWorld,
    config: OperatorConfig,
    expected: tuple[Any, ...],
    generation: int | None,
) -> None:
    status = plan(body_of(generation=generation, **spec), world, config).status
    assert status.observed_generation == generation
    assert {c.observed_generation for c in status.conditions} == {generation}


@pytest.mark.parametrize(("name", "spec", "world", "config", "expected"), SCENARIOS, ids=IDS)
def test_planning_again_changes_nothing_and_posts_nothing(
    name: str,
    spec: dict[str, Any],
    world: TrainingWorld,
    config: OperatorConfig,
    expected: tuple[Any, ...],
) -> None:
    first = plan(body_of(**spec), world, config)
    second = plan(body_of(first.status.to_json(), **spec), world, config, now=T1)
    assert second.status == first.status
    assert second.events == []


@pytest.mark.parametrize(
    ("world", "config", "fragment"),
    [
        (
            TrainingWorld(),
            CONFIG,
            "EdgeModel vibration does not exist in namespace ml; the run starts when it is "
            "created.",
        ),
        (
            TrainingWorld(model=INVALID_MODEL),
            CONFIG,
            "EdgeModel vibration is invalid: spec.training.dataset.uri: String should match",
        ),
        (
            TrainingWorld(model=MODEL),
            NO_REGISTRY,
            "No MLflow tracking server is configured: set spec.registry.trackingUri",
        ),
        (TrainingWorld(model=MODEL), CONFIG, f"Created Job {JOB_NAME} to train."),
        (TrainingWorld(job=job()), CONFIG, f"Job {JOB_NAME} is waiting for its pod to start."),
        (TrainingWorld(job=job(active=1)), CONFIG, "Training."),
        (
            TrainingWorld(job=job(active=1, failed=2)),
            CONFIG,
            "Training. Attempt 3 after 2 failure(s).",
        ),
        (
            TrainingWorld(job=COMPLETE, pods=[pod(0, json.dumps(SUMMARY))]),
            CONFIG,
            "Registered version 4 of models:/vibration/4.",
        ),
        (
            TrainingWorld(job=COMPLETE),
            CONFIG,
            "The Job completed, but its summary could not be read from the pod.",
        ),
    ],
)
def test_messages_say_what_is_happening(
    world: TrainingWorld, config: OperatorConfig, fragment: str
) -> None:
    assert message_of(plan(body_of(), world, config).status).startswith(fragment)


def test_an_invalid_spec_fails_at_once_with_the_reason() -> None:
    status = plan(body_of(trigger="Cron"), TrainingWorld(model=MODEL)).status
    assert status.completion_time == T0
    assert status.failure_reason == message_of(status)
    assert status.failure_reason.startswith("spec.trigger: Input should be 'Manual'")


def test_a_new_job_is_named_for_the_run_and_recorded() -> None:
    result = plan(body_of(), TrainingWorld(model=MODEL))
    (manifest,) = result.objects
    assert manifest["kind"] == "Job"
    assert manifest["metadata"]["name"] == JOB_NAME == result.status.job
    assert manifest["metadata"]["namespace"] == "ml"
    (owner,) = manifest["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"]) == ("TrainingRun", "vibration-1", "run-uid")


@pytest.mark.parametrize(
    ("model", "config", "uri"),
    [
        (MODEL, CONFIG, "http://mlflow:5000"),
        (
            {**edge_model(registry={"trackingUri": "https://m.example"}), **RECONCILED},
            CONFIG,
            "https://m.example",
        ),
        (
            {**edge_model(registry={"trackingUri": "https://m.example"}), **RECONCILED},
            NO_REGISTRY,
            "https://m.example",
        ),
    ],
)
def test_the_models_tracking_server_wins_over_the_operators(
    model: dict[str, Any], config: OperatorConfig, uri: str
) -> None:
    (manifest,) = plan(body_of(), TrainingWorld(model=model), config).objects
    (container,) = manifest["spec"]["template"]["spec"]["containers"]
    assert {"name": "MLFLOW_TRACKING_URI", "value": uri} in container["env"]


def test_the_training_pod_gets_no_service_account_token() -> None:
    (manifest,) = plan(body_of(), TrainingWorld(model=MODEL)).objects
    assert manifest["spec"]["template"]["spec"]["automountServiceAccountToken"] is False


def test_the_job_trains_the_template_with_the_runs_overrides() -> None:
    overrides = {"evaluation": {"testFraction": 0.3, "metrics": ["f1"]}}
    (manifest,) = plan(body_of(overrides=overrides), TrainingWorld(model=MODEL)).objects
    (container,) = manifest["spec"]["template"]["spec"]["containers"]
    document = json.loads(container["args"][container["args"].index("--config-json") + 1])
    assert document["training"]["evaluation"]["testFraction"] == 0.3
    assert document["training"]["dataset"]["uri"] == "file:///data/vibration.csv"
    assert document["registeredModel"] == "vibration"
    assert document["trainingRunUid"] == "run-uid"


def test_a_completed_job_records_its_results() -> None:
    world = TrainingWorld(model=MODEL, job=COMPLETE, pods=[pod(0, json.dumps(SUMMARY))])
    status = plan(body_of(), world).status
    assert (status.model_version, status.mlflow_run_id) == (4, "run-1")
    assert status.metrics == {"f1": 0.9, "accuracy": 1.0}
    assert status.start_time == datetime(2026, 1, 1, 0, 0, 10, tzinfo=UTC)
    assert status.completion_time == datetime(2026, 1, 1, 0, 2, tzinfo=UTC)
    assert status.job == JOB_NAME


def test_a_failed_job_records_why() -> None:
    world = TrainingWorld(model=MODEL, job=FAILED_JOB, pods=[pod(2, "InvalidParams: n < 0")])
    status = plan(body_of(), world).status
    assert status.failure_reason == "InvalidParams: n < 0"
    assert status.completion_time == T0
    assert message_of(status) == "n < 0"


@pytest.mark.parametrize(
    "reason", ["DatasetNotFound", "ConversionFailed", "RegistryUnavailable", "FitFailed"]
)
def test_a_failed_run_is_a_warning(reason: str) -> None:
    running = plan(body_of(), TrainingWorld(job=job(active=1))).status
    world = TrainingWorld(job=FAILED_JOB, pods=[pod(2, f"{reason}: it broke")])
    assert plan(body_of(running.to_json()), world, now=T1).events == [
        Event("Warning", reason, "it broke")
    ]


@pytest.mark.parametrize(
    "message", ["DatasetUnreadable: bad csv", "InvalidParams: n < 0", "EmptyColumn: y", ""]
)
def test_every_failed_run_is_a_warning(message: str) -> None:
    running = plan(body_of(), TrainingWorld(job=job(active=1))).status
    world = TrainingWorld(job=FAILED_JOB, pods=[pod(2, message)])
    events = plan(body_of(running.to_json()), world, now=T1).events
    assert [e.type for e in events] == ["Warning"]


FINISHED = {
    "observedGeneration": 1,
    "phase": "Succeeded",
    "job": JOB_NAME,
    "modelVersion": 4,
    "metrics": {"f1": 0.9},
    "conditions": [
        {
            "type": t,
            "status": "True",
            "reason": "VersionRegistered",
            "message": "Registered version 4.",
            "lastTransitionTime": "2026-01-01T00:00:00Z",
            "observedGeneration": 1,
        }
        for t in ("Ready", "Succeeded")
    ],
}


@pytest.mark.parametrize("phase", ["Succeeded", "Failed"])
@pytest.mark.parametrize(
    ("spec", "world"),
    [
        ({}, TrainingWorld(model=MODEL)),
        ({}, TrainingWorld()),
        ({}, TrainingWorld(model=MODEL, job=job(active=1))),
        ({"trigger": "Cron"}, TrainingWorld(model=MODEL)),
    ],
    ids=["model", "nothing", "job-active", "invalid-spec"],
)
def test_a_finished_run_is_history(phase: str, spec: dict[str, Any], world: TrainingWorld) -> None:
    old = {**FINISHED, "phase": phase}
    result = plan(body_of(old, generation=5, **spec), world, now=T1)
    assert result.status == TrainingRunStatus.model_validate(old)
    assert result.status.observed_generation == 1  # not restamped
    assert (result.events, result.objects) == ([], [])


def test_the_model_appearing_creates_the_job_with_one_event() -> None:
    waiting = plan(body_of(), TrainingWorld(), now=T0).status
    result = plan(body_of(waiting.to_json()), TrainingWorld(model=MODEL), now=T1)
    assert [(e.type, e.reason) for e in result.events] == [("Normal", "JobCreated")]
    assert len(result.objects) == 1
    # Ready stayed False and Succeeded stayed Unknown: neither transitioned.
    assert {c.last_transition_time for c in result.status.conditions} == {T0}


def test_planning_a_started_job_is_quiet() -> None:
    world = TrainingWorld(model=MODEL, job=job(active=1, startTime="2026-01-01T00:00:10Z"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plan(body_of(), world)


def test_a_run_waits_for_its_models_first_reconcile_before_it_makes_a_job() -> None:
    """Applied together, the run could start before the EdgeModel read its champion, and
    the Job would not score the champion on its rows."""
    result = plan(body_of(), TrainingWorld(model=edge_model()))
    assert result.objects == []
    assert conditions(result.status)["Ready"] == ("False", "WaitingForModel")
    assert "score it on the same held-out rows" in result.status.conditions[0].message
    assert result.requeue_at is not None


def test_an_estimator_outside_the_allow_list_never_becomes_a_job() -> None:
    # In the model: the run waits (fixing the EdgeModel starts it).
    bad_model = {**edge_model(training={"estimator": {"class": "os.system"}}), **RECONCILED}
    waiting = plan(body_of(), TrainingWorld(model=bad_model))
    assert waiting.objects == []
    assert waiting.status.phase == "Pending"
    assert conditions(waiting.status)["Ready"] == ("False", "ModelInvalid")
    assert "module os is not in the allow-list (sklearn)" in waiting.status.conditions[0].message
    # In the run's own overrides: the run fails at once (its spec is immutable).
    override = {"overrides": {"estimator": {"class": "subprocess.Popen"}}}
    failed = plan(body_of(**override), TrainingWorld(model=MODEL))
    assert failed.objects == []
    assert failed.status.phase == "Failed"
    assert conditions(failed.status)["Succeeded"] == ("False", "InvalidSpec")
    assert failed.status.failure_reason is not None
    assert failed.status.failure_reason.startswith("spec.overrides.estimator.class: module")


def _model_with(cond_type: str, reason: str, message: str) -> dict[str, Any]:
    return {
        **MODEL,
        "status": {
            **MODEL.get("status", {}),
            "conditions": [
                {"type": cond_type, "status": "False", "reason": reason,
                 "message": message, "lastTransitionTime": "2026-01-01T00:00:00Z"}
            ],
        },
    }  # fmt: skip


@pytest.mark.parametrize(
    ("cond_type", "reason"),
    [
        ("Ready", "RegisteredModelInUse"),
        ("RegistryAvailable", "RegistryCredentialsNotFound"),
        ("RegistryAvailable", "RegistryCredentialsNotLabelled"),
        ("RegistryAvailable", "RegistryCredentialsInvalid"),
    ],
)
def test_a_run_of_a_model_that_could_not_register_its_version_makes_no_job(
    cond_type: str, reason: str
) -> None:
    """Another EdgeModel owns the registered model, or the EdgeModel's registry Secret is
    unusable: a Job now would train into someone else's model or fail at MLflow."""
    why = f"the EdgeModel's {reason} message (...)"
    result = plan(body_of(), TrainingWorld(model=_model_with(cond_type, reason, why)))
    assert result.objects == []
    assert result.status.phase == "Pending"
    assert conditions(result.status)["Ready"] == ("False", reason)
    assert conditions(result.status)["Succeeded"] == ("Unknown", reason)
    assert next(c.message for c in result.status.conditions if c.type == "Ready") == (
        f"EdgeModel vibration cannot train: {why}"
    )
    assert result.events[0].type == "Warning"


def test_a_registry_that_is_down_does_not_hold_a_run_back() -> None:
    """MLflow down is not the run's to wait for: the Job retries its own calls."""
    model = _model_with("RegistryAvailable", "RegistryUnavailable", "connection refused")
    result = plan(body_of(), TrainingWorld(model=model))
    assert [o["kind"] for o in result.objects] == ["Job"]
