"""Registration of every kind's handlers with kopf: react to each change, resync on a timer."""

from __future__ import annotations

from typing import Any

import kopf

from edgeml.api.common import GROUP, VERSION
from edgeml.api.kinds import KINDS, KindInfo
from edgeml.controllers.reconcile import Controller, reconcile
from edgeml.kube.reads import get_custom
from edgeml.metrics import PHASES
from edgeml.plans.driftpolicy import plan_drift_policy
from edgeml.plans.edgedeployment import plan_edge_deployment
from edgeml.plans.edgemodel import plan_edge_model
from edgeml.plans.parsing import Parsed
from edgeml.plans.trainingrun import plan_training_run

# Level-triggered: every watch event reconciles, and so does this timer, which catches
# what no event announces (a referenced object that appeared, a registry that moved).
RESYNC_SECONDS = 15.0


def _model_of(parsed: Parsed[Any, Any]) -> dict[str, Any] | None:
    if parsed.obj is None:
        return None
    return get_custom("edgemodels", parsed.metadata.namespace or "", parsed.obj.spec.model_ref.name)


def _deployment_of(parsed: Parsed[Any, Any]) -> dict[str, Any] | None:
    if parsed.obj is None:
        return None
    name = parsed.obj.spec.deployment_ref.name
    return get_custom("edgedeployments", parsed.metadata.namespace or "", name)


def _info(kind: str) -> KindInfo:
    return next(k for k in KINDS if k.kind == kind)


CONTROLLERS = (
    Controller(
        _info("EdgeModel"), lambda parsed: None, lambda p, _w, now: plan_edge_model(p, now=now)
    ),
    Controller(_info("TrainingRun"), _model_of, lambda p, w, now: plan_training_run(p, w, now=now)),
    Controller(
        _info("EdgeDeployment"), _model_of, lambda p, w, now: plan_edge_deployment(p, w, now=now)
    ),
    Controller(
        _info("DriftPolicy"), _deployment_of, lambda p, w, now: plan_drift_policy(p, w, now=now)
    ),
)


def register(ctrl: Controller) -> None:
    """Register the event, timer and delete handlers of one kind."""
    plural = ctrl.info.plural

    @kopf.on.event(GROUP, VERSION, plural, id=f"{plural}-event")
    def on_event(
        type: str | None, body: kopf.Body, patch: kopf.Patch, logger: Any, **_: Any
    ) -> None:
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
