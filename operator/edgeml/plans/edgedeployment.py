"""The EdgeDeployment's status from its model reference (rollout comes with serving)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from edgeml.api.common import parse_duration
from edgeml.api.edgedeployment import EdgeDeploymentSpec, EdgeDeploymentStatus, VersionNodes
from edgeml.api.kinds import EdgeDeployment
from edgeml.plans.common import (
    INVALID_SPEC,
    READY,
    ConditionSpec,
    Plan,
    apply_conditions,
    transition_events,
)
from edgeml.plans.parsing import Parsed

PROGRESSING = "Progressing"
DEGRADED = "Degraded"


def check_edge_deployment(spec: EdgeDeploymentSpec) -> str | None:
    """What the schema cannot catch: waves that shrink, an analysis longer than its step."""
    canary = spec.strategy.canary
    if canary is None:
        return None
    last: dict[type, int] = {}
    for index, step in enumerate(canary.steps):
        if step.nodes is None:
            continue
        kind = type(step.nodes)
        size = step.nodes if isinstance(step.nodes, int) else int(step.nodes.rstrip("%"))
        if kind in last and size < last[kind]:
            return (
                f"spec.strategy.canary.steps[{index}] moves {step.nodes} nodes, fewer than an "
                "earlier step: waves only grow (nodes counts the total on the new version)"
            )
        last[kind] = size
    try:
        parse_duration(canary.progress_deadline)
        for step in canary.steps:
            if step.pause is not None and step.pause.duration is not None:
                parse_duration(step.pause.duration)
        interval = parse_duration(canary.analysis.interval) if canary.analysis else None
        analysis_steps = [
            (i, s.analysis, parse_duration(s.analysis.duration))
            for i, s in enumerate(canary.steps)
            if s.analysis is not None
        ]
    except ValueError as err:
        return f"spec.strategy.canary: {err}"
    if canary.analysis is not None and interval is not None:
        for index, step_analysis, length in analysis_steps:
            if length < interval:
                return (
                    f"spec.strategy.canary.steps[{index}].analysis.duration "
                    f"({step_analysis.duration}) is shorter than analysis.interval "
                    f"({canary.analysis.interval}), so it would never measure"
                )
    return None


def resolve_target(
    spec: EdgeDeploymentSpec, model: dict[str, Any]
) -> tuple[VersionNodes | None, str]:
    """The version the spec asks for, from the EdgeModel's status; or None and why not."""
    ref = spec.model_ref
    if ref.version is not None:
        return VersionNodes(version=ref.version), f"version {ref.version} is pinned"
    champion = (model.get("status") or {}).get("champion")
    if ref.alias == "champion":
        if not champion:
            return (
                None,
                f"EdgeModel {ref.name} has no champion yet; "
                "the rollout starts when one is promoted.",
            )
        return (
            VersionNodes(version=champion.get("version"), sha256=champion.get("sha256")),
            f"alias champion is version {champion.get('version')}",
        )
    return None, f"alias {ref.alias} is not known to EdgeModel {ref.name}"


def plan_edge_deployment(
    parsed: Parsed[EdgeDeployment, EdgeDeploymentStatus],
    model: dict[str, Any] | None,
    *,
    now: datetime,
) -> Plan[EdgeDeploymentStatus]:
    """The status an EdgeDeployment should have, given its EdgeModel (None if missing)."""
    old = parsed.status
    base = old or EdgeDeploymentStatus()
    generation = parsed.metadata.generation
    target = base.target
    error = parsed.error or (check_edge_deployment(parsed.obj.spec) if parsed.obj else None)
    if error is not None or parsed.obj is None:
        message = error or "the spec could not be read"
        phase = "Invalid"
        wanted = [
            ConditionSpec(READY, "False", INVALID_SPEC, message),
            ConditionSpec(PROGRESSING, "False", INVALID_SPEC, message),
        ]
    elif model is None:
        name = parsed.obj.spec.model_ref.name
        message = (
            f"EdgeModel {name} does not exist in namespace {parsed.metadata.namespace}; "
            "the deployment starts when it is created."
        )
        phase = "Pending"
        wanted = [
            ConditionSpec(READY, "False", "ModelNotFound", message),
            ConditionSpec(PROGRESSING, "False", "ModelNotFound", message),
        ]
    else:
        target, why = resolve_target(parsed.obj.spec, model)
        phase = "Pending"
        if target is None:
            wanted = [
                ConditionSpec(READY, "False", "NoTargetVersion", why),
                ConditionSpec(PROGRESSING, "False", "NoTargetVersion", why),
            ]
        else:
            message = f"Target is version {target.version} ({why}); waiting for the rollout."
            wanted = [
                ConditionSpec(READY, "False", "TargetResolved", message),
                ConditionSpec(PROGRESSING, "True", "TargetResolved", message),
            ]
    wanted.append(ConditionSpec(DEGRADED, "False", "AsExpected", "No node is failing."))
    status = base.model_copy(
        update={
            "observed_generation": generation,
            "phase": phase,
            "target": target,
            "conditions": apply_conditions(base.conditions, wanted, now=now, generation=generation),
        }
    )
    return Plan(status=status, events=transition_events(old, status))
