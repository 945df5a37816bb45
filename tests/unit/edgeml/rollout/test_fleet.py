"""Nodes and pods as the API returns them, turned into the machine's observations."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from edgeml.rollout import NodeObservation, Pod, Version
from edgeml.rollout.fleet import (
    MAX_VERIFY,
    node_online,
    observe_fleet,
    pod_ready,
    serving_pods,
    verification_candidates,
)
from support.fleet import node, pod

V1, V2 = Version(1, "aa"), Version(2, "bb")


def test_readiness_of_nodes_and_pods() -> None:
    assert node_online(node("a"))
    assert not node_online(node("a", "Unknown"))
    assert not node_online({"metadata": {"name": "a"}})
    assert pod_ready(pod("p", "a", V1))
    assert not pod_ready(pod("p", "a", V1, ready=False))
    assert not pod_ready(pod("p", "a", V1, deleting=True))


def test_each_node_gets_its_pod_and_a_ready_pod_is_verified() -> None:
    fleet = observe_fleet(
        [node("a"), node("b", zone="site-b"), node("c", "False")],
        [pod("pa", "a", V1), pod("pb", "b", V2, ready=False)],
    )
    assert fleet.nodes == (
        NodeObservation("a", "site-a", True, Pod(V1, ready=True, verified=True)),
        NodeObservation("b", "site-b", True, Pod(V2, ready=False, verified=None)),
        NodeObservation("c", "site-a", False, None),
    )
    assert set(fleet.pods) == {"a", "b"}
    assert fleet.extra == ()


def test_a_pod_that_refused_its_artifact_is_unverified_and_never_serving() -> None:
    fleet = observe_fleet([node("a")], [pod("pa", "a", V2, ready=False)], unverified=["pa"])
    assert fleet.nodes[0].pod == Pod(V2, ready=False, verified=False)
    # Even if it claimed readiness, a refusal wins.
    fleet = observe_fleet([node("a")], [pod("pa", "a", V2)], unverified=["pa"])
    assert fleet.nodes[0].pod is not None
    assert not fleet.nodes[0].pod.serving


def test_the_newest_live_pod_counts_and_the_others_are_extra() -> None:
    old = pod("old", "a", V1, created="2026-01-01T00:00:00Z")
    new = pod("new", "a", V2, created="2026-01-01T00:05:00Z", ready=False)
    going = pod("going", "a", V1, deleting=True)
    failed = pod("failed", "a", V1, phase="Failed")
    stray = pod("stray", "gone-node", V1)
    fleet = observe_fleet([node("a")], [old, new, going, failed, stray])
    assert fleet.pods["a"] is new
    assert fleet.nodes[0].pod == Pod(V2, ready=False, verified=None)
    assert {p["metadata"]["name"] for p in fleet.extra} == {"old", "failed", "stray"}


def test_pods_without_a_version_label_are_not_ours_to_judge() -> None:
    foreign = pod("x", "a", V1)
    foreign["metadata"]["labels"] = {}
    fleet = observe_fleet([node("a")], [foreign])
    assert fleet.nodes[0].pod is None
    assert fleet.extra == ()


def test_verification_candidates_are_unready_running_target_pods_on_online_nodes() -> None:
    nodes = [node("a"), node("b"), node("off", "Unknown")]
    pods = [
        pod("ready", "a", V2),
        pod("waiting", "b", V2, ready=False),
        pod("pending", "b", V2, ready=False, phase="Pending"),
        pod("offline", "off", V2, ready=False),
        pod("old", "a", V1, ready=False),
    ]
    found = verification_candidates(nodes, pods, V2)
    assert [p["metadata"]["name"] for p in found] == ["waiting"]
    many = [pod(f"p{i:03}", "a", V2, ready=False) for i in range(50)]
    assert len(verification_candidates([node("a")], many, V2)) == MAX_VERIFY


def test_serving_pods_picks_verified_ready_pods_of_a_version() -> None:
    fleet = observe_fleet(
        [node("a"), node("b"), node("c"), node("d", "Unknown")],
        [
            pod("pa", "a", V2),
            pod("pb", "b", V2, ready=False),
            pod("pc", "c", V1),
            pod("pd", "d", V2),
        ],
    )
    assert [p["metadata"]["name"] for p in serving_pods(fleet, V2, 10)] == ["pa"]
    assert [p["metadata"]["name"] for p in serving_pods(fleet, V1, 10)] == ["pc"]
    assert serving_pods(fleet, None, 10) == []
    assert serving_pods(fleet, V2, 0) == []


_label = st.text(alphabet="abc", min_size=1, max_size=2)


@given(st.dictionaries(_label, _label, max_size=3), st.dictionaries(_label, _label, max_size=4))
def test_a_selector_selects_exactly_the_labels_holding_all_its_pairs(
    selector: dict[str, str], labels: dict[str, str]
) -> None:
    from edgeml.rollout.fleet import selects

    assert selects(selector, labels) == (selector.items() <= labels.items())
    assert selects(selector, {**labels, **selector})
    assert selects({}, labels)
