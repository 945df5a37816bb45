"""Kubernetes Events about our objects, posted through kopf's event poster."""

from __future__ import annotations

from typing import Any

import kopf

from edgeml.plans.common import Event


def post_events(body: Any, events: list[Event]) -> None:
    """Post each event about `body` (kopf batches and posts them in the background)."""
    for event in events:
        kopf.event(body, type=event.type, reason=event.reason, message=event.message[:1024])
