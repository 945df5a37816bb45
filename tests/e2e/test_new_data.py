"""NewData and CodeChange on the local cluster: real training Jobs that read an s3://
prefix from the cluster's object store (versitygw) with keys from a Secret, the operator
watching that prefix under its own ServiceAccount, the real MLflow.

A new object under the prefix starts exactly one TrainingRun; the same object uploaded
again starts none; a changed estimator starts one CodeChange run.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from kubernetes import client
from mlflow import MlflowClient
from sklearn.datasets import make_classification

from support.cluster import ClusterHandle
from support.objects import DELETE, drift_policy, edge_deployment, hermetic_edge_model, training_run
from support.objectstore import Bucket, create_credentials_secret
from support.operator import OperatorProcess
from support.rollout import GROUP, VERSION
from support.wait import wait_for

pytestmark = pytest.mark.timeout(600)

MODEL, POLICY = "vibration", "vibration-data"
KWOK_EDGE = {"edgeml.io/simulator": "kwok", "node-role.kubernetes.io/edge": "true"}
TRAINING_TIMEOUT = 240
LOOK_S = 10


def _season(seed: int, rows: int = 400) -> pd.DataFrame:
    x, y = make_classification(rows, 6, n_informative=4, random_state=seed)
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(6)])
    frame["label"] = y
    return frame


def _get(custom: client.CustomObjectsApi, ns: str, plural: str, name: str) -> dict[str, Any]:
    return dict(custom.get_namespaced_custom_object(GROUP, VERSION, ns, plural, name))


def _runs(custom: client.CustomObjectsApi, ns: str) -> list[dict[str, Any]]:
    found = custom.list_namespaced_custom_object(
        GROUP, VERSION, ns, "trainingruns", label_selector=f"edgeml.io/drift-policy={POLICY}"
    )
    return sorted(found["items"], key=lambda r: r["metadata"]["creationTimestamp"])


def _finished(custom: client.CustomObjectsApi, ns: str, name: str) -> dict[str, Any]:
    run = wait_for(
        lambda: _get(custom, ns, "trainingruns", name),
        lambda r: (r.get("status") or {}).get("phase") in ("Succeeded", "Failed"),
        timeout=TRAINING_TIMEOUT,
        what=f"TrainingRun {name} to finish",
    )
    assert run["status"]["phase"] == "Succeeded", run["status"]
    return run


def _condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c["type"] == kind), {})


def test_new_data_under_the_prefix_retrains_once_and_a_changed_template_once(
    cluster: ClusterHandle,
    operator: OperatorProcess,
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
    namespace: str,
    bucket: Bucket,
    tmp_path: Path,
) -> None:
    assert cluster.settings is not None
    mlflow_uri = cluster.settings.mlflow_uri
    bucket.put_csv("vibration/2026-01.csv", _season(5))
    create_credentials_secret(core, namespace, "dataset-keys")
    dataset = {
        "uri": bucket.uri("vibration/"),
        "target": "label",
        "s3": {"endpoint": bucket.endpoint, "credentialsSecretRef": {"name": "dataset-keys"}},
    }
    model = hermetic_edge_model(
        MODEL,
        training={
            "dataset": dataset,
            "estimator": {"class": "sklearn.linear_model.LogisticRegression", "params": {}},
        },
        promotion={"mode": "Auto", "gates": [{"metric": "f1", "min": 0.5}]},
    )
    registered = model["spec"]["registry"]["registeredModel"]
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "edgemodels", model)
    custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, "trainingruns", training_run("first", MODEL)
    )
    first = _finished(custom, namespace, "first")["status"]["modelVersion"]
    champion = wait_for(
        lambda: _get(custom, namespace, "edgemodels", MODEL),
        lambda m: ((m.get("status") or {}).get("champion") or {}).get("version") == first,
        timeout=60,
        what="the first version to become champion",
    )["status"]["champion"]
    assert champion["dataVersion"]
    assert champion["templateDigest"]

    # The policy watches the prefix: the champion's own data starts nothing.
    custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, "edgedeployments", edge_deployment(nodeSelector=KWOK_EDGE)
    )
    policy = drift_policy(
        POLICY,
        dataDrift=DELETE,
        newData={"interval": f"{LOOK_S}s"},
        codeChange=True,
        action="Retrain",
        cooldown="10s",
    )
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "driftpolicies", policy)
    watching = wait_for(
        lambda: _get(custom, namespace, "driftpolicies", POLICY),
        lambda o: _condition(o, "DatasetReadable").get("reason") == "Watching",
        timeout=60,
        what="the policy to look at the prefix",
    )
    assert watching["status"]["newData"]["dataVersion"] == champion["dataVersion"]
    assert watching["status"]["newData"]["objects"] == 1

    # 1. A new object lands under the prefix: one NewData run, on old and new data.
    landed = time.monotonic()
    bucket.put_csv("vibration/2026-02.csv", _season(11))
    (run,) = wait_for(
        lambda: _runs(custom, namespace), lambda r: len(r) >= 1, timeout=LOOK_S + 30,
        what="a NewData TrainingRun",
    )  # fmt: skip
    print(f"new data to TrainingRun: {time.monotonic() - landed:.0f}s (interval {LOOK_S}s)")
    assert run["spec"]["trigger"] == "NewData"
    assert run["spec"]["reason"].startswith(f"New data at {bucket.uri('vibration/')}")
    assert "(2 objects, newest vibration/2026-02.csv)" in run["spec"]["reason"]
    retrained = _finished(custom, namespace, run["metadata"]["name"])["status"]["modelVersion"]
    mlflow = MlflowClient(tracking_uri=mlflow_uri, registry_uri=mlflow_uri)
    version = mlflow.get_model_version(registered, str(retrained))
    policy_now = _get(custom, namespace, "driftpolicies", POLICY)
    assert version.tags["edgeml.io/data-version"] == policy_now["status"]["newData"]["dataVersion"]
    assert version.tags["edgeml.io/trigger"] == "NewData"
    path = mlflow.download_artifacts(version.run_id, "edgeml/dataset-objects.json", str(tmp_path))
    objects = json.loads(Path(path).read_text())
    assert [o["key"] for o in objects["objects"]] == [
        "vibration/2026-01.csv",
        "vibration/2026-02.csv",
    ]
    assert all(o["etag"] and len(o["sha256"]) == 64 for o in objects["objects"])

    # 2. The same object again: the policy looks twice more and starts nothing.
    bucket.put_csv("vibration/2026-02.csv", _season(11))
    checked = policy_now["status"]["newData"]["checked"]
    wait_for(
        lambda: _get(custom, namespace, "driftpolicies", POLICY)["status"]["newData"]["checked"],
        lambda at: at > checked,
        timeout=LOOK_S * 3 + 10,
        what="another look at the prefix",
    )
    time_of_look = _get(custom, namespace, "driftpolicies", POLICY)["status"]["newData"]["checked"]
    wait_for(
        lambda: _get(custom, namespace, "driftpolicies", POLICY)["status"]["newData"]["checked"],
        lambda at: at > time_of_look,
        timeout=LOOK_S * 3 + 10,
        what="a second look at the prefix",
    )
    assert len(_runs(custom, namespace)) == 1

    # 3. The estimator changes: one CodeChange run.
    custom.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, "edgemodels", MODEL,
        {"spec": {"training": {"estimator": {"params": {"C": 0.5}}}}},
    )  # fmt: skip
    runs = wait_for(
        lambda: _runs(custom, namespace), lambda r: len(r) >= 2, timeout=60,
        what="a CodeChange TrainingRun",
    )  # fmt: skip
    code_run = runs[-1]
    assert code_run["spec"]["trigger"] == "CodeChange"
    assert f"since champion version {first} was trained" in code_run["spec"]["reason"]
    _finished(custom, namespace, code_run["metadata"]["name"])
    final = _get(custom, namespace, "driftpolicies", POLICY)
    assert [r["trigger"] for r in final["status"]["triggeredRuns"]] == ["CodeChange", "NewData"]
    assert len(_runs(custom, namespace)) == 2
