"""What every kind's plan shares: the plan shape, InvalidSpec, and transition events."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from edgeml.api.common import Condition, ConditionStatus, StatusBase
from edgeml.api.events import Event
from edgeml.conditions import find_condition, set_condition

StatusT = TypeVar("StatusT", bound=StatusBase)

READY = "Ready"
REGISTRY_AVAILABLE = "RegistryAvailable"
"""An EdgeModel's condition: whether the operator could read its registered model."""
INVALID_SPEC = "InvalidSpec"
REGISTERED_MODEL_IN_USE = "RegisteredModelInUse"
"""An EdgeModel's registered model belongs to another EdgeModel (registry OWNER_TAG)."""


@dataclass(frozen=True)
class Plan(Generic[StatusT]):
    """What should be: the object's status, the children to apply, the events to post."""

    status: StatusT
    objects: list[dict[str, Any]] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    actions: tuple[object, ...] = ()
    """Changes the act step makes before the status write (a registry alias, pods)."""
    requeue_at: datetime | None = None
    """When the object needs another look even if nothing changes (a step's timer)."""


@dataclass(frozen=True)
class ConditionSpec:
    """A condition to set, before timestamps are attached."""

    type: str
    status: ConditionStatus
    reason: str
    message: str


def apply_conditions(
    old: list[Condition], wanted: list[ConditionSpec], *, now: datetime, generation: int | None
) -> list[Condition]:
    """Set each wanted condition on `old`, keeping transition times of unchanged ones."""
    conditions = list(old)
    for c in wanted:
        conditions = set_condition(
            conditions, c.type, c.status, c.reason, c.message, now=now, generation=generation
        )
    return conditions


def _is_warning(cond: Condition) -> bool:
    warned = ("NotFound", "Failed", "Unavailable", "Missing", "Invalid", "NotLabelled")
    if cond.reason in (INVALID_SPEC, REGISTERED_MODEL_IN_USE, "RetrainingPaused") or (
        cond.reason.endswith(warned)
    ):
        return True
    return (cond.type in ("Degraded", "Drifted") and cond.status == "True") or (
        cond.type == "Succeeded" and cond.status == "False"
    )


def transition_events(old: StatusBase | None, new: StatusBase) -> list[Event]:
    """An Event for each condition whose status or reason changed, if it is news."""
    events: list[Event] = []
    old_conditions = old.conditions if old else []
    for cond in new.conditions:
        before = find_condition(old_conditions, cond.type)
        if before is None and cond.status == "Unknown":
            continue
        if before is None and cond.type != READY and not _is_warning(cond):
            continue  # a new condition that says all is well is not news
        if before is not None and (before.status, before.reason) == (cond.status, cond.reason):
            continue
        event = Event("Warning" if _is_warning(cond) else "Normal", cond.reason, cond.message)
        # Several conditions often move for one reason (Ready and Progressing): one Event,
        # a Warning if any of them is one.
        same = next(
            (e for e in events if (e.reason, e.message) == (event.reason, event.message)), None
        )
        if same is None:
            events.append(event)
        elif event.type == "Warning" and same.type != "Warning":
            events[events.index(same)] = event
    return events
