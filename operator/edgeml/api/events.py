"""The Event a decision asks for: produced by plans/ and rollout/, posted by kube/.

It lives with the API types, below every layer that uses it, so the I/O layer and the
rollout state machine need not import the plans that produce most Events.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Event:
    """A Kubernetes Event to post about the object."""

    type: Literal["Normal", "Warning"]
    reason: str
    message: str
    regarding: Mapping[str, str] | None = None
    """Another object the Event is about (apiVersion, kind, name, namespace, uid); the
    reconciled object when None."""
