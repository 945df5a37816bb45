"""The `edgeml` commands a person types, against the real API server."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from support.cluster import ClusterHandle
from support.objects import edge_deployment

GROUP, VERSION = "edgeml.io", "v1alpha1"


def _edgeml(*args: str, kubeconfig: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", **({"KUBECONFIG": kubeconfig} if kubeconfig else {})}
    return subprocess.run(
        [str(Path(sys.executable).parent / "edgeml"), *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def _one_line_error(result: subprocess.CompletedProcess[str], text: str) -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr == f"error: {text}\n", result.stderr


@pytest.mark.parametrize(
    ("args", "what"),
    [
        (["drift", "nope"], "DriftPolicy {ns}/nope does not exist"),
        (["rollout", "status", "nope"], "EdgeDeployment {ns}/nope does not exist"),
        (["rollout", "pause", "nope"], "EdgeDeployment {ns}/nope does not exist"),
        (["promote", "nope", "--version", "3"], "EdgeModel {ns}/nope does not exist"),
    ],
    ids=["drift", "status", "pause", "promote"],
)
def test_a_missing_object_is_one_line_not_a_traceback(
    cluster: ClusterHandle, crds: list[str], namespace: str, args: list[str], what: str
) -> None:
    _one_line_error(
        _edgeml(*args, "-n", namespace, kubeconfig=cluster.kubeconfig), what.format(ns=namespace)
    )


def _kubeconfig_in(cluster: ClusterHandle, namespace: str, path: Path) -> Path:
    """The admin kubeconfig with a second context whose namespace is `namespace`."""
    config: dict[str, Any] = yaml.safe_load(Path(cluster.kubeconfig).read_text())
    current = next(c for c in config["contexts"] if c["name"] == config["current-context"])
    config["contexts"].append(
        {"name": "team", "context": {**current["context"], "namespace": namespace}}
    )
    path.write_text(yaml.safe_dump(config))
    return path


def _set_status(custom: client.CustomObjectsApi, namespace: str, status: dict[str, Any]) -> None:
    obj = custom.get_namespaced_custom_object(
        GROUP, VERSION, namespace, "edgedeployments", "vibration-edge"
    )
    body = {"status": {**status, "observedGeneration": obj["metadata"]["generation"]}}
    custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, "edgedeployments", "vibration-edge", body
    )


def test_rollout_status_takes_the_namespace_from_the_context_and_exits_by_outcome(
    cluster: ClusterHandle,
    crds: list[str],
    custom: client.CustomObjectsApi,
    namespace: str,
    tmp_path: Path,
) -> None:
    custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, "edgedeployments", edge_deployment()
    )
    config = str(_kubeconfig_in(cluster, namespace, tmp_path / "kubeconfig"))
    # No -n: the namespace comes from the context named by --context.
    pending = _edgeml(
        "rollout", "status", "vibration-edge", "--kubeconfig", config, "--context", "team"
    )
    assert pending.returncode == 0, pending.stderr
    assert pending.stdout.splitlines()[0] == f"EdgeDeployment {namespace}/vibration-edge: Pending"
    # --watch on a rollout that does not end gives up at its timeout (exit 2).
    waiting = _edgeml("rollout", "status", "vibration-edge", "--watch", "--timeout", "2",
                      "--kubeconfig", config, "--context", "team")  # fmt: skip
    assert waiting.returncode == 2
    assert "did not end within 2 s" in waiting.stderr
    _set_status(custom, namespace, {
        "phase": "RolledBack",
        "message": "version 4 was rolled back (AnalysisFailed: error-rate 1 > 0.05.)",
        "stable": {"version": 3, "nodes": 3, "ready": 3},
        "rejectedVersions": [4],
        "rollout": {"reason": "AnalysisFailed: error-rate 1 > 0.05."},
        "canary": {"version": 4, "nodes": 0, "ready": 0, "step": 1, "analysis": [
            {"metric": "error-rate", "canary": 1.0, "stable": 0.0, "max": 0.05, "passed": False,
             "samples": 120, "measuredAt": "2026-12-01T00:00:00Z"}]},
    })  # fmt: skip
    rolled_back = _edgeml(
        "rollout", "status", "vibration-edge", "-w", "--kubeconfig", config, "--context", "team"
    )
    assert rolled_back.returncode == 1, rolled_back.stdout + rolled_back.stderr
    out = rolled_back.stdout
    assert "EdgeDeployment" in out
    assert ": RolledBack" in out
    assert "Rejected versions: 4." in out
    assert any(
        line.split()[:2] == ["error-rate", "1"] and line.split()[-1] == "no"
        for line in out.splitlines()
    )
    _set_status(custom, namespace, {"phase": "Healthy", "message": "version 3 is stable"})
    healthy = _edgeml(
        "rollout", "status", "vibration-edge", "-w", "--kubeconfig", config, "--context", "team"
    )
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr


def test_an_unknown_context_or_kubeconfig_is_one_line(
    cluster: ClusterHandle, tmp_path: Path
) -> None:
    unknown = _edgeml("drift", "x", "--kubeconfig", cluster.kubeconfig, "--context", "nowhere")
    _one_line_error(
        unknown,
        f"no usable kubeconfig: context 'nowhere' is not in {cluster.kubeconfig}",
    )
    missing = _edgeml("drift", "x", "-n", "ns", "--kubeconfig", str(tmp_path / "none"))
    _one_line_error(missing, f"no usable kubeconfig: no kubeconfig at {tmp_path / 'none'}")
