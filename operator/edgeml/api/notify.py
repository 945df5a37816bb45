"""Notifications: webhook receivers, the episodes they are told of, and what each got."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import StringConstraints

from edgeml.api.common import KubeModel, LocalObjectReference


class Receiver(KubeModel):
    """A webhook that is told when an episode (drift, a failed rollout) begins and ends."""

    name: Annotated[
        str, StringConstraints(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63)
    ]
    """The receiver's name, as status reports it."""
    secret_ref: LocalObjectReference
    """A Secret with key `url` (the webhook's address) and, optionally, `token` (sent as
    a Bearer token). The Secret must carry the label
    `edgeml.io/receiver: "true"`: the operator reads no other Secret, so writing a
    DriftPolicy does not let anyone send another Secret's contents anywhere. A policy's
    receivers are read in its own namespace; the operator-wide ones (chart value
    notify.receivers) in the operator's."""
    format: Literal["Alertmanager", "CloudEvents"] = "Alertmanager"
    """Alertmanager's webhook format (version 4), or a CloudEvents 1.0 JSON event."""


class Episode(KubeModel):
    """The current or last episode (drift, or a failed rollout): one alert, firing until it
    ended."""

    fingerprint: str
    """The alert's identity (the same in its firing and resolved messages)."""
    started: datetime
    """When it began (Drifted, or Degraded, turned True)."""
    ended: datetime | None = None
    """When it cleared."""
    reason: str = "DataDrift"
    """Its reason when it began (DataDrift, AnalysisFailed, ArtifactVerificationFailed...)."""
    message: str = ""
    """Its message when it began."""


class NotificationRecord(KubeModel):
    """What one receiver was told of the current episode."""

    receiver: str
    """The receiver's name."""
    fingerprint: str
    """The episode."""
    delivered: Literal["firing", "resolved"] | None = None
    """The latest state it received."""
    attempts: int = 0
    """Failed attempts in a row at the message it is owed."""
    last_attempt: datetime | None = None
    """When it was last tried."""
    next_attempt: datetime | None = None
    """When it is tried again (backing off after a failure)."""
    error: str | None = None
    """Why the last attempt failed."""
