"""`edgeml history`: versions, triggers, promotion and rollout of a model, newest first."""

from __future__ import annotations

from edgeml.objects.training_run import run_name, trigger_id
from edgeml.plans.history import render_history

MODEL = {
    "metadata": {"name": "vibration", "namespace": "ml"},
    "status": {
        "champion": {"version": 2},
        "candidate": {"version": 3, "outcome": "Rejected"},
        "versions": [
            {"version": 3, "created": "2026-01-03T00:00:00Z", "trigger": "Drift",
             "triggerId": "abc123", "trainingRun": "ml/vibration-drift-drift-abc",
             "reason": "Drift detected: zone site-c (version 2, 900 rows): inputs f0 2.1",
             "metrics": {"f1": 0.55}, "championMetrics": {"f1": 0.61}, "comparedWith": 2,
             "promotion": "Rejected"},
            {"version": 2, "created": "2026-01-02T00:00:00Z", "trigger": "Drift",
             "triggerId": "def456", "trainingRun": "ml/vibration-drift-drift-def",
             "metrics": {"f1": 0.9}, "championMetrics": {"f1": 0.6}, "comparedWith": 1,
             "promotion": "Promoted"},
            {"version": 1, "created": "2026-01-01T00:00:00Z", "trigger": "Manual",
             "trainingRun": "ml/vibration-1", "metrics": {"f1": 0.95}, "promotion": "Promoted"},
        ],
    },
}  # fmt: skip
EDGE = {
    "metadata": {"name": "edge"},
    "spec": {"modelRef": {"name": "vibration", "alias": "champion"}},
    "status": {"stable": {"version": 2}, "target": {"version": 2}, "rejectedVersions": [1]},
}
FAILED_RUN = {
    "metadata": {"name": "vibration-schedule-x", "creationTimestamp": "2026-01-04T00:00:00Z",
                 "labels": {"edgeml.io/trigger-id": "fff000"}},
    "spec": {"modelRef": {"name": "vibration"}, "trigger": "Schedule", "reason": "tick"},
    "status": {"phase": "Failed", "failureReason": "DatasetNotFound: no such file"},
}  # fmt: skip
POLICY = {
    "metadata": {"name": "vibration-drift"},
    "status": {"retraining": {"state": "Cooldown", "until": "2026-01-04T06:00:00Z"}},
}


def test_history_is_newest_first_with_both_numbers_and_the_rollout() -> None:
    text = render_history(MODEL, [FAILED_RUN], [EDGE], [POLICY])
    lines = text.splitlines()
    assert lines[0] == "EdgeModel ml/vibration: champion version 2"
    assert lines[1].split()[:3] == ["VERSION", "CREATED", "TRIGGER"]
    rows = lines[2:6]
    assert rows[0].startswith("-")
    assert "Failed: DatasetNotFound" in rows[0]
    assert rows[1].startswith("3 ")
    assert "Rejected" in rows[1]
    assert "f1 0.55 vs 0.61 (v2, same rows)" in rows[1]
    assert rows[2].startswith("2 ")
    assert "champion" in rows[2]
    assert "edge: serving" in rows[2]
    assert rows[3].startswith("1 ")
    assert "edge: rolled back" in rows[3]
    assert "vibration-drift-drift-abc" in rows[1]
    assert "abc123" in rows[1]
    assert (
        lines[-1] == "DriftPolicy vibration-drift: retraining Cooldown until 2026-01-04T06:00:00Z"
    )


def test_a_model_with_nothing_yet() -> None:
    text = render_history({"metadata": {"name": "m", "namespace": "ml"}}, [], [])
    assert text == "EdgeModel ml/m: champion version -\nNo versions or TrainingRuns yet.\n"


def test_run_names_are_short_stable_and_distinct() -> None:
    a = trigger_id("uid", "Drift", "episode-1", "3")
    b = trigger_id("uid", "Drift", "episode-1", "4")
    assert a != b
    assert len(a) == 16
    assert run_name("p", "Drift", a) == run_name("p", "Drift", a)
    long = run_name("x" * 80, "Schedule", a)
    assert len(long) <= 52
    assert long.endswith(f"schedule-{a[:10]}")


def test_long_names_become_label_values_of_63_characters_at_most() -> None:
    from edgeml.objects.training_run import label_value

    assert label_value("vibration-drift") == "vibration-drift"
    long = "p" * 200
    assert len(label_value(long)) <= 63
    assert label_value(long) == label_value(long)
    assert label_value(long) != label_value("p" * 199)
