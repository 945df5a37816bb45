"""`edgeml drift`'s table: the decision, the window, features by zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from edgeml.api.driftpolicy import DriftPolicyStatus
from edgeml.api.kinds import DriftPolicy
from edgeml.drift.report import render_drift
from edgeml.plans.driftpolicy import DriftWorld, plan_drift_policy
from edgeml.plans.parsing import parse
from support.objects import drift_policy, edge_deployment

from .support import baseline, window

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _evaluated(times: int) -> dict[str, object]:
    body = drift_policy()
    body["metadata"].update(namespace="ml", generation=1)
    shifted = window(shifted=("f3",))
    world = DriftWorld(
        edge_deployment(),
        True,
        {"": {"1": shifted}, "site-c": {"1": shifted}, "site-a": {"1": window()}},
        pods_total=2,
        pods_read=2,
        baselines={"1": baseline()},
    )
    for i in range(times):
        status = plan_drift_policy(
            parse(DriftPolicy, DriftPolicyStatus, body), world, now=T0 + timedelta(minutes=3 * i)
        ).status
        body["status"] = status.to_json()
    return body


def test_the_table_names_the_decision_the_window_and_the_zone_that_drifted() -> None:
    text = render_drift(_evaluated(2))
    lines = text.splitlines()
    assert (
        lines[0]
        == "DriftPolicy ml/vibration-drift: Drifted=True (DataDrift) since 2026-01-01T00:03:00Z"
    )
    assert "zone site-c" in lines[1]
    assert "Window 15m, psi > 0.2: 1000 rows from 2 of 2 pods (PodIP), versions 1" in text
    header = next(line for line in lines if line.startswith("FEATURE"))
    assert header.split() == ["FEATURE", "SCORE", "DRIFTED", "Q-VALUE", "site-c", "site-a"]
    f3 = next(line for line in lines if line.startswith("f3 "))
    assert f3.split()[2] == "yes"
    assert f3.split()[4].endswith("*")
    assert any(line.split()[:3] == ["site-c", "1000", "yes"] for line in lines)


def test_a_policy_never_evaluated_says_so() -> None:
    body = drift_policy()
    body["metadata"].update(namespace="ml")
    assert render_drift(body).splitlines() == [
        "DriftPolicy ml/vibration-drift: Drifted=Unknown (NotEvaluated)",
        "No evaluation yet.",
    ]
