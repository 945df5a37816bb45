"""The EdgeModel's steps that touch MLflow: read its versions, move the champion alias."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from edgeml.config import OperatorConfig
from edgeml.plans.common import Plan
from edgeml.plans.edgemodel import ModelWorld, plan_edge_model
from edgeml.plans.parsing import Parsed
from edgeml.plans.promotion import (
    APPROVAL_ID_TAG,
    CHAMPION,
    PROMOTED_AT_TAG,
    PROMOTED_BY_TAG,
    Decision,
)
from edgeml.registry.client import (
    RegistryUnavailableError,
    list_versions,
    set_alias,
    set_version_tag,
)


def _tracking_uri(parsed: Parsed[Any, Any], config: OperatorConfig) -> str | None:
    if parsed.obj is None:
        return None
    return parsed.obj.spec.registry.tracking_uri or config.mlflow_tracking_uri or None


def observe_model(parsed: Parsed[Any, Any], config: OperatorConfig) -> ModelWorld:
    """Read the model's registered versions; a registry outage is an observation, not a crash."""
    uri = _tracking_uri(parsed, config)
    if uri is None or parsed.obj is None:
        return ModelWorld(tracking_uri=uri)
    name = parsed.obj.spec.registry.registered_model or parsed.metadata.name
    try:
        return ModelWorld(versions=list_versions(uri, name), tracking_uri=uri)
    except RegistryUnavailableError as err:
        return ModelWorld(registry_error=str(err), tracking_uri=uri)


def act_on_model(
    parsed: Parsed[Any, Any], plan: Plan[Any], now: datetime, config: OperatorConfig
) -> Plan[Any]:
    """Carry out a promotion: tag the version (who, when, which approval), then move the alias.

    Tags first: if the alias move fails, a retry sees the same decision and repeats both.
    """
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
        set_alias(uri, name, CHAMPION, decision.version)
    except RegistryUnavailableError as err:
        return plan_edge_model(
            parsed, ModelWorld(registry_error=str(err), tracking_uri=uri), now=now
        )
    return plan
