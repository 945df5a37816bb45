"""The status merge patch: only what changed, removed keys as null, nothing if equal."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeml.controllers.reconcile import status_patch

# No deadline: these run on shared, busy machines; 50 examples keep the suite quick.
PROPERTY = settings(max_examples=50, deadline=None)


def apply_merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386, as the API server applies application/merge-patch+json."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply_merge_patch(result.get(key), value)
    return result


@pytest.mark.parametrize(
    ("old", "new", "patch"),
    [
        (None, {}, {}),
        ({}, {}, {}),
        (None, {"phase": "Pending"}, {"phase": "Pending"}),
        ({"phase": "Pending"}, {"phase": "Pending"}, {}),
        ({"phase": "Pending"}, {"phase": "Ready"}, {"phase": "Ready"}),
        (
            {"phase": "Pending", "observedGeneration": 1},
            {"phase": "Pending", "observedGeneration": 2},
            {"observedGeneration": 2},
        ),
        ({"phase": "Pending", "job": "j"}, {"phase": "Pending"}, {"job": None}),
        ({"job": "j"}, {"phase": "Failed"}, {"phase": "Failed", "job": None}),
        (
            {"conditions": [{"type": "Ready", "status": "False"}]},
            {"conditions": [{"type": "Ready", "status": "True"}]},
            {"conditions": [{"type": "Ready", "status": "True"}]},
        ),
        (
            {"target": {"version": 1, "nodes": 0}},
            {"target": {"version": 2, "nodes": 0}},
            {"target": {"version": 2}},  # only what changed, at any depth
        ),
        ({"scores": {"a": 0.1}}, {"scores": {}}, {"scores": {"a": None}}),  # removed key
    ],
)
def test_status_patch(
    old: dict[str, Any] | None, new: dict[str, Any], patch: dict[str, Any]
) -> None:
    assert status_patch(old, new) == patch


def test_status_patch_does_not_change_its_inputs() -> None:
    old = {"phase": "Pending", "job": "j"}
    new = {"phase": "Ready"}
    status_patch(old, new)
    assert (old, new) == ({"phase": "Pending", "job": "j"}, {"phase": "Ready"})


def test_applying_the_patch_drops_a_nested_key_the_new_status_lacks() -> None:
    old = {"target": {"version": 1, "sha256": "aa", "nodes": 0, "ready": 0}}
    new = {"target": {"version": 2, "nodes": 0, "ready": 0}}
    assert apply_merge_patch(old, status_patch(old, new)) == new


# --- properties ------------------------------------------------------------------------------

KEYS = st.sampled_from(["phase", "job", "observedGeneration", "conditions", "target", "drifted"])
SCALARS = st.one_of(st.booleans(), st.integers(-5, 5), st.text(max_size=3))
LEAVES = st.one_of(SCALARS, st.lists(SCALARS, max_size=3))
STATUSES = st.dictionaries(KEYS, LEAVES)


@PROPERTY
@given(STATUSES)
def test_an_unchanged_status_is_an_empty_patch(status: dict[str, Any]) -> None:
    assert status_patch(status, copy.deepcopy(status)) == {}


@PROPERTY
@given(st.none() | STATUSES, STATUSES)
def test_applying_the_patch_gives_the_new_status(
    old: dict[str, Any] | None, new: dict[str, Any]
) -> None:
    assert apply_merge_patch(old or {}, status_patch(old, new)) == new


@PROPERTY
@given(st.none() | STATUSES, STATUSES)
def test_the_patch_names_only_changed_keys(old: dict[str, Any] | None, new: dict[str, Any]) -> None:
    patch = status_patch(old, new)
    before = old or {}
    for key, value in patch.items():
        if value is None:
            assert key in before
            assert key not in new
        else:
            assert new[key] == value
            assert before.get(key) != value


def test_a_refused_child_keeps_the_status_and_says_so_on_ready() -> None:
    from datetime import UTC, datetime

    from edgeml.api.edgedeployment import EdgeDeploymentStatus
    from edgeml.api.kinds import EdgeDeployment
    from edgeml.controllers.handlers import BY_KIND
    from edgeml.controllers.reconcile import refusal_status
    from edgeml.plans.parsing import parse
    from support.objects import edge_deployment

    body = edge_deployment()
    body["metadata"].update(namespace="ml", generation=3)
    body["status"] = {"phase": "Progressing", "observedGeneration": 2, "message": "wave 1"}
    parsed = parse(EdgeDeployment, EdgeDeploymentStatus, body)
    at = datetime(2026, 1, 1, tzinfo=UTC)
    refusal = "Service ml/vibration-edge: HTTP 500: failed to allocate a serviceIP"
    status = refusal_status(BY_KIND["EdgeDeployment"], parsed, refusal, at)
    assert (status.phase, status.observed_generation, status.message) == (
        "Progressing",
        2,
        "wave 1",
    )
    (ready,) = [c for c in status.conditions if c.type == "Ready"]
    assert (ready.status, ready.reason, ready.observed_generation) == ("False", "ApplyFailed", 3)
    assert ready.message.startswith(f"The API server refused a child object: {refusal}.")
