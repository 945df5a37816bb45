"""The TrainingRuns the operator creates itself (a DriftPolicy's retrains, `edgeml retrain`).

Each is named after a de-duplication key (who asked, which trigger, what for: the drift
episode and the champion, the schedule tick, the request id), so an operator killed
between creating it and recording it, a repeated watch event, or a second replica
creates the same name again, and the API server refuses the duplicate.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from edgeml.api.common import API_VERSION
from edgeml.api.trainingrun import TrainingOverrides, Trigger
from edgeml.objects.meta import child_name, labels

MODEL_LABEL = "edgeml.io/model"
TRIGGER_LABEL = "edgeml.io/trigger"
TRIGGER_ID_LABEL = "edgeml.io/trigger-id"
POLICY_LABEL = "edgeml.io/drift-policy"
TICK_ANNOTATION = "edgeml.io/schedule-tick"
TRIGGER_ID_LENGTH = 16
LABEL_VALUE_LIMIT = 63


def label_value(name: str) -> str:
    """An object name as a label value: itself up to 63 characters, else shortened with a
    hash (names may be 253 characters long, label values 63)."""
    if len(name) <= LABEL_VALUE_LIMIT:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: LABEL_VALUE_LIMIT - 9].rstrip('-._')}-{digest}"


def trigger_id(*key: str) -> str:
    """The id of one reason to retrain: a digest of its de-duplication key."""
    return hashlib.sha256("\x00".join(key).encode()).hexdigest()[:TRIGGER_ID_LENGTH]


def run_name(owner: str, trigger: Trigger, tid: str) -> str:
    """The TrainingRun's name: `<owner>-<trigger>-<id>`, at most 63 characters (its Job's
    name, derived from it, must be a label value too)."""
    return child_name(owner, f"{trigger.lower()}-{tid[:10]}", limit=52)


def build_training_run(
    *,
    namespace: str,
    name: str,
    model: str,
    trigger: Trigger,
    tid: str,
    reason: str,
    require_approval: bool,
    policy: str | None = None,
    overrides: TrainingOverrides | None = None,
    tick: datetime | None = None,
) -> dict[str, Any]:
    """The TrainingRun manifest (created once; its spec is immutable)."""
    extra = {MODEL_LABEL: label_value(model), TRIGGER_LABEL: trigger, TRIGGER_ID_LABEL: tid}
    if policy is not None:
        extra[POLICY_LABEL] = label_value(policy)
    spec: dict[str, Any] = {
        "modelRef": {"name": model},
        "trigger": trigger,
        "reason": reason[:1024],
        "requireApproval": require_approval,
    }
    if overrides is not None:
        spec["overrides"] = overrides.to_json()
    return {
        "apiVersion": API_VERSION,
        "kind": "TrainingRun",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": labels("edgeml-training", name, "retrain", **extra),
            "annotations": (
                {TICK_ANNOTATION: tick.strftime("%Y-%m-%dT%H:%M:%SZ")} if tick is not None else {}
            ),
        },
        "spec": spec,
    }
