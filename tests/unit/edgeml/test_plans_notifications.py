"""Drift notifications: one firing and one resolved per episode and receiver, with backoff."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from edgeml.api.driftpolicy import NotificationRecord, Receiver, TriggeredRun
from edgeml.plans.notifications import (
    ZERO_TIME,
    Target,
    alert_of,
    alertmanager_payload,
    cloudevent_payload,
    deliveries_due,
    fingerprint,
    notified_condition,
    open_episode,
    record_delivery,
    retrain_alert_of,
    target_of,
)
from edgeml.plans.retraining import retrain_episode

T0 = datetime(2026, 1, 1, tzinfo=UTC)
OPS = Receiver.model_validate({"name": "ops", "secretRef": {"name": "hook"}})
EPISODE = open_episode("uid-1", T0, "DataDrift", "Drift in zone site-c: f0 0.9.")


def alert(ended: bool = False):  # type: ignore[no-untyped-def]
    episode = EPISODE.model_copy(update={"ended": T0 + timedelta(minutes=9)}) if ended else EPISODE
    return alert_of(episode, "ml", "vibration-drift", "vibration-edge")


def test_an_episode_fires_then_resolves_under_one_fingerprint() -> None:
    assert alert().status == "firing"
    assert alert(ended=True).status == "resolved"
    assert alert().fingerprint == alert(ended=True).fingerprint == fingerprint("uid-1", T0)
    assert (
        open_episode("uid-1", T0 + timedelta(1), "DataDrift", "").fingerprint != alert().fingerprint
    )


def test_alertmanager_payload_has_the_webhook_shape() -> None:
    body = alertmanager_payload("ops", alert())
    assert body["version"] == "4"
    assert body["status"] == "firing"
    assert body["receiver"] == "ops"
    (one,) = body["alerts"]
    assert one["labels"]["alertname"] == "EdgeMLDriftDetected"
    assert one["labels"]["driftpolicy"] == "vibration-drift"
    assert one["startsAt"] == "2026-01-01T00:00:00Z"
    assert one["endsAt"] == ZERO_TIME
    assert one["fingerprint"] == alert().fingerprint
    assert one["annotations"]["description"] == "Drift in zone site-c: f0 0.9."
    resolved = alertmanager_payload("ops", alert(ended=True))["alerts"][0]
    assert (resolved["status"], resolved["endsAt"]) == ("resolved", "2026-01-01T00:09:00Z")


def test_cloudevent_payload_is_structured_cloudevents_1() -> None:
    event = cloudevent_payload(alert(ended=True))
    assert event["specversion"] == "1.0"
    assert event["type"] == "io.edgeml.drift.resolved"
    assert event["id"] == f"{alert().fingerprint}-resolved"
    assert event["source"] == "/apis/edgeml.io/v1alpha1/namespaces/ml/driftpolicies/vibration-drift"
    assert event["time"] == "2026-01-01T00:09:00Z"


def test_a_firing_is_sent_once_and_its_resolution_once() -> None:
    records: list[NotificationRecord] = []
    (d,) = deliveries_due(alert(), [OPS], records, T0)
    records = record_delivery(records, d, None, T0)
    assert deliveries_due(alert(), [OPS], records, T0 + timedelta(hours=1)) == []
    (r,) = deliveries_due(alert(ended=True), [OPS], records, T0)
    records = record_delivery(records, r, None, T0)
    assert deliveries_due(alert(ended=True), [OPS], records, T0 + timedelta(hours=1)) == []
    assert records[0].delivered == "resolved"


def test_a_receiver_never_told_of_the_firing_gets_no_resolution() -> None:
    assert deliveries_due(alert(ended=True), [OPS], [], T0) == []


def test_a_failed_delivery_backs_off_and_is_retried() -> None:
    (d,) = deliveries_due(alert(), [OPS], [], T0)
    records = record_delivery([], d, "POST http://127.0.0.1:9: ConnectionRefusedError", T0)
    assert records[0].next_attempt == T0 + timedelta(seconds=5)
    assert deliveries_due(alert(), [OPS], records, T0 + timedelta(seconds=4)) == []
    (again,) = deliveries_due(alert(), [OPS], records, T0 + timedelta(seconds=5))
    records = record_delivery(records, again, "down", T0 + timedelta(seconds=5))
    assert records[0].attempts == 2
    assert records[0].next_attempt == T0 + timedelta(seconds=15)
    records = record_delivery(records, again, None, T0 + timedelta(seconds=15))
    assert (records[0].delivered, records[0].attempts, records[0].error) == ("firing", 0, None)


@given(st.integers(1, 40))
def test_backoff_is_capped_at_five_minutes(failures: int) -> None:
    records: list[NotificationRecord] = []
    (d,) = deliveries_due(alert(), [OPS], [], T0)
    for _ in range(failures):
        records = record_delivery(records, d, "down", T0)
    assert records[0].next_attempt is not None
    assert records[0].next_attempt - T0 <= timedelta(minutes=5)


def test_a_new_episode_is_owed_its_own_firing() -> None:
    (d,) = deliveries_due(alert(), [OPS], [], T0)
    records = record_delivery([], d, None, T0)
    later = alert_of(
        open_episode("uid-1", T0 + timedelta(hours=2), "DataDrift", ""), "ml", "p", "d"
    )
    assert [x.alert.fingerprint for x in deliveries_due(later, [OPS], records, T0)] == [
        later.fingerprint
    ]


def test_receiver_secrets_are_read_only_when_labelled_and_complete() -> None:
    ok = ({"edgeml.io/receiver": "true"}, {"url": "http://127.0.0.1:9/hook", "token": "t"})
    assert target_of("hook", ok) == Target("http://127.0.0.1:9/hook", "t")
    assert target_of("hook", None) == "Secret hook does not exist"
    assert "not labelled edgeml.io/receiver=true" in str(target_of("hook", ({}, ok[1])))
    assert "no key url" in str(target_of("hook", (ok[0], {"url": "ftp://x"})))


def test_the_notified_condition_says_what_is_wrong() -> None:
    assert notified_condition([], [], {}) is None
    assert notified_condition([OPS], [], {"ops": "Secret hook does not exist"}) == (
        "False",
        "ReceiverSecretNotFound",
        "Receivers cannot be used: ops: Secret hook does not exist.",
    )
    unlabelled = notified_condition(
        [OPS], [], {"ops": "Secret hook is not labelled edgeml.io/receiver=true"}
    )
    assert unlabelled is not None
    assert unlabelled[1] == "ReceiverSecretInvalid"
    (d,) = deliveries_due(alert(), [OPS], [], T0)
    failing = record_delivery([], d, "POST http://127.0.0.1:9: refused", T0)
    state, reason, message = notified_condition([OPS], failing, {"ops": Target("http://x")}) or (
        "",
        "",
        "",
    )
    assert (state, reason) == ("False", "ReceiverUnavailable")
    assert "refused (attempt 1, next at 00:00:05Z)" in message
    assert notified_condition([OPS], [], {"ops": Target("http://x")})[0] == "True"  # type: ignore[index]


# --- episodes of any kind, and failed rollouts ------------------------------------------------

from edgeml.plans.notifications import ROLLOUT_ALERT_NAME, rollout_alert_of, track_episode  # noqa: E402


def test_an_episode_opens_when_the_condition_turns_true_and_ends_when_it_clears() -> None:
    opened = track_episode(None, True, "uid-9", T0, "AnalysisFailed", "error-rate 1 > 0.05.")
    assert opened is not None
    assert (opened.started, opened.ended, opened.reason) == (T0, None, "AnalysisFailed")
    assert (
        track_episode(opened, True, "uid-9", T0 + timedelta(minutes=1), "RolledBack", "") == opened
    )
    ended = track_episode(opened, False, "uid-9", T0 + timedelta(minutes=2), "AsExpected", "")
    assert ended is not None
    assert ended.ended == T0 + timedelta(minutes=2)
    assert ended.fingerprint == opened.fingerprint
    assert track_episode(ended, False, "uid-9", T0 + timedelta(minutes=3), "", "") == ended
    again = track_episode(ended, True, "uid-9", T0 + timedelta(minutes=4), "RolledBack", "")
    assert again is not None
    assert again.fingerprint != opened.fingerprint
    assert track_episode(None, False, "uid-9", T0, "", "") is None


def test_a_failed_rollout_alert_names_the_deployment_and_its_reason() -> None:
    episode = track_episode(
        None, True, "uid-9", T0, "ArtifactVerificationFailed", "sha256 differs."
    )
    assert episode is not None
    alert = rollout_alert_of(episode, "ml", "vibration-edge")
    body = alertmanager_payload("ops", alert)
    assert body["groupLabels"] == {
        "alertname": ROLLOUT_ALERT_NAME,
        "namespace": "ml",
        "edgedeployment": "vibration-edge",
    }
    assert body["alerts"][0]["labels"]["reason"] == "ArtifactVerificationFailed"
    event = cloudevent_payload(alert)
    assert event["type"] == "io.edgeml.rollout.failed"
    assert (
        event["source"] == "/apis/edgeml.io/v1alpha1/namespaces/ml/edgedeployments/vibration-edge"
    )


# --- retrains ---------------------------------------------------------------------------


def _run(outcome: str, decided: datetime | None = None) -> TriggeredRun:
    return TriggeredRun.model_validate(
        {"name": "vibration-drift-drift-abc", "trigger": "Drift", "triggerId": "0123456789abcdef",
         "created": T0, "decided": decided, "outcome": outcome,
         "message": "f1 0.55 vs champion (version 1) 0.61 on the same held-out rows"}
    )  # fmt: skip


def test_a_retrain_fires_while_it_trains_and_resolves_with_its_outcome() -> None:
    training = retrain_episode(_run("Training"), paused=False)
    firing = retrain_alert_of(training, "ml", "vibration-drift", "edge", "run-1", "Drift")
    assert (firing.status, firing.fingerprint) == ("firing", "0123456789abcdef")
    assert firing.labels["alertname"] == "EdgeMLRetrain"
    assert firing.labels["trainingrun"] == "run-1"
    assert firing.labels["severity"] == "info"
    assert "retrains (Drift)" in firing.annotations["summary"]
    done = retrain_episode(_run("Rejected", T0 + timedelta(minutes=2)), paused=True)
    resolved = retrain_alert_of(done, "ml", "vibration-drift", "edge", "run-1", "Drift")
    assert (resolved.status, resolved.fingerprint) == ("resolved", firing.fingerprint)
    assert (resolved.labels["reason"], resolved.labels["severity"]) == ("Rejected", "warning")
    assert "on the same held-out rows" in resolved.annotations["description"]
    assert "retraining is now paused" in resolved.annotations["description"]
    event = cloudevent_payload(resolved)
    assert event["type"] == "io.edgeml.retrain.rejected"
    assert cloudevent_payload(firing)["type"] == "io.edgeml.retrain.started"
    # Once told of the firing, a receiver is owed the resolution, once.
    told = record_delivery([], deliveries_due(firing, [OPS], [], T0)[0], None, T0)
    assert [d.alert.status for d in deliveries_due(resolved, [OPS], told, T0)] == ["resolved"]
    told = record_delivery(told, deliveries_due(resolved, [OPS], told, T0)[0], None, T0)
    assert deliveries_due(resolved, [OPS], told, T0) == []


def test_awaiting_approval_and_promoted_end_a_retrain_notification_too() -> None:
    for outcome in ("AwaitingApproval", "Promoted", "RolledOut", "Failed", "RolledBack"):
        assert retrain_episode(_run(outcome, T0), paused=False).ended == T0, outcome
    for outcome in ("Training", "Evaluating", "RollingOut"):
        assert retrain_episode(_run(outcome), paused=False).ended is None, outcome
