"""The DriftPolicy's status from its deployment reference (evaluation comes with drift)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from edgeml.api.common import check_cron
from edgeml.api.driftpolicy import DriftPolicySpec, DriftPolicyStatus
from edgeml.api.kinds import DriftPolicy
from edgeml.plans.common import (
    INVALID_SPEC,
    READY,
    ConditionSpec,
    Plan,
    apply_conditions,
    transition_events,
)
from edgeml.plans.parsing import Parsed

DRIFTED = "Drifted"


def check_drift_policy(spec: DriftPolicySpec) -> str | None:
    """What the schema cannot catch: numbers out of range in the cron schedule."""
    if spec.schedule is not None:
        problem = check_cron(spec.schedule)
        if problem is not None:
            return f"spec.schedule: {problem}"
    return None


def plan_drift_policy(
    parsed: Parsed[DriftPolicy, DriftPolicyStatus],
    deployment: dict[str, Any] | None,
    *,
    now: datetime,
) -> Plan[DriftPolicyStatus]:
    """The status a DriftPolicy should have, given its EdgeDeployment (None if missing)."""
    old = parsed.status
    base = old or DriftPolicyStatus()
    generation = parsed.metadata.generation
    error = parsed.error or (check_drift_policy(parsed.obj.spec) if parsed.obj else None)
    if error is not None or parsed.obj is None:
        phase = "Invalid"
        wanted = [
            ConditionSpec(READY, "False", INVALID_SPEC, error or "the spec could not be read")
        ]
    elif deployment is None:
        name = parsed.obj.spec.deployment_ref.name
        phase = "Pending"
        wanted = [
            ConditionSpec(
                READY,
                "False",
                "DeploymentNotFound",
                f"EdgeDeployment {name} does not exist in namespace "
                f"{parsed.metadata.namespace}; the policy applies when it is created.",
            )
        ]
    else:
        name = parsed.obj.spec.deployment_ref.name
        phase = "Watching"
        wanted = [
            ConditionSpec(
                READY,
                "True",
                "PolicyAccepted",
                f"The policy applies to EdgeDeployment {name}; drift is evaluated once its "
                "pods report enough samples.",
            )
        ]
    if base.last_evaluated is None:
        wanted.append(
            ConditionSpec(DRIFTED, "Unknown", "NotEvaluated", "Drift has not been evaluated yet.")
        )
    status = base.model_copy(
        update={
            "observed_generation": generation,
            "phase": phase,
            "conditions": apply_conditions(base.conditions, wanted, now=now, generation=generation),
        }
    )
    return Plan(status=status, events=transition_events(old, status))
