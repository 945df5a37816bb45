"""What one EdgeDeployment reconcile reads, decided in pure code: nothing until there is
something to roll out, the target's unready pods, and during analysis the canary's and
stable version's serving pods, all in one round; and the world made of what came back."""

from __future__ import annotations

from typing import Any

import pytest

from edgeml.api.edgedeployment import EdgeDeploymentStatus
from edgeml.api.kinds import EdgeDeployment
from edgeml.config import OperatorConfig
from edgeml.plans.edgedeployment import (
    Blocked,
    DeploymentReads,
    Resolved,
    pods_to_read,
    reads_for,
    rollout_gate,
    world_from_reads,
)
from edgeml.plans.parsing import parse
from edgeml.rollout import Version
from edgeml.rollout.signals import MISMATCH, REQUESTS, Sample
from support.fleet import node, pod
from support.objects import edge_deployment, edge_model

CONFIG = OperatorConfig(mlflow_tracking_uri="http://127.0.0.1:5000")
SHA1, SHA2 = "11" * 32, "22" * 32
V1, V2 = Version(1, SHA1), Version(2, SHA2)
ANALYSIS = {
    "strategy": {
        "canary": {
            "steps": [{"nodes": 1}, {"analysis": {"duration": "1m"}}, {"nodes": "100%"}],
            "analysis": {"interval": "15s", "metrics": [{"name": "error-rate", "max": 0.05}]},
        }
    }
}


def model(**status: Any) -> dict[str, Any]:
    m = edge_model()
    m["status"] = {"registeredModel": "vib-1", **status}
    return m


def parsed(status: dict[str, Any] | None = None, **spec: Any) -> Any:
    b = edge_deployment(**{**ANALYSIS, **spec})
    b["metadata"].update(namespace="ml", uid="u-1", generation=1)
    if status is not None:
        b["status"] = status
    return parse(EdgeDeployment, EdgeDeploymentStatus, b)


SHRINKING = {"canary": {"steps": [{"nodes": "50%"}, {"nodes": "10%"}]}}
CHAMPION = {"champion": {"version": 2, "sha256": SHA2}}
IN_ANALYSIS = {
    "stable": {"version": 1, "sha256": SHA1},
    "canary": {"version": 2, "sha256": SHA2},
    "rollout": {"step": 1},
}


@pytest.mark.parametrize(
    ("obj", "the_model", "config", "reason"),
    [
        (parsed(strategy=SHRINKING), model(**CHAMPION), CONFIG, "InvalidSpec"),
        (parsed(), None, CONFIG, "ModelNotFound"),
        (parsed(), model(**CHAMPION), OperatorConfig(), "RegistryNotConfigured"),
        (parsed(), model(), CONFIG, "NoTargetVersion"),
        (parsed(modelRef={"alias": None, "version": 3}), model(), CONFIG, "TargetUnverified"),
    ],
)
def test_nothing_is_read_until_there_is_something_every_pod_can_verify(
    obj: Any, the_model: dict[str, Any] | None, config: OperatorConfig, reason: str
) -> None:
    gate = rollout_gate(obj, the_model, config)
    assert isinstance(gate, Blocked)
    assert gate.reason == reason
    assert reads_for(obj, the_model, config) is None


def test_a_resolved_target_reads_the_selected_nodes_and_only_analysis_reads_metrics() -> None:
    gate = rollout_gate(parsed(), model(**CHAMPION), CONFIG)
    assert isinstance(gate, Resolved)
    assert gate.version == V2
    first = reads_for(parsed(), model(**CHAMPION), CONFIG)
    assert first == DeploymentReads({"node-role.kubernetes.io/edge": "true"}, V2)
    analysing = reads_for(parsed(IN_ANALYSIS), model(**CHAMPION), CONFIG)
    assert analysing is not None
    assert (analysing.canary, analysing.stable, analysing.metrics) == (V2, V1, ("error-rate",))


NODES = [node("n1"), node("n2"), node("n3"), node("n4", ready="False")]
PODS = [
    pod("p1", "n1", V1),
    pod("p2", "n2", V2),
    pod("p3", "n3", V2, ready=False),  # the target, unready: did it refuse?
    pod("p4", "n4", V2, ready=False),  # offline node: not ours to ask
]


def names(pods: list[Any]) -> list[str]:
    return [p["metadata"]["name"] for p in pods]


def test_outside_analysis_only_the_targets_unready_pods_on_online_nodes_are_read() -> None:
    reads = DeploymentReads({}, V2, canary=V2, stable=V1)
    assert names(pods_to_read(reads, NODES, PODS)) == ["p3"]


def test_during_analysis_canary_and_stable_pods_are_read_in_the_same_round() -> None:
    reads = DeploymentReads({}, V2, canary=V2, stable=V1, metrics=("error-rate",))
    assert names(pods_to_read(reads, NODES, PODS)) == ["p1", "p2", "p3"]
    duplicate = DeploymentReads({}, V2, canary=V2, stable=V2, metrics=("error-rate",))
    assert names(pods_to_read(duplicate, NODES, PODS)) == ["p2", "p3"]


def requests(server_errors: float, ok: float) -> list[Sample]:
    name = f"{REQUESTS}_total"
    return [(name, {"outcome": "server_error"}, server_errors), (name, {"outcome": "ok"}, ok)]


def test_the_world_marks_a_refusing_pod_and_measures_canary_against_stable() -> None:
    reads = DeploymentReads({}, V2, canary=V2, stable=V1, metrics=("error-rate",))
    samples = {
        "p1": requests(0, 100),
        "p2": requests(10, 90),
        "p3": [(f"{MISMATCH}_total", {}, 1.0)],
    }
    world = world_from_reads(reads, model(), NODES, PODS, samples)
    assert world.fleet is not None
    by_node = {n.name: n for n in world.fleet.nodes}
    assert by_node["n3"].pod is not None
    assert by_node["n3"].pod.verified is False
    assert world.observation is not None
    (error_rate,) = world.observation.metrics
    assert (error_rate.canary, error_rate.stable) == (pytest.approx(0.1), 0.0)
    assert world.analysis_note == ""


def test_unread_pods_and_a_failed_source_are_said_not_guessed() -> None:
    reads = DeploymentReads({}, V2, canary=V2, stable=V1, metrics=("error-rate",))
    partial = world_from_reads(reads, model(), NODES, PODS, {"p2": requests(0, 10)})
    assert partial.analysis_note == "The metrics of 1 pods could not be read."
    failed = world_from_reads(reads, model(), NODES, PODS, None, "connection refused")
    assert failed.observation is None
    assert failed.analysis_note == "Metrics could not be read: connection refused."
    outside = DeploymentReads({}, V2, canary=V2, stable=V1)
    quiet = world_from_reads(outside, model(), NODES, PODS, None, "connection refused")
    assert quiet.fleet is not None
    assert quiet.observation is None
    assert quiet.analysis_note == ""
