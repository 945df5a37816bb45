"""The EdgeModel controller: read its registered versions from MLflow, move the champion alias."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime
from typing import Any

from edgeml.api.events import Event
from edgeml.config import OperatorConfig
from edgeml.kube.apply import CreateRefusedError, create_custom
from edgeml.plans.common import Plan
from edgeml.plans.edgemodel import ClaimModel, ModelWorld, RecordRejection, plan_edge_model
from edgeml.plans.parsing import Parsed
from edgeml.plans.promotion import (
    APPROVAL_ID_TAG,
    APPROVED_OVER_TAG,
    CHAMPION,
    PROMOTED_AT_TAG,
    PROMOTED_BY_TAG,
    Decision,
)
from edgeml.plans.retraining import CreateRun
from edgeml.registry.client import (
    RegistryUnavailableError,
    read_model,
    set_alias,
    set_model_tag,
    set_version_tag,
)
from edgeml.registry.versions import OWNER_TAG, PROMOTION_MESSAGE_TAG, PROMOTION_TAG

log = logging.getLogger(__name__)


def _tracking_uri(parsed: Parsed[Any, Any], config: OperatorConfig) -> str | None:
    if parsed.obj is None:
        return None
    return parsed.obj.spec.registry.tracking_uri or config.mlflow_tracking_uri or None


def observe_model(parsed: Parsed[Any, Any], config: OperatorConfig) -> ModelWorld:
    """Read the model's registered versions; a registry outage is an observation, not a crash."""
    uri = _tracking_uri(parsed, config)
    world = ModelWorld(
        tracking_uri=uri,
        allowed_modules=config.allowed_modules,
        allowed_volume_types=config.training_volume_types,
    )
    if uri is None or parsed.obj is None:
        return world
    name = parsed.obj.spec.registry.registered_model or parsed.metadata.name
    try:
        model = read_model(uri, name)
    except RegistryUnavailableError as err:
        return replace(world, registry_error=str(err))
    if model is None:
        return world
    return replace(world, versions=model.versions, owner=model.tags.get(OWNER_TAG))


def _create_retrain(parsed: Parsed[Any, Any], plan: Plan[Any]) -> Plan[Any]:
    """Create the TrainingRun an `edgeml retrain` request asked for (once: by its name)."""
    creates = [a for a in plan.actions if isinstance(a, CreateRun)]
    if not creates:
        return plan
    name = creates[0].manifest["metadata"]["name"]
    who = f"{parsed.metadata.namespace}/{parsed.metadata.name}"
    try:
        created = create_custom("trainingruns", creates[0].manifest)
    except CreateRefusedError as err:
        message = f"Could not create TrainingRun {name}: {err}"
        log.warning("%s: %s", who, message)
        retrain = plan.status.retrain.model_copy(update={"message": message, "training_run": None})
        events = [e for e in plan.events if e.reason != "RetrainRequested"]
        return replace(
            plan,
            status=plan.status.model_copy(update={"retrain": retrain}),
            events=[*events, Event("Warning", "RetrainRequestFailed", message)],
        )
    log.info("%s: %s TrainingRun %s", who, "created" if created else "found existing", name)
    return plan


def _claim(uri: str, name: str, action: ClaimModel) -> None:
    """Tag the registered model as the EdgeModel's (a failure is retried next reconcile)."""
    try:
        set_model_tag(uri, name, OWNER_TAG, action.owner)
        log.info("%s: claimed registered model %s", action.owner, name)
    except RegistryUnavailableError as err:
        log.warning("%s: could not claim registered model %s: %s", action.owner, name, err)


def _record_rejection(uri: str, name: str, action: RecordRejection) -> None:
    """The registry keeps why a version was refused (a failure is retried next reconcile)."""
    try:
        set_version_tag(uri, name, action.version, PROMOTION_MESSAGE_TAG, action.message[:5000])
        set_version_tag(uri, name, action.version, PROMOTION_TAG, "Rejected")
    except RegistryUnavailableError as err:
        log.warning(
            "could not record the rejection of %s version %d: %s", name, action.version, err
        )


def act_on_model(
    parsed: Parsed[Any, Any], plan: Plan[Any], now: datetime, config: OperatorConfig
) -> Plan[Any]:
    """Create a requested retrain, record a rejection, or carry out a promotion: tag the
    version (who, when, which approval), then move the alias.

    Tags first: if the alias move fails, a retry sees the same decision and repeats both.
    """
    plan = _create_retrain(parsed, plan)
    uri = _tracking_uri(parsed, config)
    if parsed.obj is not None and uri is not None:
        name = parsed.obj.spec.registry.registered_model or parsed.metadata.name
        for action in plan.actions:
            if isinstance(action, ClaimModel):
                _claim(uri, name, action)
            if isinstance(action, RecordRejection):
                _record_rejection(uri, name, action)
    decisions = [a for a in plan.actions if isinstance(a, Decision)]
    if not decisions or parsed.obj is None:
        return plan
    decision = decisions[0]
    assert decision.version is not None
    uri = _tracking_uri(parsed, config)
    name = parsed.obj.spec.registry.registered_model or parsed.metadata.name
    if uri is None:
        return plan
    try:
        set_version_tag(uri, name, decision.version, PROMOTED_BY_TAG, decision.by or "auto")
        set_version_tag(uri, name, decision.version, PROMOTED_AT_TAG, now.isoformat())
        if decision.approval_id and decision.by != "auto":
            set_version_tag(uri, name, decision.version, APPROVAL_ID_TAG, decision.approval_id)
        if decision.approved_over is not None:
            over = str(decision.approved_over)
            set_version_tag(uri, name, decision.version, APPROVED_OVER_TAG, over)
        set_alias(uri, name, CHAMPION, decision.version)
    except RegistryUnavailableError as err:
        world = ModelWorld(
            registry_error=str(err),
            tracking_uri=uri,
            allowed_modules=config.allowed_modules,
            allowed_volume_types=config.training_volume_types,
        )
        return plan_edge_model(parsed, world, now=now)
    return plan
