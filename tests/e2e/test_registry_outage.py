"""MLflow stops while a TrainingRun trains: the run reports why, retries per its backoff
limit, and succeeds once MLflow is back; the EdgeModel reports the outage meanwhile."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from localcluster.cluster import supervisor
from support.cluster import ClusterHandle
from support.datasets import write_vibration
from support.objects import edge_model, training_run
from support.operator import OperatorProcess
from support.wait import wait_for

GROUP, VERSION = "edgeml.io", "v1alpha1"


def _get(custom: client.CustomObjectsApi, ns: str, plural: str, name: str) -> dict[str, Any]:
    return dict(custom.get_namespaced_custom_object(GROUP, VERSION, ns, plural, name))


def _condition(obj: dict[str, Any], cond_type: str) -> dict[str, Any]:
    conds = (obj.get("status") or {}).get("conditions", [])
    return next((c for c in conds if c["type"] == cond_type), {})


def test_training_survives_an_mlflow_outage_by_retrying(
    cluster: ClusterHandle,
    operator: OperatorProcess,
    custom: client.CustomObjectsApi,
    batch: client.BatchV1Api,
    core: client.CoreV1Api,
    namespace: str,
    tmp_path: Path,
) -> None:
    if cluster.settings is None:
        pytest.skip("stopping MLflow is only possible on the local cluster")
    data = tmp_path / "data"
    write_vibration(data, rows=300)
    model = edge_model(
        registry={"registeredModel": f"outage-{namespace.rsplit('-', 1)[-1]}"},
        training={
            "dataset": {"uri": "file:///data/vibration.csv", "target": "label"},
            "estimator": {"class": "sklearn.linear_model.LogisticRegression", "params": {}},
            "volumes": [{"name": "data", "hostPath": {"path": str(data), "type": "Directory"}}],
            "volumeMounts": [{"name": "data", "mountPath": "/data"}],
            "backoffLimit": 3,
        },
    )
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "edgemodels", model)
    sup = supervisor(cluster.settings)
    assert sup.stop("mlflow"), "MLflow was expected to be running"
    try:
        custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, "trainingruns", training_run()
        )
        # The first attempt fails on the registry, and the Job will retry.
        wait_for(
            lambda: batch.read_namespaced_job("vibration-1-train", namespace).status,
            lambda s: (s.failed or 0) >= 1,
            timeout=120,
            what="the first training attempt to fail while MLflow is down",
        )
        pods = core.list_namespaced_pod(
            namespace, label_selector="job-name=vibration-1-train"
        ).items
        messages = [
            cs.state.terminated.message
            for p in pods
            for cs in p.status.container_statuses or []
            if cs.state.terminated is not None and cs.state.terminated.exit_code == 3
        ]
        assert any(m.startswith("RegistryUnavailable: ") for m in messages), messages
        outage = wait_for(
            lambda: _get(custom, namespace, "edgemodels", "vibration"),
            lambda m: _condition(m, "RegistryAvailable").get("status") == "False",
            timeout=40,
            what="the EdgeModel to report RegistryAvailable=False",
        )
        assert _condition(outage, "RegistryAvailable")["reason"] == "RegistryUnavailable"
    finally:
        restarted = cluster.cli("up")
        assert restarted.returncode == 0, restarted.stderr
    run = wait_for(
        lambda: _get(custom, namespace, "trainingruns", "vibration-1"),
        lambda r: (r.get("status") or {}).get("phase") in ("Succeeded", "Failed"),
        timeout=240,
        what="the retried run to finish once MLflow is back",
    )
    assert run["status"]["phase"] == "Succeeded", run["status"]
    assert run["status"]["modelVersion"] == 1  # retries never register twice
    wait_for(
        lambda: _get(custom, namespace, "edgemodels", "vibration"),
        lambda m: (
            _condition(m, "RegistryAvailable").get("status") == "True"
            and ((m["status"].get("champion") or {}).get("version") == 1)
        ),
        timeout=60,
        what="the EdgeModel to see the registry again and promote version 1",
    )
