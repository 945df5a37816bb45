"""`edgeml rollout status`: when a rollout has ended, and how it reads."""

from __future__ import annotations

from typing import Any

import pytest

from edgeml.rollout.report import render_rollout, rollout_outcome


def deployment(
    phase: str | None, observed: int = 2, generation: int = 2, **status: Any
) -> dict[str, Any]:
    return {
        "metadata": {"name": "vibration-edge", "namespace": "ml", "generation": generation},
        "status": {"phase": phase, "observedGeneration": observed, **status},
    }


@pytest.mark.parametrize(
    ("phase", "observed", "outcome"),
    [
        ("Healthy", 2, "ok"),
        ("RolledBack", 2, "failed"),
        ("Invalid", 2, "failed"),
        ("Progressing", 2, None),
        ("Analyzing", 2, None),
        ("Paused", 2, None),
        ("RollingBack", 2, None),
        ("Healthy", 1, None),  # the operator has not seen the latest spec yet
    ],
)
def test_a_rollout_ends_healthy_or_rolled_back_for_the_latest_spec(
    phase: str, observed: int, outcome: str | None
) -> None:
    assert rollout_outcome(deployment(phase, observed)) == outcome


def test_the_report_names_versions_nodes_and_analysis() -> None:
    text = render_rollout(
        deployment(
            "Analyzing",
            message="Analysing version 7 at step 1.",
            target={"version": 7},
            stable={"version": 6, "nodes": 9, "ready": 9},
            canary={"version": 7, "nodes": 1, "ready": 1, "step": 1, "analysis": [
                {"metric": "latency-p99-ms", "canary": 12.5, "stable": 11.0, "max": 50,
                 "passed": True, "samples": 340}]},
            zones=[{"zone": "site-a", "nodes": 3, "ready": 3, "canary": 1}],
        )
    )  # fmt: skip
    lines = text.splitlines()
    assert lines[0] == "EdgeDeployment ml/vibration-edge: Analyzing"
    assert lines[2] == (
        "Target version 7; stable version 6 on 9 nodes (9 serving); canary version 7 on 1 "
        "nodes (1 serving), step 1."
    )
    assert lines[4].split() == ["METRIC", "CANARY", "STABLE", "MAX", "SAMPLES", "PASSED"]
    assert lines[5].split() == ["latency-p99-ms", "12.5", "11", "50", "340", "yes"]
    assert lines[-1] == "Zones: site-a 3/3 serving (1 canary)"
