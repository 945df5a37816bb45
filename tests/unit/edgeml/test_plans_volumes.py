"""Which volumes a training template may give its Job (the confused-deputy allow-list)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgeml.config import DEFAULT_VOLUME_TYPES
from edgeml.plans.volumes import volumes_problem

SOURCES = (*DEFAULT_VOLUME_TYPES, "hostPath", "projected", "nfs", "iscsi", "gitRepo")
WHERE = "spec.training"


def _pvc(name: str = "data") -> dict[str, Any]:
    return {"name": name, "persistentVolumeClaim": {"claimName": "training-data"}}


@given(source=st.sampled_from(SOURCES), allowed=st.sets(st.sampled_from(SOURCES), min_size=1))
def test_a_volume_is_refused_exactly_when_its_source_is_outside_the_allow_list(
    source: str, allowed: set[str]
) -> None:
    volume = {"name": "v", source: {}}
    problem = volumes_problem([volume], [], sorted(allowed), WHERE)
    if source in allowed:
        assert problem is None
    else:
        assert problem is not None
        assert problem.startswith(f"spec.training.volumes[0] (v): {source} volumes are not allowed")
        assert "training.allowedVolumeTypes" in problem


def test_hostpath_is_refused_by_default_and_names_what_is_allowed() -> None:
    volume = {"name": "node", "hostPath": {"path": "/etc"}}
    assert volumes_problem([volume], [], DEFAULT_VOLUME_TYPES, WHERE) == (
        "spec.training.volumes[0] (node): hostPath volumes are not allowed; training Jobs "
        "may mount persistentVolumeClaim, configMap, secret, emptyDir, csi (the operator's "
        "training.allowedVolumeTypes, Helm value)"
    )


def test_without_an_allow_list_any_source_passes_but_mounts_are_still_checked() -> None:
    volume = {"name": "node", "hostPath": {"path": "/data"}}
    assert volumes_problem([volume], [{"name": "node", "mountPath": "/data"}], (), WHERE) is None
    assert volumes_problem([volume], [{"name": "other", "mountPath": "/x"}], (), WHERE) == (
        "spec.training.volumeMounts[0] mounts 'other', which spec.training.volumes does not define"
    )


@pytest.mark.parametrize(
    ("volumes", "mounts", "problem"),
    [
        ([_pvc()], [{"name": "data", "mountPath": "/data"}], None),
        ([{"persistentVolumeClaim": {}}], [], "spec.training.volumes[0] has no name"),
        (
            [_pvc(), _pvc()],
            [],
            "spec.training.volumes[1]: the name 'data' is used twice",
        ),
        (
            [{"name": "tmp", "emptyDir": {}}],
            [],
            "spec.training.volumes[0]: the name 'tmp' is the Job's own /tmp volume; pick another",
        ),
        (
            [{"name": "two", "emptyDir": {}, "configMap": {"name": "c"}}],
            [],
            "spec.training.volumes[0] (two) must set exactly one volume source, not: "
            "configMap, emptyDir",
        ),
        (
            [{"name": "none"}],
            [],
            "spec.training.volumes[0] (none) must set exactly one volume source, not: none",
        ),
        (
            [_pvc()],
            [{"name": "data", "mountPath": "data"}],
            "spec.training.volumeMounts[0] (data) needs an absolute mountPath",
        ),
        (
            [_pvc()],
            [{"name": "data", "mountPath": "/tmp/"}],
            "spec.training.volumeMounts[0] (data): /tmp is the Job's own scratch volume; "
            "mount elsewhere",
        ),
    ],
)
def test_volumes_and_mounts_a_job_could_not_be_created_with(
    volumes: list[dict[str, Any]], mounts: list[dict[str, Any]], problem: str | None
) -> None:
    assert volumes_problem(volumes, mounts, DEFAULT_VOLUME_TYPES, WHERE) == problem
