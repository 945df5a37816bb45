"""Orchestration overhead of training: a TrainingRun on the cluster vs `edgeml train` run directly.

Both sides train the same model on the same data and register a version in the same
MLflow server. Direct: `edgeml train --config-json ...` as a local process. Through the
operator: apply a TrainingRun, and time until its status says Succeeded (the version is
registered before that; the MLflow version's creation time is reported too).

Needs the local cluster up (`hack/cluster up`) and the operator installed from
`manifests/overlays/local` (`hack/demo` does both). Writes a section of docs/benchmarks.md.

    PYTHONPATH=hack:operator .venv/bin/python bench/training_overhead.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubernetes import client, config
from mlflow import MlflowClient
from sklearn.datasets import make_classification

from localcluster.settings import Settings

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "benchmarks.md"
NAMESPACE = "bench-training"
ROWS, FEATURES = 5000, 10
ESTIMATOR = {"class": "sklearn.ensemble.RandomForestClassifier", "params": {"n_estimators": 100}}


def _dataset(directory: Path) -> Path:
    import pandas as pd

    x, y = make_classification(n_samples=ROWS, n_features=FEATURES, n_informative=6, random_state=3)
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(FEATURES)])
    frame["label"] = y
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "bench.csv"
    frame.to_csv(path, index=False)
    return path


def _training(uri: str) -> dict[str, Any]:
    return {"dataset": {"uri": uri, "target": "label"}, "estimator": ESTIMATOR}


def run_direct(csv: Path, mlflow_uri: str, model: str) -> float:
    """Wall time of one `edgeml train` process, start to exit."""
    cfg = {
        "registeredModel": model,
        "namespace": NAMESPACE,
        "trainingRun": "direct",
        "trainingRunUid": uuid.uuid4().hex,
        "trigger": "Manual",
        "training": _training(f"file://{csv}"),
    }
    with tempfile.NamedTemporaryFile(suffix=".log") as log:
        started = time.perf_counter()
        done = subprocess.run(
            [
                str(REPO / ".venv" / "bin" / "edgeml"),
                "train",
                "--config-json",
                json.dumps(cfg),
                "--termination-log",
                log.name,
            ],
            env={**os.environ, "MLFLOW_TRACKING_URI": mlflow_uri},
            capture_output=True,
            text=True,
            check=False,
        )
        took = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(
                f"edgeml train failed: {Path(log.name).read_text()}\n{done.stderr[-2000:]}"
            )
    return took


def run_operator(
    custom: client.CustomObjectsApi, registry: MlflowClient, model: str, name: str
) -> tuple[float, float]:
    """(seconds from apply to Succeeded, seconds from apply to the version's creation)."""
    body = {
        "apiVersion": "edgeml.io/v1alpha1",
        "kind": "TrainingRun",
        "metadata": {"name": name},
        "spec": {"modelRef": {"name": "bench"}, "trigger": "Manual"},
    }
    applied = time.time()
    started = time.perf_counter()
    custom.create_namespaced_custom_object("edgeml.io", "v1alpha1", NAMESPACE, "trainingruns", body)
    while True:
        run = custom.get_namespaced_custom_object(
            "edgeml.io", "v1alpha1", NAMESPACE, "trainingruns", name
        )
        phase = (run.get("status") or {}).get("phase")
        if phase == "Succeeded":
            took = time.perf_counter() - started
            break
        if phase == "Failed":
            raise SystemExit(f"TrainingRun {name} failed: {run['status'].get('failureReason')}")
        if time.perf_counter() - started > 300:
            raise SystemExit(f"TrainingRun {name} did not finish in 300 s")
        time.sleep(0.1)
    version = registry.get_model_version(model, str(run["status"]["modelVersion"]))
    return took, version.creation_timestamp / 1000 - applied


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    settings = Settings()
    print("preparing: dataset, namespace, EdgeModel", flush=True)
    data_dir = settings.cluster_dir / "bench-data"
    csv = _dataset(data_dir)
    api = config.new_client_from_config(config_file=str(settings.kubeconfig))
    core, custom, apps = client.CoreV1Api(api), client.CustomObjectsApi(api), client.AppsV1Api(api)
    deployment = apps.read_namespaced_deployment("edgeml", "edgeml-system")
    if not deployment.status.available_replicas:
        raise SystemExit("the in-cluster operator is not running: run hack/demo first")
    stamp = datetime.now(UTC).strftime("%H%M%S")
    model = f"bench-training-{stamp}"
    try:
        core.create_namespace({"metadata": {"name": NAMESPACE}})
    except client.ApiException as err:
        if err.status != 409:
            raise
    custom.create_namespaced_custom_object(
        "edgeml.io",
        "v1alpha1",
        NAMESPACE,
        "edgemodels",
        {
            "apiVersion": "edgeml.io/v1alpha1",
            "kind": "EdgeModel",
            "metadata": {"name": "bench"},
            "spec": {
                "registry": {"registeredModel": model},
                "training": {
                    **_training("file:///data/bench.csv"),
                    "volumes": [
                        {"name": "data", "hostPath": {"path": str(data_dir), "type": "Directory"}}
                    ],
                    "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                },
            },
        },
    )
    registry = MlflowClient(tracking_uri=settings.mlflow_uri, registry_uri=settings.mlflow_uri)
    direct, through, registered = [], [], []
    try:
        for i in range(args.rounds):
            direct.append(run_direct(csv, settings.mlflow_uri, model + "-direct"))
            print(f"  round {i + 1}: direct {direct[-1]:.2f}s", flush=True)
            t, r = run_operator(custom, registry, model, f"bench-{stamp}-{i}")
            through.append(t)
            registered.append(r)
            print(
                f"  round {i + 1}: TrainingRun {t:.2f}s (version registered at {r:.2f}s)",
                flush=True,
            )
    finally:
        core.delete_namespace(NAMESPACE)
    load = os.getloadavg()[0]
    d, o, r = statistics.median(direct), statistics.median(through), statistics.median(registered)
    section = f"""<!-- bench:training begin -->
## Training: orchestration overhead

Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {os.cpu_count()} CPUs, load average {load:.1f};
command: `PYTHONPATH=hack:operator .venv/bin/python bench/training_overhead.py \\
--rounds {args.rounds}`.
RandomForest(100 trees) on {ROWS} rows x {FEATURES} features, the same MLflow server for both.
Median of {args.rounds} rounds.

| path | seconds |
| --- | ---: |
| `edgeml train` run directly (process start to exit, version registered) | {d:.2f} |
| TrainingRun applied → version registered in MLflow | {r:.2f} |
| TrainingRun applied → status Succeeded | {o:.2f} |
| **overhead ratio** (applied → Succeeded, over direct) | **{o / d:.2f}x** |

The difference is Kubernetes at work: the Job controller creating the pod, scheduling,
the process node starting it (network namespace, volumes, token), and after exit the
Job controller's completion and the operator's status update.
<!-- bench:training end -->
"""
    intro = "# Benchmarks\n\nResults of the scripts in `bench/`.\n"
    text = DOC.read_text() if DOC.exists() else intro
    begin, end = "<!-- bench:training begin -->", "<!-- bench:training end -->"
    if begin in text:
        text = text[: text.index(begin)] + section.strip() + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip() + "\n\n" + section
    DOC.write_text(text)
    print(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
