"""A TrainingRun's one Job and its status, from its EdgeModel, its Job and the Job's pods."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from edgeml.api.edgemodel import EdgeModelSpec, TrainingTemplate
from edgeml.api.kinds import TrainingRun
from edgeml.api.trainingrun import TrainingOverrides, TrainingRunSpec, TrainingRunStatus
from edgeml.config import OperatorConfig
from edgeml.objects.training_job import TrainingInputs, build_training_job, job_name
from edgeml.objects.training_run import TRIGGER_ID_LABEL
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
from edgeml.plans.estimators import check_template
from edgeml.plans.parsing import Parsed, describe_errors
from edgeml.registry.credentials import PROBLEMS as CREDENTIAL_PROBLEMS

SUCCEEDED = "Succeeded"
FINISHED = ("Succeeded", "Failed")


@dataclass(frozen=True)
class TrainingWorld:
    """What exists around a TrainingRun."""

    model: dict[str, Any] | None = None
    job: dict[str, Any] | None = None
    pods: list[dict[str, Any]] = field(default_factory=list)


def _template_problem(
    model: EdgeModelSpec, run: TrainingRunSpec, config: OperatorConfig
) -> str | None:
    """Why the run's overrides make a template no Job can train, else None."""
    if run.overrides is None:
        return None
    return check_template(
        merge_training(model.training, run),
        config.allowed_modules,
        "spec.overrides",
        config.training_volume_types,
    )


def _model_blocks(model: dict[str, Any]) -> tuple[str, str] | None:
    """(reason, message) of the EdgeModel when a Job trained now could not work: its
    registered model belongs to another EdgeModel, or its registry Secret is unusable."""
    for condition in (model.get("status") or {}).get("conditions") or []:
        kind, reason = condition.get("type"), str(condition.get("reason"))
        if (kind, reason) == (READY, REGISTERED_MODEL_IN_USE) or (
            kind == REGISTRY_AVAILABLE and reason in CREDENTIAL_PROBLEMS
        ):
            return reason, str(condition.get("message") or reason)
    return None


MODEL_WAIT = timedelta(seconds=2)
"""How soon a run waiting for its EdgeModel's first reconcile looks again."""


def merge_training(template: TrainingTemplate, spec: TrainingRunSpec) -> TrainingTemplate:
    """The model's training template with the run's overrides in place of the parts they name."""
    return merge_overrides(template, spec.overrides)


def merge_overrides(
    template: TrainingTemplate, overrides: TrainingOverrides | None
) -> TrainingTemplate:
    """A training template with `overrides` in place of the parts they name."""
    if overrides is None:
        return template
    changes = {
        key: value
        for key, value in (
            ("dataset", overrides.dataset),
            ("estimator", overrides.estimator),
            ("evaluation", overrides.evaluation),
            ("resources", overrides.resources),
        )
        if value is not None
    }
    return template.model_copy(update=changes)


def _time(text: str | None) -> datetime | None:
    """An RFC 3339 timestamp from the API server."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def _condition(job: dict[str, Any], cond_type: str) -> dict[str, Any] | None:
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("type") == cond_type and cond.get("status") == "True":
            return dict(cond)
    return None


def _terminated(pod: dict[str, Any]) -> dict[str, Any] | None:
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        if status.get("name") == "train":
            state = status.get("state") or {}
            return state.get("terminated")
    return None


def _newest_terminated(pods: list[dict[str, Any]], exit_zero: bool) -> dict[str, Any] | None:
    found = [
        t
        for t in (_terminated(p) for p in pods)
        if t is not None and (t.get("exitCode") == 0) == exit_zero
    ]
    found.sort(key=lambda t: t.get("finishedAt") or "")
    return found[-1] if found else None


def failure_reason(job: dict[str, Any], pods: list[dict[str, Any]]) -> tuple[str, str]:
    """The (CamelCase reason, one-line message) of a failed Job, from its pods' termination
    messages (what `edgeml train` wrote) or else the Job's own condition."""
    terminated = _newest_terminated(pods, exit_zero=False)
    message = ((terminated or {}).get("message") or "").strip()
    if (terminated or {}).get("reason") == "OOMKilled":
        # The kernel killed it: `edgeml train` had no chance to write a message.
        return "OOMKilled", (
            "the training container exceeded its memory limit and was killed "
            f"(exit code {terminated.get('exitCode') if terminated else 137}); raise "
            "spec.training.resources.limits.memory or train on fewer rows"
        )
    if message:
        first = message.splitlines()[-1] if "Traceback" in message else message.splitlines()[0]
        reason, sep, detail = first.partition(": ")
        if sep and reason.isidentifier() and reason[:1].isupper():
            return reason, detail.strip()
        return "TrainingFailed", first[:500]
    failed = _condition(job, "Failed") or {}
    reason = failed.get("reason") or "TrainingFailed"
    detail = failed.get("message") or "the training Job failed"
    if terminated is not None and not message:
        detail += f" (exit code {terminated.get('exitCode')})"
    return str(reason), str(detail)


def success_summary(pods: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The JSON summary `edgeml train` wrote on success, or None if none can be read."""
    terminated = _newest_terminated(pods, exit_zero=True)
    if terminated is None:
        return None
    try:
        summary = json.loads((terminated.get("message") or "").strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None
    return summary if isinstance(summary, dict) else None


def champion_reference(model: dict[str, Any] | None) -> dict[str, Any] | None:
    """The champion the Job scores on its held-out rows, as the EdgeModel lists it."""
    champion = ((model or {}).get("status") or {}).get("champion") or {}
    version = champion.get("version")
    if not isinstance(version, int) or version < 1:
        return None
    return {"version": version, "sha256": champion.get("sha256")}


def _model_spec(model: dict[str, Any]) -> EdgeModelSpec | str:
    try:
        return EdgeModelSpec.model_validate(model.get("spec") or {})
    except ValidationError as err:
        return describe_errors(err)


def plan_training_run(
    parsed: Parsed[TrainingRun, TrainingRunStatus],
    world: TrainingWorld,
    config: OperatorConfig,
    *,
    now: datetime,
) -> Plan[TrainingRunStatus]:
    """The Job a TrainingRun should have, and the status it should show."""
    old = parsed.status
    base = old or TrainingRunStatus()
    generation = parsed.metadata.generation
    namespace = parsed.metadata.namespace
    objects: list[dict[str, Any]] = []
    update: dict[str, Any] = {}
    requeue_at: datetime | None = None
    if base.phase in FINISHED:
        return Plan(status=base)  # a finished run is history: nothing changes it
    if parsed.error is not None or parsed.obj is None:
        message = parsed.error or "the spec could not be read"
        phase = "Failed"
        wanted = [
            ConditionSpec(READY, "False", INVALID_SPEC, message),
            ConditionSpec(SUCCEEDED, "False", INVALID_SPEC, message),
        ]
        update["completion_time"] = now
        update["failure_reason"] = message
    elif world.job is None and world.model is None:
        name = parsed.obj.spec.model_ref.name
        phase = "Pending"
        message = (
            f"EdgeModel {name} does not exist in namespace {namespace}; the run starts when it "
            "is created."
        )
        wanted = [
            ConditionSpec(READY, "False", "ModelNotFound", message),
            ConditionSpec(SUCCEEDED, "Unknown", "ModelNotFound", message),
        ]
    elif world.job is None:
        assert world.model is not None
        spec = _model_spec(world.model)
        tracking_uri = (
            spec.registry.tracking_uri if isinstance(spec, EdgeModelSpec) else None
        ) or config.mlflow_tracking_uri
        if isinstance(spec, EdgeModelSpec) and (
            bad := check_template(
                spec.training,
                config.allowed_modules,
                "spec.training",
                config.training_volume_types,
            )
        ):
            spec = bad  # the model's own template: fixing the EdgeModel starts the run
        if isinstance(spec, str):
            phase = "Pending"
            message = f"EdgeModel {parsed.obj.spec.model_ref.name} is invalid: {spec}"
            wanted = [
                ConditionSpec(READY, "False", "ModelInvalid", message),
                ConditionSpec(SUCCEEDED, "Unknown", "ModelInvalid", message),
            ]
        elif not tracking_uri:
            phase = "Pending"
            message = (
                "No MLflow tracking server is configured: set spec.registry.trackingUri on the "
                "EdgeModel or mlflow.trackingUri in the operator's Helm values."
            )
            wanted = [
                ConditionSpec(READY, "False", "RegistryNotConfigured", message),
                ConditionSpec(SUCCEEDED, "Unknown", "RegistryNotConfigured", message),
            ]
        elif (problem := _template_problem(spec, parsed.obj.spec, config)) is not None:
            # The run's own overrides cannot train: its spec is immutable, so it fails.
            phase = "Failed"
            wanted = [
                ConditionSpec(READY, "False", INVALID_SPEC, problem),
                ConditionSpec(SUCCEEDED, "False", INVALID_SPEC, problem),
            ]
            update["completion_time"] = now
            update["failure_reason"] = problem
        elif (blocked := _model_blocks(world.model)) is not None:
            # Training now would add a version to another EdgeModel's registered model, or
            # fail at MLflow without the credentials the EdgeModel names.
            phase = "Pending"
            reason, why = blocked
            message = f"EdgeModel {parsed.obj.spec.model_ref.name} cannot train: {why}"
            wanted = [
                ConditionSpec(READY, "False", reason, message),
                ConditionSpec(SUCCEEDED, "Unknown", reason, message),
            ]
        elif ((world.model.get("status") or {}).get("observedGeneration")) is None:
            # An EdgeModel applied together with the run has not read its champion yet: a
            # Job made now would not score the champion on its rows (no fair comparison).
            phase = "Pending"
            message = (
                f"Waiting for EdgeModel {parsed.obj.spec.model_ref.name} to read its champion "
                "from the registry, so the run can score it on the same held-out rows."
            )
            wanted = [
                ConditionSpec(READY, "False", "WaitingForModel", message),
                ConditionSpec(SUCCEEDED, "Unknown", "WaitingForModel", message),
            ]
            requeue_at = now + MODEL_WAIT
        else:
            run_spec = parsed.obj.spec
            inputs = TrainingInputs(
                run={
                    "apiVersion": parsed.obj.api_version,
                    "kind": parsed.obj.kind,
                    "metadata": {
                        "name": parsed.metadata.name,
                        "namespace": namespace,
                        "uid": parsed.metadata.uid,
                    },
                    "spec": run_spec.to_json(),
                },
                model_spec=spec,
                training=merge_training(spec.training, run_spec),
                registered_model=spec.registry.registered_model or run_spec.model_ref.name,
                tracking_uri=tracking_uri,
                trigger=run_spec.trigger,
                reason=run_spec.reason,
                trigger_id=parsed.metadata.labels.get(TRIGGER_ID_LABEL),
                require_approval=run_spec.require_approval,
                champion=champion_reference(world.model),
            )
            objects.append(build_training_job(inputs, config))
            phase = "Pending"
            message = f"Created Job {job_name(parsed.metadata.name)} to train."
            wanted = [
                ConditionSpec(READY, "False", "JobCreated", message),
                ConditionSpec(SUCCEEDED, "Unknown", "JobCreated", message),
            ]
            update["job"] = job_name(parsed.metadata.name)
    else:
        job = world.job
        job_status = job.get("status") or {}
        update["job"] = job["metadata"]["name"]
        if job_status.get("startTime"):
            update["start_time"] = _time(job_status["startTime"])
        if _condition(job, "Complete") or _condition(job, "SuccessCriteriaMet"):
            summary = success_summary(world.pods) or {}
            version = summary.get("modelVersion")
            phase = "Succeeded"
            update.update(
                completion_time=_time(job_status.get("completionTime")) or now,
                mlflow_run_id=summary.get("runId"),
                model_version=version,
                metrics={k: float(v) for k, v in (summary.get("metrics") or {}).items()},
            )
            message = (
                f"Registered version {version} of {summary.get('modelUri', 'the model')}."
                if version
                else "The Job completed, but its summary could not be read from the pod."
            )
            wanted = [
                ConditionSpec(READY, "True", "VersionRegistered", message),
                ConditionSpec(SUCCEEDED, "True", "VersionRegistered", message),
            ]
        elif _condition(job, "Failed") or _condition(job, "FailureTarget"):
            reason, detail = failure_reason(job, world.pods)
            phase = "Failed"
            update.update(completion_time=now, failure_reason=f"{reason}: {detail}")
            wanted = [
                ConditionSpec(READY, "False", reason, detail),
                ConditionSpec(SUCCEEDED, "False", reason, detail),
            ]
        elif job_status.get("active"):
            phase = "Running"
            retries = int(job_status.get("failed") or 0)
            message = "Training." + (
                f" Attempt {retries + 1} after {retries} failure(s)." if retries else ""
            )
            wanted = [
                ConditionSpec(READY, "False", "Training", message),
                ConditionSpec(SUCCEEDED, "Unknown", "Training", message),
            ]
        else:
            phase = "Pending"
            message = f"Job {job['metadata']['name']} is waiting for its pod to start."
            wanted = [
                ConditionSpec(READY, "False", "JobCreated", message),
                ConditionSpec(SUCCEEDED, "Unknown", "JobCreated", message),
            ]
    status = base.model_copy(
        update={
            "observed_generation": generation,
            "phase": phase,
            "conditions": apply_conditions(base.conditions, wanted, now=now, generation=generation),
            **update,
        }
    )
    return Plan(
        status=status,
        objects=objects,
        events=transition_events(old, status),
        requeue_at=requeue_at,
    )
