"""The EdgeModel controller: read its registered versions from MLflow, move the champion alias."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime
from typing import Any

from edgeml.api.events import Event
from edgeml.config import OperatorConfig
from edgeml.kube.apply import CreateRefusedError, create_custom
from edgeml.kube.reads import get_secret
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
from edgeml.registry.credentials import RegistryAccess, registry_access
from edgeml.registry.versions import OWNER_TAG, PROMOTION_MESSAGE_TAG, PROMOTION_TAG

log = logging.getLogger(__name__)


def _tracking_uri(parsed: Parsed[Any, Any], config: OperatorConfig) -> str | None:
    if parsed.obj is None:
        return None
    return parsed.obj.spec.registry.tracking_uri or config.mlflow_tracking_uri or None


def access_for(namespace: str, secret: str | None) -> RegistryAccess:
    """How the operator may call MLflow for an EdgeModel whose registry names `secret`
    (None: it names none, and the operator's own credentials are used)."""
    return registry_access(secret, get_secret(namespace, secret) if secret else None)


def _access(parsed: Parsed[Any, Any]) -> RegistryAccess:
    ref = parsed.obj.spec.registry.credentials_secret_ref if parsed.obj else None
    return access_for(parsed.metadata.namespace or "", ref.name if ref else None)


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
    access = _access(parsed)
    if access.problem is not None:
        # Not read with the operator's own credentials instead: they are not the author's.
        return replace(world, credentials_problem=access.problem)
    try:
        model = read_model(uri, name, authorization=access.authorization)
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


def _claim(uri: str, name: str, action: ClaimModel, authorization: str | None) -> None:
    """Tag the registered model as the EdgeModel's (a failure is retried next reconcile)."""
    try:
        set_model_tag(uri, name, OWNER_TAG, action.owner, authorization=authorization)
        log.info("%s: claimed registered model %s", action.owner, name)
    except RegistryUnavailableError as err:
        log.warning("%s: could not claim registered model %s: %s", action.owner, name, err)


def _record_rejection(
    uri: str, name: str, action: RecordRejection, authorization: str | None
) -> None:
    """The registry keeps why a version was refused (a failure is retried next reconcile)."""
    auth = {"authorization": authorization}
    try:
        message = action.message[:5000]
        set_version_tag(uri, name, action.version, PROMOTION_MESSAGE_TAG, message, **auth)
        set_version_tag(uri, name, action.version, PROMOTION_TAG, "Rejected", **auth)
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
    registry_actions = [
        a for a in plan.actions if isinstance(a, ClaimModel | RecordRejection | Decision)
    ]
    if parsed.obj is None or uri is None or not registry_actions:
        return plan
    # Read again rather than carried from the observation: a Secret may rotate between.
    access = _access(parsed)
    if access.problem is not None:
        # Gone since the observation: nothing is written, and the status must not say
        # it was (the plan's status shows its promotion done).
        world = ModelWorld(
            credentials_problem=access.problem,
            tracking_uri=uri,
            allowed_modules=config.allowed_modules,
            allowed_volume_types=config.training_volume_types,
        )
        return plan_edge_model(parsed, world, now=now)
    authorization = access.authorization
    name = parsed.obj.spec.registry.registered_model or parsed.metadata.name
    for action in registry_actions:
        if isinstance(action, ClaimModel):
            _claim(uri, name, action, authorization)
        if isinstance(action, RecordRejection):
            _record_rejection(uri, name, action, authorization)
    decisions = [a for a in registry_actions if isinstance(a, Decision)]
    if not decisions:
        return plan
    decision = decisions[0]
    assert decision.version is not None
    version, auth = decision.version, {"authorization": authorization}
    try:
        set_version_tag(uri, name, version, PROMOTED_BY_TAG, decision.by or "auto", **auth)
        set_version_tag(uri, name, version, PROMOTED_AT_TAG, now.isoformat(), **auth)
        if decision.approval_id and decision.by != "auto":
            set_version_tag(uri, name, version, APPROVAL_ID_TAG, decision.approval_id, **auth)
        if decision.approved_over is not None:
            over = str(decision.approved_over)
            set_version_tag(uri, name, version, APPROVED_OVER_TAG, over, **auth)
        set_alias(uri, name, CHAMPION, version, **auth)
    except RegistryUnavailableError as err:
        world = ModelWorld(
            registry_error=str(err),
            tracking_uri=uri,
            allowed_modules=config.allowed_modules,
            allowed_volume_types=config.training_volume_types,
        )
        return plan_edge_model(parsed, world, now=now)
    return plan
