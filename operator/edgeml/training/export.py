"""The fitted estimator as ONNX, and the check that the ONNX model predicts the same.

The model has one float32 input named `input` of shape [None, n_inputs] (categorical
columns already one-hot encoded, see `datasets.py`). Classifiers output `label` and
`probabilities` (a plain [None, n_classes] tensor: zipmap is off where the converter
has the option); regressors output `variable` ([None, 1]). How raw rows become inputs is
stored in the model's metadata under `edgeml.io/encoding` (JSON: columns, categorical,
inputs), so the model file alone says how to call it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx

from edgeml.training.datasets import Task
from edgeml.training.errors import TrainingError
from edgeml.training.session import INPUT_NAME, onnx_session

ENCODING_METADATA_KEY = "edgeml.io/encoding"


def convert_to_onnx(
    estimator: Any, n_inputs: int, task: Task, encoding: dict[str, Any], class_path: str
) -> onnx.ModelProto:
    """The estimator as an ONNX model; a converter that is missing or fails is
    `ConversionFailed`."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    initial_types = [(INPUT_NAME, FloatTensorType([None, n_inputs]))]
    options: dict[int, dict[str, Any]] | None = (
        {id(estimator): {"zipmap": False}} if task == "classification" else None
    )
    try:
        try:
            model = convert_sklearn(estimator, initial_types=initial_types, options=options)
        except NameError as exc:
            # Converters without the zipmap option (LinearSVC...) already output tensors.
            if options is None or "zipmap" not in str(exc):
                raise
            model = convert_sklearn(estimator, initial_types=initial_types)
    except Exception as exc:  # skl2onnx raises RuntimeError, NameError, TypeError...
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TrainingError(
            "ConversionFailed", f"skl2onnx cannot convert {class_path}: {first}"
        ) from exc
    if not isinstance(model, onnx.ModelProto):
        raise TrainingError("ConversionFailed", f"skl2onnx returned no ONNX model for {class_path}")
    # skl2onnx names the graph with a random uuid; a fixed name keeps the bytes (and the
    # sha256) the same when the same data and seed give the same estimator.
    model.graph.name = class_path.rsplit(".", 1)[-1]
    entry = model.metadata_props.add()
    entry.key = ENCODING_METADATA_KEY
    entry.value = json.dumps(encoding, separators=(",", ":"))
    return model


@dataclass(frozen=True)
class Parity:
    """How close the ONNX model came to the estimator on the held-out rows."""

    rows: int
    max_difference: float
    """The largest probability (or relative prediction) difference seen."""
    tied_rows: int = 0
    """Rows where the labels differ only because the top probabilities tie."""


def check_parity(
    model_bytes: bytes,
    estimator: Any,
    features: npt.NDArray[np.float32],
    task: Task,
    tolerance: float,
) -> Parity:
    """Run both on the same rows; labels must be identical (except where the top
    probabilities tie) and probabilities (or regression predictions, relative to their
    size when above 1) within `tolerance`.

    Anything else is `ParityFailed`, naming the worst row and its difference.
    """
    session = onnx_session(model_bytes)
    outputs = session.run(None, {INPUT_NAME: features})
    if task == "regression":
        return _regression_parity(
            np.asarray(outputs[0], dtype=np.float64).reshape(-1),
            np.asarray(estimator.predict(features), dtype=np.float64).reshape(-1),
            tolerance,
        )
    onnx_labels = np.asarray(outputs[0]).reshape(-1)
    sk_labels = np.asarray(estimator.predict(features)).reshape(-1)
    has_proba = hasattr(estimator, "predict_proba") and len(outputs) >= 2
    sk_proba = (
        np.asarray(estimator.predict_proba(features), dtype=np.float64) if has_proba else None
    )
    differ = np.flatnonzero(onnx_labels.astype(str) != sk_labels.astype(str))
    tied = _ties(differ, onnx_labels, estimator, sk_proba, tolerance)
    wrong = np.setdiff1d(differ, tied)
    if wrong.size:
        row = int(wrong[0])
        raise TrainingError(
            "ParityFailed",
            f"the ONNX model predicts another label on {wrong.size} of {len(sk_labels)} "
            f"held-out rows (first: row {row}, ONNX {_label(onnx_labels[row])}, "
            f"scikit-learn {_label(sk_labels[row])})",
        )
    if sk_proba is None:
        return Parity(rows=len(sk_labels), max_difference=0.0, tied_rows=int(tied.size))
    onnx_proba = np.asarray(outputs[1], dtype=np.float64)
    if onnx_proba.shape != sk_proba.shape:
        raise TrainingError(
            "ParityFailed",
            f"the ONNX model's probabilities have shape {onnx_proba.shape}, "
            f"scikit-learn's {sk_proba.shape}",
        )
    difference = np.abs(onnx_proba - sk_proba)
    worst = np.unravel_index(int(np.argmax(difference)), difference.shape)
    largest = float(difference[worst])
    if not largest <= tolerance:  # also catches NaN
        row, column = int(worst[0]), int(worst[1])
        raise TrainingError(
            "ParityFailed",
            f"probability of class {_label(estimator.classes_[column])} on held-out row {row} "
            f"differs by {largest:.3g} (ONNX {onnx_proba[row, column]:.6g}, scikit-learn "
            f"{sk_proba[row, column]:.6g}); evaluation.parityTolerance is {tolerance:g}",
        )
    return Parity(rows=len(sk_labels), max_difference=largest, tied_rows=int(tied.size))


def _label(value: Any) -> str:
    """A label as a person writes it: 1 or 'ok', not np.int64(1)."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def _ties(
    differ: npt.NDArray[np.intp],
    onnx_labels: npt.NDArray[Any],
    estimator: Any,
    sk_proba: npt.NDArray[np.float64] | None,
    tolerance: float,
) -> npt.NDArray[np.intp]:
    """The differing rows where scikit-learn's probability of the ONNX label is within
    `tolerance` of its top probability: a tie (10 trees of 20 each way), which either
    runtime may break its own way (float32 sums make 0.5 into 0.50000006)."""
    if sk_proba is None or differ.size == 0:
        return np.empty(0, dtype=np.intp)
    column = {str(c): i for i, c in enumerate(estimator.classes_)}
    tied = [
        row
        for row in differ
        if str(onnx_labels[row]) in column
        and sk_proba[row].max() - sk_proba[row, column[str(onnx_labels[row])]] <= tolerance
    ]
    return np.asarray(tied, dtype=np.intp)


def _regression_parity(
    onnx_pred: npt.NDArray[np.float64], sk_pred: npt.NDArray[np.float64], tolerance: float
) -> Parity:
    # Relative above 1: float32 keeps about 7 significant digits, whatever the scale.
    scale = np.maximum(1.0, np.abs(sk_pred))
    difference = np.abs(onnx_pred - sk_pred) / scale
    row = int(np.argmax(difference)) if difference.size else 0
    largest = float(difference[row]) if difference.size else 0.0
    if not largest <= tolerance:
        raise TrainingError(
            "ParityFailed",
            f"prediction on held-out row {row} differs by {largest:.3g} (relative; ONNX "
            f"{onnx_pred[row]:.6g}, scikit-learn {sk_pred[row]:.6g}); "
            f"evaluation.parityTolerance is {tolerance:g}",
        )
    return Parity(rows=int(difference.size), max_difference=largest)
