"""The closed loop's setup: season A's model serving on the process nodes, following the
champion alias, and next season's data beside it.

Shared by the retraining e2e test and bench/retrain_chaos.py, so the bench's counts come
from the loop the test checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from kubernetes import client
from sklearn.datasets import make_classification

from support.models import FEATURES, Trained, train_version
from support.objects import drift_policy, edge_deployment, hermetic_edge_model
from support.rollout import ANALYSED, GROUP, PROCESS_EDGE, VERSION, Rollout

POLICY_LABEL = "edgeml.io/drift-policy"
_ERRORS = [{"name": "error-rate", "max": 0.05}]
ERRORS_ONLY = {
    "canary": {
        **ANALYSED["canary"],
        # After drift a retrained model should answer differently: only errors gate.
        "analysis": {**ANALYSED["canary"]["analysis"], "metrics": _ERRORS},
    }
}
"""One node, an 8 s analysis of the error rate, then every node."""


def season_a() -> tuple[np.ndarray, np.ndarray]:
    """The first season, which the first champion is trained on."""
    x, y = make_classification(400, FEATURES, n_informative=4, random_state=5)
    return x.astype(np.float32), y


def season_b(rows: int = 1200) -> tuple[np.ndarray, np.ndarray]:
    """Another season: other informative directions, and two inputs moved."""
    x, y = make_classification(rows, FEATURES, n_informative=4, random_state=11)
    x[:, :2] += 2.5
    return x.astype(np.float32), y


def frame_of(x: np.ndarray, y: np.ndarray) -> pd.DataFrame:
    """Rows as the training program reads them: f0..f5 and label."""
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(FEATURES)])
    frame["label"] = y
    return frame


def write_csv(path: Path, x: np.ndarray, y: np.ndarray) -> None:
    """The rows of `frame_of`, as a CSV file."""
    frame_of(x, y).to_csv(path, index=False)


@dataclass(frozen=True)
class Served:
    """The first champion, serving: its registered model, version and data directory."""

    registered: str
    first: Trained
    data: Path


def serve_first_champion(
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
    namespace: str,
    mlflow_uri: str,
    workdir: Path,
    model: str,
    deployment: str,
    *,
    gates: list[dict[str, Any]],
    strategy: dict[str, Any],
) -> Served:
    """Season A's model trained, registered and promoted by the EdgeModel's rules, and
    served on the three process nodes by a deployment that follows the champion alias.
    The data directory (mounted at /data in training Jobs) holds season-a.csv."""
    data = workdir / "data"
    data.mkdir(parents=True, exist_ok=True)
    write_csv(data / "season-a.csv", *season_a())  # what train_version trains on
    body = hermetic_edge_model(
        model,
        training={
            "dataset": {"uri": "file:///data/season-a.csv", "target": "label"},
            "estimator": {"class": "sklearn.linear_model.LogisticRegression", "params": {}},
            "volumes": [{"name": "data", "hostPath": {"path": str(data), "type": "Directory"}}],
            "volumeMounts": [{"name": "data", "mountPath": "/data", "readOnly": True}],
        },
        promotion={"mode": "Auto", "gates": gates},
    )
    registered = body["spec"]["registry"]["registeredModel"]
    first = train_version(registered, mlflow_uri, workdir)
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "edgemodels", body)
    custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, "edgedeployments",
        edge_deployment(deployment, model, nodeSelector=PROCESS_EDGE, strategy=strategy),
    )  # fmt: skip
    Rollout(custom, core, namespace, deployment).wait_phase("Healthy", first.version)
    return Served(registered, first, data)


def retrain_on_drift_policy(
    name: str, deployment: str, dataset: str | dict[str, Any]
) -> dict[str, Any]:
    """RetrainAndDeploy on drift over a one-minute window, training on `dataset` (a URI,
    or a whole dataset: an s3:// prefix with its store, say)."""
    if isinstance(dataset, str):
        dataset = {"uri": dataset, "target": "label"}
    return drift_policy(
        name,
        deployment,
        dataDrift={"method": "psi", "threshold": 0.2, "window": "1m", "minSamples": 300},
        evaluation={"interval": "5s", "consecutive": 2},
        action="RetrainAndDeploy",
        cooldown="1h",
        retraining={"overrides": {"dataset": dataset}},
    )


def policy_runs(custom: client.CustomObjectsApi, namespace: str, policy: str) -> list[Any]:
    """The TrainingRuns a policy created."""
    found = custom.list_namespaced_custom_object(
        GROUP, VERSION, namespace, "trainingruns", label_selector=f"{POLICY_LABEL}={policy}"
    )
    return list(found["items"])
