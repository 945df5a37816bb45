"""The EdgeDeployment plan once a target is known: pods, Service, status and commands."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgeml.api.edgedeployment import EdgeDeploymentStatus
from edgeml.api.kinds import EdgeDeployment
from edgeml.config import OperatorConfig
from edgeml.objects.inference import DEPLOYMENT_LABEL, NODE_ANNOTATION, pod_name
from edgeml.plans.common import Plan
from edgeml.plans.edgedeployment import (
    CreatePod,
    DeletePod,
    DeploymentWorld,
    commands_from,
    plan_edge_deployment,
    state_from_status,
)
from edgeml.plans.parsing import parse
from edgeml.rollout import Commands, Measurement, MetricResult, RolloutState, Version
from edgeml.rollout.fleet import observe_fleet
from support.fleet import node, pod
from support.objects import edge_deployment, edge_model

T0 = datetime(2026, 1, 1, tzinfo=UTC)
CONFIG = OperatorConfig(mlflow_tracking_uri="http://127.0.0.1:5000")
SHA3, SHA4 = "33" * 32, "44" * 32
V3, V4 = Version(3, SHA3), Version(4, SHA4)
STEPS = {"strategy": {"canary": {"steps": [{"nodes": 1}, {"nodes": "100%"}]}}}


def model(version: int = 3, sha: str = SHA3) -> dict[str, Any]:
    m = edge_model()
    m["status"] = {"champion": {"version": version, "sha256": sha}, "registeredModel": "vib-1"}
    return m


def body(status: dict[str, Any] | None = None, **meta: Any) -> dict[str, Any]:
    b = edge_deployment(**STEPS)
    b["metadata"].update(namespace="ml", uid="u-1", generation=1, **meta)
    if status is not None:
        b["status"] = status
    return b


def plan(
    b: dict[str, Any], nodes: list[dict[str, Any]], pods: list[dict[str, Any]], **kw: Any
) -> Plan[EdgeDeploymentStatus]:
    parsed = parse(EdgeDeployment, EdgeDeploymentStatus, b)
    world = DeploymentWorld(kw.pop("model", model()), observe_fleet(nodes, pods))
    return plan_edge_deployment(parsed, world, now=kw.pop("now", T0), config=CONFIG)


NODES = [node("n1"), node("n2", zone="site-b"), node("n3", zone="site-c")]


def creates(p: Plan[EdgeDeploymentStatus]) -> list[dict[str, Any]]:
    return [a.manifest for a in p.actions if isinstance(a, CreatePod)]


def deletes(p: Plan[EdgeDeploymentStatus]) -> list[str]:
    return [a.name for a in p.actions if isinstance(a, DeletePod)]


def test_a_first_target_starts_with_one_pod_of_the_first_wave() -> None:
    p = plan(body(), NODES, [])
    made = creates(p)
    assert len(made) == 1
    pod_ = made[0]
    assert pod_["metadata"]["labels"][DEPLOYMENT_LABEL] == "vibration-edge"
    args = pod_["spec"]["containers"][0]["args"]
    assert "--model-uri=models:/vib-1/3" in args
    assert f"--expected-sha256={SHA3}" in args
    assert deletes(p) == []
    assert p.status.phase == "Progressing"
    assert p.status.canary is not None
    assert p.status.canary.version == 3
    assert p.status.rollout is not None
    assert p.status.rollout.step == 0
    assert [o["kind"] for o in p.objects] == ["Service"]
    assert [e.reason for e in p.events] == ["RolloutStarted"]


REQUESTS = {"cpu": "60m", "memory": "96Mi"}


def test_pods_request_what_the_versions_profile_recommends() -> None:
    m = model()
    m["status"]["versions"] = [{"version": 3, "sha256": SHA3, "recommendedRequests": REQUESTS}]
    made = creates(plan(body(), NODES, [], model=m))
    assert made[0]["spec"]["containers"][0]["resources"] == {"requests": REQUESTS}


def test_the_spec_resources_win_over_the_profile() -> None:
    m = model()
    m["status"]["champion"]["recommendedRequests"] = REQUESTS
    b = body()
    b["spec"]["serving"] = {"resources": {"limits": {"memory": "1Gi"}}}
    made = creates(plan(b, NODES, [], model=m))
    assert made[0]["spec"]["containers"][0]["resources"] == {"limits": {"memory": "1Gi"}}


def test_an_unprofiled_version_gets_no_resources() -> None:
    made = creates(plan(body(), NODES, []))
    assert "resources" not in made[0]["spec"]["containers"][0]


def converge(
    b: dict[str, Any], pods: list[dict[str, Any]], m: dict[str, Any], rounds: int = 10
) -> tuple[Plan[EdgeDeploymentStatus], list[dict[str, Any]]]:
    """Plan, then let the world do what the plan asked (pods start ready), until still."""
    now = T0
    for _ in range(rounds):
        p = plan(b, NODES, pods, model=m, now=now)
        gone = set(deletes(p))
        pods = [x for x in pods if x["metadata"]["name"] not in gone]
        for made in creates(p):
            meta = made["metadata"]
            version = Version(int(meta["labels"]["edgeml.io/model-version"]), SHA4)
            version = version if m["status"]["champion"]["version"] == 4 else V3
            pods.append(pod(meta["name"], meta["annotations"][NODE_ANNOTATION], version))
        b = body(p.status.to_json())
        now += timedelta(seconds=5)
        if not p.actions and p.status.phase in ("Healthy", "RolledBack"):
            return p, pods
    raise AssertionError(f"no convergence: {p.status.message}")


def test_a_first_rollout_walks_its_waves_to_healthy() -> None:
    done, pods = converge(body(), [], model())
    assert done.status.phase == "Healthy"
    assert done.status.stable is not None
    assert (done.status.stable.version, done.status.stable.ready) == (3, 3)
    assert done.status.canary is None
    ready = next(c for c in done.status.conditions if c.type == "Ready")
    assert ready.status == "True"
    assert sorted(p["metadata"]["annotations"][NODE_ANNOTATION] for p in pods) == [
        "n1",
        "n2",
        "n3",
    ]


def test_a_new_champion_replaces_every_pod() -> None:
    _, pods = converge(body(), [], model())
    stable = {"stable": {"version": 3, "sha256": SHA3}}
    done, after = converge(body(stable), pods, model(4, SHA4))
    assert done.status.stable is not None
    assert done.status.stable.version == 4
    assert {p["metadata"]["labels"]["edgeml.io/model-version"] for p in after} == {"4"}


def test_a_node_on_another_version_is_replaced_pod_for_pod() -> None:
    stable = {"stable": {"version": 3, "sha256": SHA3}}
    pods = [pod(f"p{i}", n["metadata"]["name"], V3) for i, n in enumerate(NODES)]
    p = plan(body(stable), NODES, pods, model=model(4, SHA4))
    assert len(deletes(p)) == 1
    assert len(creates(p)) == 1
    made = creates(p)[0]
    node_name = made["metadata"]["annotations"][NODE_ANNOTATION]
    assert made["metadata"]["name"] == pod_name("vibration-edge", node_name, 4)
    assert p.status.phase == "Progressing"


def test_without_a_model_nothing_is_created_or_deleted() -> None:
    parsed = parse(EdgeDeployment, EdgeDeploymentStatus, body())
    p = plan_edge_deployment(parsed, DeploymentWorld(None), now=T0)
    assert p.actions == ()
    assert p.objects == []


def test_commands_act_once_per_annotation_value() -> None:
    annotations = {"edgeml.io/pause": "a1", "edgeml.io/resume": "b1", "other": "x"}
    commands, record = commands_from(annotations, {})
    assert commands == Commands(pause=True, resume=True)
    assert record == {"pause": "a1", "resume": "b1"}
    again, _ = commands_from(annotations, record)
    assert again == Commands()
    fresh, _ = commands_from({**annotations, "edgeml.io/resume": "b2"}, record)
    assert fresh == Commands(resume=True)


def test_a_pause_annotation_holds_and_is_recorded() -> None:
    first = plan(body(), NODES, [])
    held = plan(
        body(first.status.to_json(), annotations={"edgeml.io/pause": "t1"}),
        NODES,
        [],
        now=T0 + timedelta(seconds=1),
    )
    assert held.status.phase == "Paused"
    assert held.status.rollout is not None
    assert held.status.rollout.paused
    assert held.status.rollout.handled_commands == {"pause": "t1"}
    assert creates(held) == []


moments = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)
).map(lambda d: d.replace(microsecond=0))
versions = st.builds(Version, st.integers(1, 99), st.sampled_from(["", SHA3]))


@given(
    stable=st.none() | versions,
    canary=st.none() | versions,
    step=st.integers(0, 5),
    at=st.none() | moments,
    failures=st.integers(0, 3),
    flags=st.tuples(st.booleans(), st.booleans(), st.booleans()),
    rejected=st.lists(st.integers(1, 99), max_size=3).map(tuple),
    measured=st.lists(st.tuples(moments, st.booleans(), st.booleans()), max_size=3),
)
def test_state_survives_the_round_trip_through_status(
    stable: Version | None,
    canary: Version | None,
    step: int,
    at: datetime | None,
    failures: int,
    flags: tuple[bool, bool, bool],
    rejected: tuple[int, ...],
    measured: list[tuple[datetime, bool, bool]],
) -> None:
    from edgeml.plans.edgedeployment import _rollout_status
    from edgeml.rollout import RolloutDecision
    from edgeml.rollout.model import Phase, VersionCount

    measurements = tuple(
        Measurement(t, c, p, (MetricResult("error-rate", 0.1, None, 0.2, p, 60),))
        for t, c, p in measured
    )
    state = RolloutState(
        stable=stable,
        canary=canary,
        step=step,
        step_started_at=at,
        progressed_at=at,
        pending=1,
        measurements=measurements,
        measured=len(measured),
        failures=failures,
        last_measured_at=at,
        paused=flags[0],
        paused_since=at,
        promoted=flags[1],
        rolling_back=flags[2],
        reason="why",
        rejected=rejected,
    )
    decision = RolloutDecision(
        assignments={},
        state=state,
        phase=Phase.PROGRESSING,
        reason="R",
        message="m",
        stable=VersionCount(stable),
        canary=VersionCount(canary) if canary else None,
    )
    update = _rollout_status(EdgeDeploymentStatus(), decision, {})
    status = EdgeDeploymentStatus.model_validate(
        EdgeDeploymentStatus(**update).to_json()  # through JSON, as the API server keeps it
    )
    assert state_from_status(status) == state


@pytest.mark.parametrize("status", [None, EdgeDeploymentStatus()])
def test_no_status_is_the_initial_state(status: EdgeDeploymentStatus | None) -> None:
    assert state_from_status(status) == RolloutState()
