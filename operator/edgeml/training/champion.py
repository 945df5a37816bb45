"""The fair comparison: the current champion scored on this run's own held-out rows.

After drift the champion's logged metrics were measured on the old data, so comparing
them with a version trained and evaluated on new data says nothing. The training Job
therefore also runs the champion's ONNX model (downloaded from the registry, its
sha256 checked) on the new run's held-out rows and logs those numbers as
`champion.<metric>`; the promotion gates compare like with like.

A champion that cannot be scored on these rows (other inputs, another label type) is
not an error: the run records a note and the gates fall back to the champion's own
metrics, saying so.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from edgeml.registry.versions import CHAMPION_METRIC_PREFIX as METRIC_PREFIX
from edgeml.training import evaluation
from edgeml.training.config import ChampionReference
from edgeml.training.datasets import Task
from edgeml.training.errors import TrainingError
from edgeml.training.session import INPUT_NAME, onnx_session

log = logging.getLogger("edgeml.train")


@dataclass(frozen=True)
class ChampionScore:
    """The champion's metrics on this run's held-out rows (empty when it could not be
    scored; the notes say why)."""

    version: int
    metrics: dict[str, float]
    notes: list[str]

    @property
    def run_metrics(self) -> dict[str, float]:
        """As logged on the MLflow run."""
        return {f"{METRIC_PREFIX}{k}": v for k, v in self.metrics.items()}


def _labels_like(predicted: npt.NDArray[Any], y_true: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """The champion's labels in the dtype of this run's target (ValueError if impossible)."""
    if y_true.dtype == object:
        return np.array([str(v) for v in predicted], dtype=object)
    return predicted.astype(y_true.dtype)


def predict(
    model_bytes: bytes,
    x: npt.NDArray[np.float32],
    task: Task,
    y_true: npt.NDArray[Any],
    classes: npt.NDArray[Any] | None,
) -> tuple[npt.NDArray[Any], npt.NDArray[Any] | None]:
    """The champion's predictions (and probabilities, when they line up with `classes`)."""
    outputs = onnx_session(model_bytes).run(None, {INPUT_NAME: x})
    if task == "regression":
        return np.asarray(outputs[0], dtype=np.float64).reshape(-1), None
    labels = _labels_like(np.asarray(outputs[0]).reshape(-1), y_true)
    proba = None
    if len(outputs) >= 2 and classes is not None:
        candidate = np.asarray(outputs[1], dtype=np.float64)
        # skl2onnx orders the columns by the sorted classes, as scikit-learn does.
        if candidate.ndim == 2 and candidate.shape == (len(x), len(classes)):
            proba = candidate
    return labels, proba


def score_model(
    model_bytes: bytes,
    version: int,
    x_test: npt.NDArray[np.float32],
    y_test: npt.NDArray[Any],
    task: Task,
    metric_names: Sequence[str],
    classes: npt.NDArray[Any] | None,
) -> ChampionScore:
    """Score an ONNX model on the held-out rows, with the run's own metric definitions."""
    try:
        labels, proba = predict(model_bytes, x_test, task, y_test, classes)
        metrics, notes = evaluation.compute_metrics(
            task, metric_names, y_test, labels, proba, classes
        )
    except Exception as exc:  # onnxruntime and scikit-learn raise their own types
        return ChampionScore(
            version, {}, [f"champion version {version} could not be scored on these rows: {exc}"]
        )
    return ChampionScore(version, metrics, [f"champion version {version}: {n}" for n in notes])


def score_champion(
    champion: ChampionReference,
    registered_model: str,
    inputs: Sequence[str],
    x_test: npt.NDArray[np.float32],
    y_test: npt.NDArray[Any],
    task: Task,
    metric_names: Sequence[str],
    classes: npt.NDArray[Any] | None,
) -> ChampionScore:
    """Download the champion from the registry and score it on this run's held-out rows;
    a champion that cannot be had (deleted, its run purged) is a note, an outage an error."""
    version = champion.version
    try:
        return _score_champion(
            champion, registered_model, inputs, x_test, y_test, task, metric_names, classes
        )
    except TrainingError as err:
        if err.transient:
            raise  # the registry is down: the Job's retry is the answer
        # A champion deleted from the registry, a purged run: compare with nothing.
        return ChampionScore(version, {}, [f"champion version {version} was not scored: {err}"])


def _score_champion(
    champion: ChampionReference,
    registered_model: str,
    inputs: Sequence[str],
    x_test: npt.NDArray[np.float32],
    y_test: npt.NDArray[Any],
    task: Task,
    metric_names: Sequence[str],
    classes: npt.NDArray[Any] | None,
) -> ChampionScore:
    import mlflow
    from mlflow import MlflowClient

    from edgeml.training.tracking import registry_errors

    version = champion.version
    name = registered_model
    with registry_errors(f"reading champion version {version} of {name}"):
        mv = MlflowClient().get_model_version(name, str(version))
        params = MlflowClient().get_run(mv.run_id).data.params if mv.run_id else {}
    theirs = params.get("dataset.features")
    ours = ",".join(inputs)
    # MLflow params are cut at 6000 characters (tracking._param_value): compare the prefix.
    cut = theirs is not None and theirs.endswith("...")
    if theirs is not None and (ours[: len(theirs) - 3] != theirs[:-3] if cut else theirs != ours):
        return ChampionScore(
            version,
            {},
            [
                f"champion version {version} takes other inputs ({theirs[:200]}) than this "
                f"run ({','.join(inputs)[:200]}); the gates compare with its own metrics"
            ],
        )
    with (
        registry_errors(f"downloading champion version {version} of {name}"),
        tempfile.TemporaryDirectory(prefix="edgeml-champion-") as tmp,
    ):
        local = Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=f"models:/{name}/{version}", dst_path=tmp
            )
        )
        path = local / "model.onnx"
        if not path.is_file():
            return ChampionScore(version, {}, [f"champion version {version} holds no model.onnx"])
        model_bytes = path.read_bytes()
    digest = hashlib.sha256(model_bytes).hexdigest()
    if champion.sha256 and digest != champion.sha256:
        return ChampionScore(
            version,
            {},
            [
                f"champion version {version} downloaded with sha256 {digest}, not the "
                f"registered {champion.sha256}; not scored"
            ],
        )
    score = score_model(model_bytes, version, x_test, y_test, task, metric_names, classes)
    log.info(
        "champion version %d on this run's %d held-out rows: %s",
        version, len(y_test), ", ".join(f"{k} {v:.4g}" for k, v in score.metrics.items()),
    )  # fmt: skip
    return score
