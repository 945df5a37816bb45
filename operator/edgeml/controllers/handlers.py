"""Registration of every kind's handlers with kopf: react to each change, resync on a timer."""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any, cast

import kopf

from edgeml.api.common import GROUP, VERSION
from edgeml.api.kinds import KINDS, KindInfo
from edgeml.config import OperatorConfig
from edgeml.controllers.reconcile import Controller, reconcile
from edgeml.controllers.registry import act_on_model, observe_model
from edgeml.kube.reads import get_custom, get_job, list_pods
from edgeml.metrics import PHASES
from edgeml.objects.meta import MANAGED_BY
from edgeml.objects.training_job import RUN_LABEL, job_name
from edgeml.plans.driftpolicy import plan_drift_policy
from edgeml.plans.edgedeployment import plan_edge_deployment
from edgeml.plans.edgemodel import plan_edge_model
from edgeml.plans.parsing import Parsed
from edgeml.plans.trainingrun import TrainingWorld, plan_training_run

# Level-triggered: every watch event reconciles, and so does this timer, which catches
# what no event announces (a referenced object that appeared, a registry that moved).
RESYNC_SECONDS = 15.0


@functools.cache
def config() -> OperatorConfig:
    """The operator's configuration, read once."""
    return OperatorConfig.from_env()


def _model_of(parsed: Parsed[Any, Any]) -> dict[str, Any] | None:
    if parsed.obj is None:
        return None
    return get_custom("edgemodels", parsed.metadata.namespace or "", parsed.obj.spec.model_ref.name)


def _deployment_of(parsed: Parsed[Any, Any]) -> dict[str, Any] | None:
    if parsed.obj is None:
        return None
    name = parsed.obj.spec.deployment_ref.name
    return get_custom("edgedeployments", parsed.metadata.namespace or "", name)


def _training_world(parsed: Parsed[Any, Any]) -> TrainingWorld:
    if parsed.obj is None or (parsed.status and parsed.status.phase in ("Succeeded", "Failed")):
        return TrainingWorld()
    namespace = parsed.metadata.namespace or ""
    name = job_name(parsed.metadata.name)
    job = get_job(namespace, name)
    pods = list_pods(namespace, f"job-name={name}") if job is not None else []
    return TrainingWorld(model=_model_of(parsed), job=job, pods=pods)


def _plan_run(parsed: Parsed[Any, Any], world: TrainingWorld, now: datetime) -> Any:
    return plan_training_run(parsed, world, config(), now=now)


def _info(kind: str) -> KindInfo:
    return next(k for k in KINDS if k.kind == kind)


CONTROLLERS: tuple[Controller, ...] = (
    Controller(
        _info("EdgeModel"),
        lambda parsed: observe_model(parsed, config()),
        lambda p, w, now: plan_edge_model(p, w, now=now),
        lambda parsed, plan, now: act_on_model(parsed, plan, now, config()),
    ),
    Controller(_info("TrainingRun"), _training_world, _plan_run),
    Controller(
        _info("EdgeDeployment"), _model_of, lambda p, w, now: plan_edge_deployment(p, w, now=now)
    ),
    Controller(
        _info("DriftPolicy"), _deployment_of, lambda p, w, now: plan_drift_policy(p, w, now=now)
    ),
)


BY_KIND = {ctrl.info.kind: ctrl for ctrl in CONTROLLERS}


def register(ctrl: Controller) -> None:
    """Register the event, timer and delete handlers of one kind."""
    plural = ctrl.info.plural

    @kopf.on.event(GROUP, VERSION, plural, id=f"{plural}-event")
    def on_event(type: str | None, body: kopf.Body, logger: Any, **_: Any) -> None:
        if type == "DELETED":
            PHASES.observe(ctrl.info.kind, f"{body.metadata.namespace}/{body.metadata.name}", None)
            return
        if body.metadata.get("deletionTimestamp"):
            return
        reconcile(ctrl, body, logger)

    @kopf.timer(GROUP, VERSION, plural, id=f"{plural}-resync", interval=RESYNC_SECONDS, idle=None)
    def on_timer(body: kopf.Body, logger: Any, **_: Any) -> None:
        reconcile(ctrl, body, logger)

    @kopf.on.delete(GROUP, VERSION, plural, id=f"{plural}-delete")
    def on_delete(body: kopf.Body, logger: Any, **_: Any) -> None:
        # Children go with their owner references; nothing outside the cluster to clean yet.
        logger.info(f"{ctrl.info.kind} deleted")


for _ctrl in CONTROLLERS:
    register(_ctrl)


@kopf.on.event(
    "batch",
    "v1",
    "jobs",
    labels={RUN_LABEL: kopf.PRESENT, "app.kubernetes.io/managed-by": MANAGED_BY},
)
def on_training_job(body: kopf.Body, logger: Any, **_: Any) -> None:
    """A training Job changed: reconcile its TrainingRun now rather than at the next resync."""
    namespace = body.metadata.namespace or ""
    run = get_custom("trainingruns", namespace, body.metadata.labels[RUN_LABEL])
    if run is None or (run.get("metadata") or {}).get("deletionTimestamp"):
        return
    reconcile(BY_KIND["TrainingRun"], kopf.Body(cast(kopf.RawBody, run)), logger)
