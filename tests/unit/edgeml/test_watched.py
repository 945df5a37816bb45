"""Reads of the watched nodes and pods: filtered and sorted as a list from the API server
would be, copied on kopf's loop (the indexes change there) whichever thread asks."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgeml.controllers import watched
from edgeml.objects.inference import (
    DEPLOYMENT_LABEL,
    NODE_ANNOTATION,
    SHA256_ANNOTATION,
    VERSION_LABEL,
)
from edgeml.rollout.fleet import (
    ZONE_LABEL,
    observe_fleet,
    serving_pods,
    verification_candidates,
)
from edgeml.rollout.model import Version


def _node(name: str, **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels}}


def _pod(name: str) -> dict[str, Any]:
    return {"metadata": {"name": name}}


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """An event loop running in a thread of its own, as kopf's does beside the reconciles."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield loop
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=5)
    loop.close()
    watched._loop = watched._nodes = watched._pods = None


def _attach(loop: asyncio.AbstractEventLoop, nodes: Any, pods: Any) -> None:
    async def attach() -> None:
        watched.attach(nodes, pods)

    asyncio.run_coroutine_threadsafe(attach(), loop).result(5)


def test_nodes_are_those_whose_labels_hold_every_pair_of_the_selector_sorted_by_name(
    loop: asyncio.AbstractEventLoop,
) -> None:
    index = {
        "edge-2": [_node("edge-2", tier="edge", zone="b")],
        "edge-1": [_node("edge-1", tier="edge", zone="a")],
        "train": [_node("train", tier="training")],
        "bare": [{"metadata": {"name": "bare"}}],
    }
    _attach(loop, index, {})
    names = [n["metadata"]["name"] for n in watched.nodes({"tier": "edge"})]
    assert names == ["edge-1", "edge-2"]
    assert [n["metadata"]["name"] for n in watched.nodes({"tier": "edge", "zone": "b"})] == [
        "edge-2"
    ]
    assert len(watched.nodes({})) == 4
    assert watched.nodes({"tier": "gpu"}) == []


def test_pods_are_one_deployments_in_one_namespace(loop: asyncio.AbstractEventLoop) -> None:
    pods = {("a", "vib"): [_pod("vib-v2-n2"), _pod("vib-v1-n1")], ("b", "vib"): [_pod("x")]}
    _attach(loop, {}, pods)
    assert [p["metadata"]["name"] for p in watched.inference_pods("a", "vib")] == [
        "vib-v1-n1",
        "vib-v2-n2",
    ]
    assert watched.inference_pods("a", "other") == []


def test_a_read_from_the_loop_itself_does_not_wait_for_the_loop(
    loop: asyncio.AbstractEventLoop,
) -> None:
    _attach(loop, {"n": [_node("n")]}, {})

    async def read_on_loop() -> list[dict[str, Any]]:
        return watched.nodes({})

    got = asyncio.run_coroutine_threadsafe(read_on_loop(), loop).result(5)
    assert [n["metadata"]["name"] for n in got] == ["n"]


def test_reads_from_many_threads_while_the_loop_changes_the_index_never_see_it_half_changed(
    loop: asyncio.AbstractEventLoop,
) -> None:
    index: dict[str, list[dict[str, Any]]] = {}
    _attach(loop, index, {})
    stop = threading.Event()

    async def churn() -> None:
        i = 0
        while not stop.is_set():
            index[f"n{i % 500:03d}"] = [_node(f"n{i % 500:03d}", tier="edge")]
            if i % 3 == 0:
                index.pop(f"n{(i * 7) % 500:03d}", None)
            i += 1
            if i % 50 == 0:
                await asyncio.sleep(0)

    churning = asyncio.run_coroutine_threadsafe(churn(), loop)
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            # Each read waits for the busy loop to let go of the GIL (a switch interval,
            # 5 ms): a few dozen reads per thread are enough to meet the churn mid-change.
            for _ in range(30):
                names = [n["metadata"]["name"] for n in watched.nodes({"tier": "edge"})]
                assert names == sorted(names)
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    stop.set()
    churning.result(10)
    assert not any(t.is_alive() for t in threads), "a read never returned"
    assert not errors, errors


# What an index keeps of a node or pod must be enough for every plan that reads it: the
# fleet a rollout sees is the same from the slim bodies as from the full ones.
_NODE_NAMES = ["edge-0", "edge-1", "edge-2", "edge-3"]


@st.composite
def _full_node(draw: st.DrawFn, name: str) -> dict[str, Any]:
    ready = draw(st.sampled_from(["True", "False", "Unknown", None]))
    conditions = [
        {"type": "MemoryPressure", "status": "False", "message": "kubelet has memory"},
    ]
    if ready is not None:
        conditions.append(
            {"type": "Ready", "status": ready, "reason": "KubeletReady", "message": "ok"}
        )
    return {
        "metadata": {
            "name": name,
            "uid": f"uid-{name}",
            "labels": {ZONE_LABEL: draw(st.sampled_from(["a", "b", ""])), "tier": "edge"},
            "managedFields": [{"manager": "kubelet", "fieldsV1": {"f:status": {}}}],
        },
        "spec": {"podCIDR": "10.0.0.0/24", "taints": []},
        "status": {
            "conditions": conditions,
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
            "images": [{"names": ["edgeml/serving:0.1"], "sizeBytes": 123}],
        },
    }


@st.composite
def _full_pod(draw: st.DrawFn, index: int) -> dict[str, Any]:
    node = draw(st.sampled_from([*_NODE_NAMES, "elsewhere"]))
    version = draw(st.sampled_from(["1", "2", "x"]))
    meta: dict[str, Any] = {
        "name": f"vib-{index}",
        "namespace": "shop",
        "uid": f"uid-{index}",
        "creationTimestamp": f"2026-12-01T00:00:{draw(st.integers(0, 9)):02d}Z",
        "labels": {VERSION_LABEL: version, DEPLOYMENT_LABEL: "vib"},
        "annotations": {NODE_ANNOTATION: node, SHA256_ANNOTATION: f"sha-{version}"},
        "managedFields": [{"manager": "edgeml", "fieldsV1": {"f:metadata": {}}}],
    }
    if draw(st.booleans()) and draw(st.booleans()):
        meta["deletionTimestamp"] = "2026-12-01T00:01:00Z"
    ready = draw(st.sampled_from(["True", "False"]))
    return {
        "metadata": meta,
        "spec": {
            "nodeName": node,
            "containers": [{"name": "serve", "image": "edgeml/serving:0.1", "args": ["serve"]}],
            "volumes": [{"name": "model", "emptyDir": {}}],
        },
        "status": {
            "phase": draw(st.sampled_from(["Pending", "Running", "Failed", "Succeeded"])),
            "podIP": f"127.0.0.{index + 2}",
            "conditions": [{"type": "Ready", "status": ready, "message": "containers ready"}],
            "containerStatuses": [{"name": "serve", "ready": ready == "True"}],
        },
    }


@st.composite
def _fleet_bodies(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    nodes = [draw(_full_node(name)) for name in _NODE_NAMES]
    pods = [draw(_full_pod(i)) for i in range(draw(st.integers(0, 8)))]
    return nodes, pods


@given(_fleet_bodies(), st.sampled_from([Version(1, "sha-1"), Version(2, "sha-2")]))
def test_the_fleet_the_plans_see_is_the_same_from_slim_bodies(
    bodies: tuple[list[dict[str, Any]], list[dict[str, Any]]], target: Version
) -> None:
    nodes, pods = bodies
    slim_nodes = [watched.slim_node(n) for n in nodes]
    slim_pods = [watched.slim_pod(p) for p in pods]
    refused = [p["metadata"]["name"] for p in pods[:1]]
    full, slim = observe_fleet(nodes, pods, refused), observe_fleet(slim_nodes, slim_pods, refused)
    assert full.nodes == slim.nodes

    def names(objs: Any) -> list[str]:
        return [o["metadata"]["name"] for o in objs]

    assert names(full.extra) == names(slim.extra)
    assert {k: v["metadata"]["name"] for k, v in full.pods.items()} == {
        k: v["metadata"]["name"] for k, v in slim.pods.items()
    }
    assert names(verification_candidates(nodes, pods, target)) == names(
        verification_candidates(slim_nodes, slim_pods, target)
    )
    assert names(serving_pods(full, target, 3)) == names(serving_pods(slim, target, 3))


@given(_full_pod(3), _full_node("edge-0"))
def test_a_slim_pod_keeps_its_address_binding_and_container_states_and_no_spec_else(
    pod: dict[str, Any], full_node: dict[str, Any]
) -> None:
    slim = watched.slim_pod(pod)
    assert slim["status"]["podIP"] == pod["status"]["podIP"]
    assert slim["spec"] == {"nodeName": pod["spec"]["nodeName"]}
    assert slim["status"]["containerStatuses"] == pod["status"]["containerStatuses"]
    assert "managedFields" not in slim["metadata"]
    slim["metadata"]["labels"]["changed"] = "yes"  # a copy: the watch's body is untouched
    assert "changed" not in pod["metadata"]["labels"]
    node = watched.slim_node(full_node)
    assert set(node["metadata"]) <= {"name", "labels"}
    assert all("message" not in c for c in node["status"]["conditions"])
