"""The batch/v1 Job that runs `edgeml train` for one TrainingRun."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from edgeml.api.edgemodel import EdgeModelSpec, TrainingTemplate
from edgeml.config import OperatorConfig
from edgeml.objects.meta import (
    child_name,
    container_security_context,
    labels,
    owner_reference,
    pod_security_context,
    pull_secrets,
    registry_credentials_env,
)
from edgeml.objects.template import template_digest
from edgeml.objects.training_run import MODEL_LABEL, TRIGGER_ID_LABEL

# `edgeml train` exit codes: 2 = the input is wrong (retrying cannot help), 3 = something
# that may pass (registry or data server down), retried up to backoffLimit.
EXIT_BAD_INPUT = 2
EXIT_RETRYABLE = 3
RUN_LABEL = "edgeml.io/training-run"


@dataclass(frozen=True)
class TrainingInputs:
    """Everything the Job is built from, gathered by the controller."""

    run: dict[str, Any]
    """The TrainingRun object (for names, uid and owner reference)."""
    model_spec: EdgeModelSpec
    """The EdgeModel's spec."""
    training: TrainingTemplate
    """The model's training template merged with the run's overrides."""
    registered_model: str
    tracking_uri: str
    trigger: str
    reason: str | None
    trigger_id: str | None = None
    """The retrain's lineage id (the run's edgeml.io/trigger-id label)."""
    require_approval: bool = False
    champion: dict[str, Any] | None = None
    """`{"version", "sha256"}` of the champion to score on the same held-out rows."""


def job_name(run_name: str) -> str:
    """The one Job a TrainingRun owns: deterministic, so a restart finds it."""
    return child_name(run_name, "train")


def train_config(inputs: TrainingInputs, config: OperatorConfig) -> dict[str, Any]:
    """The `--config-json` document `edgeml train` reads."""
    meta = inputs.run["metadata"]
    return {
        "registeredModel": inputs.registered_model,
        "namespace": meta["namespace"],
        "trainingRun": meta["name"],
        "trainingRunUid": meta["uid"],
        "edgeModel": inputs.run["spec"]["modelRef"]["name"],
        "trigger": inputs.trigger,
        "reason": inputs.reason,
        "triggerId": inputs.trigger_id,
        "requireApproval": inputs.require_approval,
        "champion": inputs.champion,
        "image": config.training_image,
        "templateDigest": template_digest(inputs.training, config.training_image),
        "allowedModules": list(config.allowed_modules),
        "training": inputs.training.to_json(),
    }


def build_training_job(inputs: TrainingInputs, config: OperatorConfig) -> dict[str, Any]:
    """The Job manifest (for server-side apply)."""
    meta = inputs.run["metadata"]
    run_name = meta["name"]
    model_name = inputs.run["spec"]["modelRef"]["name"]
    training = inputs.training
    extra = {RUN_LABEL: run_name, MODEL_LABEL: model_name}
    if inputs.trigger_id:
        extra[TRIGGER_ID_LABEL] = inputs.trigger_id
    job_labels = labels("edgeml-training", run_name, "training", **extra)
    env: list[dict[str, Any]] = [
        {"name": "MLFLOW_TRACKING_URI", "value": inputs.tracking_uri},
        {"name": "PYTHONUNBUFFERED", "value": "1"},
    ]
    dataset_creds = training.dataset.credentials_secret_ref
    if dataset_creds is not None:
        # `edgeml train` sends it as the Authorization header of an http(s) dataset.
        env.append(
            {
                "name": "EDGEML_DATASET_AUTHORIZATION",
                "valueFrom": {
                    "secretKeyRef": {"name": dataset_creds.name, "key": dataset_creds.key}
                },
            }
        )
    s3 = training.dataset.s3
    if s3 is not None and s3.credentials_secret_ref is not None:
        # Named keys, not envFrom: the Secret cannot set any other variable of the trainer.
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
            ref: dict[str, Any] = {"name": s3.credentials_secret_ref.name, "key": key}
            if key == "AWS_SESSION_TOKEN":
                ref["optional"] = True
            env.append({"name": f"EDGEML_DATASET_{key}", "valueFrom": {"secretKeyRef": ref}})
    creds = inputs.model_spec.registry.credentials_secret_ref
    env += registry_credentials_env(creds.name if creds else None)
    resources = training.resources or config.training_resources
    container: dict[str, Any] = {
        "name": "train",
        "image": config.training_image,
        "imagePullPolicy": config.training_image_pull_policy,
        "command": ["edgeml", "train"],
        "args": ["--config-json", json.dumps(train_config(inputs, config), separators=(",", ":"))],
        "env": env,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": container_security_context(),
        "resources": resources.to_json(),
        # The root filesystem is read-only: what `edgeml train` writes (its temporary
        # directories: the ONNX export, the champion's download, the profile) goes to /tmp.
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}, *training.volume_mounts],
    }
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        # `edgeml train` never calls the Kubernetes API: it gets no token to misuse.
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "containers": [container],
        "volumes": [{"name": "tmp", "emptyDir": {}}, *training.volumes],
        "securityContext": pod_security_context(),
    }
    if config.image_pull_secrets:
        pod_spec["imagePullSecrets"] = pull_secrets(config)
    if config.training_node_selector:
        pod_spec["nodeSelector"] = dict(config.training_node_selector)
    if config.training_tolerations:
        pod_spec["tolerations"] = [t.to_json() for t in config.training_tolerations]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name(run_name),
            "namespace": meta["namespace"],
            "labels": job_labels,
            "ownerReferences": [owner_reference(inputs.run)],
        },
        "spec": {
            "backoffLimit": training.backoff_limit,
            "activeDeadlineSeconds": training.active_deadline_seconds,
            "ttlSecondsAfterFinished": config.training_ttl_seconds,
            # Bad input fails the Job at once; only what may pass is retried.
            "podFailurePolicy": {
                "rules": [
                    {
                        "action": "FailJob",
                        "onExitCodes": {
                            "containerName": "train",
                            "operator": "In",
                            "values": [EXIT_BAD_INPUT],
                        },
                    }
                ]
            },
            "template": {"metadata": {"labels": job_labels}, "spec": pod_spec},
        },
    }
