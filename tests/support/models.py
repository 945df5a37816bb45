"""Model versions registered in the real MLflow server, for serving and rollout tests."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.datasets import make_classification

from edgeml.training.program import main as train_main

FEATURES = 6


@dataclass(frozen=True)
class Trained:
    """One registered version: its number, sha256 and the run behind it."""

    version: int
    sha256: str
    run_id: str


def rows(n: int = 64, seed: int = 5, features: int = FEATURES) -> np.ndarray:
    """Rows shaped like the training data, as float32."""
    x, _ = make_classification(n, features, n_informative=4, random_state=seed)
    return x.astype(np.float32)


@contextmanager
def mlflow_env(uri: str) -> Iterator[None]:
    """MLflow's tracking and registry URIs in the environment for the block, then as
    they were. Never `mlflow.set_tracking_uri`: it outlives the block and overrides the
    environment for every later test in the process."""
    keys = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
    previous = {key: os.environ.get(key) for key in keys}
    os.environ.update(dict.fromkeys(keys, uri))
    try:
        yield
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def train_version(
    registered_model: str, mlflow_uri: str, workdir: Path, *, skewed: bool = False
) -> Trained:
    """Train with `edgeml train` in-process and register the next version.

    `skewed` trains on labels that are mostly 1: a model that scores well on its own
    held-out split but answers 1 to nearly everything, where the good one answers 0 to
    about half (a prediction shift a canary analysis must catch).
    """
    x, y = make_classification(400, FEATURES, n_informative=4, random_state=5)
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(FEATURES)])
    skew = np.random.default_rng(7).random(len(y)) < 0.9
    frame["label"] = np.where(skew, 1, y) if skewed else y
    workdir.mkdir(parents=True, exist_ok=True)
    data = workdir / f"train-{uuid.uuid4().hex[:6]}.csv"
    frame.to_csv(data, index=False)
    config = {
        "registeredModel": registered_model,
        "namespace": "it",
        "trainingRun": "rollout",
        "trainingRunUid": str(uuid.uuid4()),
        "trigger": "Manual",
        "allowedModules": ["sklearn"],
        "training": {
            "dataset": {"uri": data.as_uri(), "target": "label"},
            "estimator": {"class": "sklearn.linear_model.LogisticRegression", "params": {}},
        },
    }
    log = workdir / f"termination-{uuid.uuid4().hex[:6]}"
    with mlflow_env(mlflow_uri):
        code = train_main(["--config-json", json.dumps(config), "--termination-log", str(log)])
    assert code == 0, log.read_text()
    summary: dict[str, Any] = json.loads(log.read_text())
    return Trained(int(summary["modelVersion"]), summary["sha256"], summary["runId"])


_DECIDED_TAGS = ("edgeml.io/promoted-", "edgeml.io/promotion", "edgeml.io/approval-id")


def _lineage_tags(tags: dict[str, str] | None) -> dict[str, str]:
    """A source version's tags for a copy: its lineage, not its fate (what promotion
    decided for the source is not the copy's)."""
    return {k: v for k, v in (tags or {}).items() if not k.startswith(_DECIDED_TAGS)}


def register_again(
    registered_model: str,
    mlflow_uri: str,
    of: Trained,
    *,
    sha256: str | None = None,
    source_model: str | None = None,
) -> Trained:
    """A new version of the same bytes; with `sha256`, a registry that claims other bytes
    (what a tampered or corrupted artifact looks like to a pod). `of` is a version of
    `source_model` (default: `registered_model` itself, which must exist)."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=mlflow_uri, registry_uri=mlflow_uri)
    source = client.get_model_version(source_model or registered_model, str(of.version))
    tags = _lineage_tags(source.tags)
    if sha256 is not None:
        tags["edgeml.io/sha256"] = sha256
    made = client.create_model_version(
        registered_model,
        source.source,
        run_id=source.run_id,
        tags=tags,
        # MLflow 3 sources name a logged model (models:/m-...), which must be passed too.
        model_id=source.model_id or source.source.rpartition("/")[2],
    )
    return Trained(int(made.version), tags.get("edgeml.io/sha256", of.sha256), of.run_id)


def register_failing(
    registered_model: str, mlflow_uri: str, of: Trained, features: int = FEATURES
) -> Trained:
    """A new version of `of` whose graph loads and serves health checks but fails every
    single-row inference at run time: its input goes through a Reshape to [-1, 7], which
    a row of 6 features cannot take (what a model exported with a broken shape looks like).
    Registered with its true sha256, so it passes verification and only errors."""
    with mlflow_env(mlflow_uri):
        return _register_copy(
            registered_model, mlflow_uri, of, lambda model: fails_on_single_rows(model, features)
        )


def _register_copy(
    registered_model: str, mlflow_uri: str, of: Trained, change: Callable[[Any], Any] | None
) -> Trained:
    """A new version of `of`'s ONNX graph (changed by `change`) in a run of its own, which
    logs no drift baseline, tagged like `of` but with its own sha256."""
    import mlflow
    import onnx
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=mlflow_uri, registry_uri=mlflow_uri)
    source = client.get_model_version(registered_model, str(of.version))
    with tempfile.TemporaryDirectory() as scratch:
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=f"models:/{registered_model}/{of.version}",
            dst_path=scratch,
            tracking_uri=mlflow_uri,
        )
        model = onnx.load(str(Path(local) / "model.onnx"))
    if change is not None:
        model = change(model)
        onnx.checker.check_model(model)
    with mlflow.start_run(experiment_id=client.get_run(of.run_id).info.experiment_id) as run:
        info = mlflow.onnx.log_model(model, name="model")
    made = client.create_model_version(
        registered_model, info.model_uri, run_id=run.info.run_id, model_id=info.model_id
    )
    with tempfile.TemporaryDirectory() as scratch:
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=f"models:/{registered_model}/{made.version}",
            dst_path=scratch,
            tracking_uri=mlflow_uri,
        )
        sha256 = hashlib.sha256((Path(local) / "model.onnx").read_bytes()).hexdigest()
    tags = {**_lineage_tags(source.tags), "edgeml.io/sha256": sha256}
    for key, value in tags.items():
        client.set_model_version_tag(registered_model, str(made.version), key, value)
    return Trained(int(made.version), sha256, run.info.run_id)


def fails_on_single_rows(model: Any, features: int = FEATURES) -> Any:
    """The ONNX model with its input routed through Reshape [-1, 7] then [-1, features]:
    it loads and declares the same inputs, but a batch whose size is not a multiple of 7
    (one row, say) fails inside the graph at run time."""
    import onnx
    from onnx import helper, numpy_helper

    broken = onnx.ModelProto()
    broken.CopyFrom(model)
    graph = broken.graph
    feed = graph.input[0].name
    for node in graph.node:
        node.input[:] = ["broken_rows" if name == feed else name for name in node.input]
    graph.initializer.extend(
        [
            numpy_helper.from_array(np.array([-1, 7], np.int64), "broken_shape_7"),
            numpy_helper.from_array(np.array([-1, features], np.int64), "broken_shape_rows"),
        ]
    )
    nodes = [
        helper.make_node("Reshape", [feed, "broken_shape_7"], ["broken_7"]),
        helper.make_node("Reshape", ["broken_7", "broken_shape_rows"], ["broken_rows"]),
        *graph.node,
    ]
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.checker.check_model(broken)
    return broken


def register_without_baseline(registered_model: str, mlflow_uri: str, of: Trained) -> Trained:
    """A new version of `of`'s ONNX bytes logged in a run of its own that has no drift
    baseline (what a version registered by another tool looks like)."""
    with mlflow_env(mlflow_uri):
        return _register_copy(registered_model, mlflow_uri, of, None)
