"""Conditions in the Kubernetes shape: set one without losing when it last changed."""

from __future__ import annotations

from datetime import datetime

from edgeml.api.common import Condition, ConditionStatus


def find_condition(conditions: list[Condition], cond_type: str) -> Condition | None:
    """The condition of `cond_type`, or None."""
    return next((c for c in conditions if c.type == cond_type), None)


def set_condition(
    conditions: list[Condition],
    cond_type: str,
    status: ConditionStatus,
    reason: str,
    message: str,
    *,
    now: datetime,
    generation: int | None,
) -> list[Condition]:
    """A copy of `conditions` with `cond_type` set; lastTransitionTime moves only on a
    change of status, as the API conventions ask."""
    old = find_condition(conditions, cond_type)
    changed = old is None or old.status != status
    new = Condition(
        type=cond_type,
        status=status,
        reason=reason,
        message=message,
        last_transition_time=now if changed or old is None else old.last_transition_time,
        observed_generation=generation,
    )
    kept = [c for c in conditions if c.type != cond_type]
    return sorted([*kept, new], key=lambda c: c.type)
