"""Reads of the watched nodes and pods: filtered and sorted as a list from the API server
would be, copied on kopf's loop (the indexes change there) whichever thread asks."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from edgeml.controllers import watched


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
            for _ in range(200):
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
    assert not errors, errors
