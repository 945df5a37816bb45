"""Notifications at the edge of a reconcile: receivers' Secrets in, webhook deliveries out.

Shared by the DriftPolicy and EdgeDeployment controllers; the decisions (who is owed
what) are made in plans/notifications.py.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from edgeml.api.notify import NotificationRecord, Receiver
from edgeml.kube.reads import get_secret
from edgeml.plans.notifications import (
    Send,
    Target,
    alertmanager_payload,
    cloudevent_payload,
    record_delivery,
    target_of,
)
from edgeml.webhooks import WebhookError, post_json

log = logging.getLogger(__name__)


def read_targets(receivers: Sequence[Receiver], namespace: str) -> dict[str, Target | str]:
    """Each receiver's address from its Secret in `namespace`, or why it cannot be used."""
    return {
        r.name: target_of(r.secret_ref.name, get_secret(namespace, r.secret_ref.name))
        for r in receivers
    }


def deliver(
    who: str, sends: Sequence[Send], records: Sequence[NotificationRecord], now: datetime
) -> list[NotificationRecord]:
    """POST each message; the receivers' records after the attempts (never raises)."""
    out = list(records)
    for send in sends:
        d = send.delivery
        if d.receiver.format == "CloudEvents":
            body, kind = cloudevent_payload(d.alert), "application/cloudevents+json"
        else:
            body, kind = alertmanager_payload(d.receiver.name, d.alert), "application/json"
        try:
            post_json(send.target.url, body, send.target.token, kind)
            error = None
            log.info("%s: told %s that %s is %s", who, d.receiver.name,
                     d.alert.labels.get("alertname"), d.alert.status)  # fmt: skip
        except WebhookError as err:
            error = str(err)
            log.warning("%s: %s", who, err)
        out = record_delivery(out, d, error, now)
    return out
