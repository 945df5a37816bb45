"""The TrainingRun controller's read: its EdgeModel, its Job and the Job's pods.

Everything else about a run (whether to create the Job, what its outcome means, the
version it registered) is decided by plans/trainingrun.py over what is read here.
"""

from __future__ import annotations

from typing import Any

from edgeml.kube.reads import get_custom, get_job, list_pods
from edgeml.objects.training_job import job_name
from edgeml.plans.parsing import Parsed
from edgeml.plans.trainingrun import TrainingWorld


def _model_of(parsed: Parsed[Any, Any]) -> dict[str, Any] | None:
    if parsed.obj is None:
        return None
    return get_custom("edgemodels", parsed.metadata.namespace or "", parsed.obj.spec.model_ref.name)


def observe_run(parsed: Parsed[Any, Any]) -> TrainingWorld:
    """What a run's plan needs; nothing once it has finished (its status holds the rest)."""
    if parsed.obj is None or (parsed.status and parsed.status.phase in ("Succeeded", "Failed")):
        return TrainingWorld()
    namespace = parsed.metadata.namespace or ""
    name = job_name(parsed.metadata.name)
    job = get_job(namespace, name)
    pods = list_pods(namespace, f"job-name={name}") if job is not None else []
    return TrainingWorld(model=_model_of(parsed), job=job, pods=pods)
