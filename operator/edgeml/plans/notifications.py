"""Notifications of episodes: which receiver is owed which message, and when (pure).

An episode is one alert: `firing` from the moment a condition turns True (a
DriftPolicy's Drifted, an EdgeDeployment's Degraded: a rollback, an artifact that failed
verification), `resolved` when it clears, with one fingerprint (from the object's uid
and the episode's start), in Alertmanager's webhook format or as a CloudEvent. What each
receiver was sent lives in the object's status, so an operator restart never sends a
firing twice, and a receiver that is down is retried with backoff without holding
anything else up. A crash between a delivery and its status write can repeat that one
message: receivers de-duplicate by fingerprint and status, as Alertmanager's own do.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from edgeml.api.common import ConditionStatus
from edgeml.api.notify import Episode, NotificationRecord, Receiver

AlertStatus = Literal["firing", "resolved"]
ALERT_NAME = "EdgeMLDriftDetected"
ROLLOUT_ALERT_NAME = "EdgeMLRolloutFailed"
RETRAIN_ALERT_NAME = "EdgeMLRetrain"
RETRAIN_WARNINGS = frozenset({"Failed", "Rejected", "RolledBack"})
BACKOFF_FIRST = timedelta(seconds=5)
BACKOFF_MAX = timedelta(minutes=5)
ZERO_TIME = "0001-01-01T00:00:00Z"
"""Alertmanager's endsAt of an alert still firing."""


@dataclass(frozen=True)
class Alert:
    """One episode's alert, as a receiver is told of it."""

    fingerprint: str
    status: AlertStatus
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    starts_at: datetime
    ends_at: datetime | None


@dataclass(frozen=True)
class Delivery:
    """A message owed to a receiver now."""

    receiver: Receiver
    alert: Alert


@dataclass(frozen=True)
class Target:
    """Where a receiver's Secret says to send, and the token to send with."""

    url: str
    token: str | None = None


@dataclass(frozen=True)
class Send:
    """The act step's order: deliver this message to this address."""

    delivery: Delivery
    target: Target


RECEIVER_LABEL = "edgeml.io/receiver"


def target_of(
    secret_name: str, secret: tuple[Mapping[str, str], Mapping[str, str]] | None
) -> Target | str:
    """A receiver's address from its Secret (labels, data), or why it cannot be used."""
    if secret is None:
        return f"Secret {secret_name} does not exist"
    labels, data = secret
    if labels.get(RECEIVER_LABEL) != "true":
        return f"Secret {secret_name} is not labelled {RECEIVER_LABEL}=true, so it is not read"
    url = (data.get("url") or "").strip()
    if not url.startswith(("http://", "https://")):
        return f"Secret {secret_name} has no key url holding an http(s) address"
    return Target(url, (data.get("token") or "").strip() or None)


def notified_condition(
    receivers: Sequence[Receiver],
    records: Sequence[NotificationRecord],
    targets: Mapping[str, Target | str],
) -> tuple[ConditionStatus, str, str] | None:
    """The Notified condition (status, reason, message); None without receivers."""
    if not receivers:
        return None
    unusable = [f"{r.name}: {t}" for r in receivers if isinstance(t := targets.get(r.name), str)]
    if unusable:
        # A Secret that is not there, or one that is not a receiver's (no label, no url).
        missing = any(t.endswith("does not exist") for t in unusable)
        reason = "ReceiverSecretNotFound" if missing else "ReceiverSecretInvalid"
        return ("False", reason, "Receivers cannot be used: " + "; ".join(unusable) + ".")
    by_name = {r.receiver: r for r in records}
    failing = [
        f"{r.name}: {rec.error} (attempt {rec.attempts}, next at {rec.next_attempt:%H:%M:%S}Z)"
        for r in receivers
        if (rec := by_name.get(r.name)) is not None and rec.error and rec.next_attempt
    ]
    if failing:
        return (
            "False",
            "ReceiverUnavailable",
            "Delivery failed, retrying with backoff: " + "; ".join(failing) + ".",
        )
    return (
        "True",
        "ReceiversReady",
        f"{len(receivers)} receiver(s) told of every episode state so far.",
    )


def fingerprint(uid: str, started: datetime) -> str:
    """The episode's identity: the same for its firing and its resolved message."""
    return hashlib.sha256(f"{uid}/{started.isoformat()}".encode()).hexdigest()[:16]


def open_episode(uid: str, now: datetime, reason: str, message: str) -> Episode:
    """A new drift episode that starts now."""
    return Episode(fingerprint=fingerprint(uid, now), started=now, reason=reason, message=message)


def track_episode(
    episode: Episode | None, active: bool, uid: str, now: datetime, reason: str, message: str
) -> Episode | None:
    """The episode after one reconcile: opened when the condition turns True, ended when
    it turns False, unchanged otherwise."""
    open_now = episode is not None and episode.ended is None
    if active and not open_now:
        return open_episode(uid, now, reason, message)
    if not active and open_now and episode is not None:
        return episode.model_copy(update={"ended": now})
    return episode


def _alert(
    episode: Episode, labels: Mapping[str, str], summary: str, severity: str = "warning"
) -> Alert:
    return Alert(
        fingerprint=episode.fingerprint,
        status="resolved" if episode.ended else "firing",
        labels={**labels, "reason": episode.reason, "severity": severity},
        annotations={"summary": summary, "description": episode.message},
        starts_at=episode.started,
        ends_at=episode.ended,
    )


def alert_of(episode: Episode, namespace: str, policy: str, deployment: str) -> Alert:
    """A drift episode as an alert: firing until it ended."""
    return _alert(
        episode,
        {"alertname": ALERT_NAME, "namespace": namespace, "driftpolicy": policy,
         "edgedeployment": deployment},
        f"Drift detected by DriftPolicy {namespace}/{policy} on EdgeDeployment {deployment}",
    )  # fmt: skip


def rollout_alert_of(episode: Episode, namespace: str, deployment: str) -> Alert:
    """A failed rollout (rolled back, or an artifact that failed verification) as an alert."""
    return _alert(
        episode,
        {"alertname": ROLLOUT_ALERT_NAME, "namespace": namespace, "edgedeployment": deployment},
        f"EdgeDeployment {namespace}/{deployment}: {episode.reason}",
    )


def retrain_alert_of(
    episode: Episode, namespace: str, policy: str, deployment: str, run: str, trigger: str
) -> Alert:
    """A retrain as an alert: firing while it trains and is decided, resolved with its
    outcome (a warning when it failed, was rejected or rolled back)."""
    severity = "warning" if episode.reason in RETRAIN_WARNINGS else "info"
    summary = (
        f"DriftPolicy {namespace}/{policy} retrains ({trigger}): TrainingRun {run}"
        if episode.ended is None
        else f"DriftPolicy {namespace}/{policy}: TrainingRun {run} {episode.reason}"
    )
    return _alert(
        episode,
        {"alertname": RETRAIN_ALERT_NAME, "namespace": namespace, "driftpolicy": policy,
         "edgedeployment": deployment, "trainingrun": run, "trigger": trigger},
        summary,
        severity,
    )  # fmt: skip


def sends_due(
    alert: Alert,
    receivers: Sequence[Receiver],
    records: Sequence[NotificationRecord],
    targets: Mapping[str, Target | str],
    now: datetime,
) -> tuple[tuple[Send, ...], datetime | None]:
    """The messages to send now (to receivers whose Secret gave an address), and when the
    earliest backoff of one still owed ends."""
    sends = tuple(
        Send(d, target)
        for d in deliveries_due(alert, receivers, records, now)
        if isinstance(target := targets.get(d.receiver.name), Target)
    )
    waiting = [
        r.next_attempt
        for r in records
        if r.next_attempt is not None and r.fingerprint == alert.fingerprint
        and r.delivered != alert.status and r.next_attempt > now
    ]  # fmt: skip
    return sends, min(waiting, default=None)


def deliveries_due(
    alert: Alert | None,
    receivers: Sequence[Receiver],
    records: Sequence[NotificationRecord],
    now: datetime,
) -> list[Delivery]:
    """The receivers that have not been told of the alert's current state, and may be
    tried now (their backoff passed)."""
    if alert is None:
        return []
    by_name = {r.receiver: r for r in records}
    due = []
    for receiver in receivers:
        record = by_name.get(receiver.name)
        mine = record if record is not None and record.fingerprint == alert.fingerprint else None
        told = mine.delivered if mine is not None else None
        if told == alert.status:
            continue  # already delivered
        if alert.status == "resolved" and told != "firing":
            continue  # never told it fired (added later, or it never got through)
        if mine is not None and mine.next_attempt is not None and now < mine.next_attempt:
            continue  # backing off after a failed attempt
        due.append(Delivery(receiver, alert))
    return due


def record_delivery(
    records: Sequence[NotificationRecord],
    delivery: Delivery,
    error: str | None,
    now: datetime,
) -> list[NotificationRecord]:
    """The receivers' records after one attempt (`error` None when it was delivered)."""
    name = delivery.receiver.name
    old = next((r for r in records if r.receiver == name), None)
    same = old is not None and old.fingerprint == delivery.alert.fingerprint
    attempts = (old.attempts if same and old is not None else 0) + 1
    if error is None:
        new = NotificationRecord(
            receiver=name,
            fingerprint=delivery.alert.fingerprint,
            delivered=delivery.alert.status,
            attempts=0,
            last_attempt=now,
        )
    else:
        backoff = min(BACKOFF_FIRST * 2 ** (attempts - 1), BACKOFF_MAX)
        new = NotificationRecord(
            receiver=name,
            fingerprint=delivery.alert.fingerprint,
            delivered=old.delivered if same and old is not None else None,
            attempts=attempts,
            last_attempt=now,
            next_attempt=now + backoff,
            error=error[:300],
        )
    return [new if r.receiver == name else r for r in records] + ([] if old else [new])


def _time(at: datetime | None) -> str:
    return ZERO_TIME if at is None else at.isoformat().replace("+00:00", "Z")


def alertmanager_payload(receiver: str, alert: Alert, external_url: str = "") -> dict[str, Any]:
    """Alertmanager's webhook body (version 4) for one alert."""
    labels = dict(alert.labels)
    group = {
        k: labels[k]
        for k in ("alertname", "namespace", "edgedeployment", "driftpolicy")
        if k in labels
    }
    group_key = "{}:{" + ",".join(f'{k}="{v}"' for k, v in sorted(group.items())) + "}"
    return {
        "version": "4",
        "groupKey": group_key,
        "truncatedAlerts": 0,
        "status": alert.status,
        "receiver": receiver,
        "groupLabels": group,
        "commonLabels": labels,
        "commonAnnotations": dict(alert.annotations),
        "externalURL": external_url,
        "alerts": [
            {
                "status": alert.status,
                "labels": labels,
                "annotations": dict(alert.annotations),
                "startsAt": _time(alert.starts_at),
                "endsAt": _time(alert.ends_at),
                "generatorURL": "",
                "fingerprint": alert.fingerprint,
            }
        ],
    }


def cloudevent_payload(alert: Alert) -> dict[str, Any]:
    """The alert as a CloudEvents 1.0 structured-mode JSON event."""
    labels = alert.labels
    at = alert.ends_at if alert.status == "resolved" else alert.starts_at
    if labels.get("alertname") == RETRAIN_ALERT_NAME:
        plural, name, topic = "driftpolicies", labels["driftpolicy"], "retrain"
        happened = labels["reason"].lower() if alert.status == "resolved" else "started"
    elif "driftpolicy" in labels:
        plural, name, topic = "driftpolicies", labels["driftpolicy"], "drift"
        happened = "resolved" if alert.status == "resolved" else "detected"
    else:
        plural, name, topic = "edgedeployments", labels["edgedeployment"], "rollout"
        happened = "resolved" if alert.status == "resolved" else "failed"
    return {
        "specversion": "1.0",
        "id": f"{alert.fingerprint}-{alert.status}",
        "source": f"/apis/edgeml.io/v1alpha1/namespaces/{labels['namespace']}/{plural}/{name}",
        "type": f"io.edgeml.{topic}.{happened}",
        "subject": labels["edgedeployment"],
        "time": _time(at),
        "datacontenttype": "application/json",
        "data": {
            "status": alert.status,
            "fingerprint": alert.fingerprint,
            "labels": dict(labels),
            "annotations": dict(alert.annotations),
            "startsAt": _time(alert.starts_at),
            "endsAt": _time(alert.ends_at),
        },
    }
