"""Small generated datasets and configs for the training program's unit tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification, make_regression


def classification_frame(rows: int = 200, features: int = 5, classes: int = 2) -> pd.DataFrame:
    """A separable-enough classification table: f0..fN and `label`."""
    x, y = make_classification(
        n_samples=rows,
        n_features=features,
        n_informative=min(features, 3),
        n_redundant=0,
        n_classes=classes,
        random_state=0,
    )
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(features)])
    frame["label"] = y
    return frame


def regression_frame(rows: int = 200, features: int = 5) -> pd.DataFrame:
    """A regression table: f0..fN and `target`."""
    x, y = make_regression(n_samples=rows, n_features=features, noise=0.5, random_state=0)
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(features)])
    frame["target"] = y
    return frame


def write(frame: pd.DataFrame, path: Path) -> str:
    """Write as CSV or Parquet by suffix; the file:// URI."""
    if path.suffix == ".parquet":
        frame.to_parquet(path)
    else:
        frame.to_csv(path, index=False)
    return path.as_uri()


def training_config(
    uri: str,
    *,
    target: str = "label",
    estimator: str = "sklearn.linear_model.LogisticRegression",
    params: dict[str, Any] | None = None,
    dataset: dict[str, Any] | None = None,
    evaluation: dict[str, Any] | None = None,
    **top: Any,
) -> dict[str, Any]:
    """A config document for `main`, in the operator's camelCase."""
    return {
        "registeredModel": "unit-model",
        "namespace": "unit",
        "trainingRun": "run-1",
        "trainingRunUid": "uid-1",
        "trigger": "Manual",
        "allowedModules": ["sklearn"],
        "training": {
            "dataset": {"uri": uri, "target": target, **(dataset or {})},
            "estimator": {"class": estimator, "params": params or {}},
            "evaluation": evaluation or {},
        },
        **top,
    }


class Data:
    """The helpers above, handed to tests as one fixture (test modules cannot import
    conftest under importlib mode)."""

    classification = staticmethod(classification_frame)
    regression = staticmethod(regression_frame)
    write = staticmethod(write)
    config = staticmethod(training_config)


@pytest.fixture
def data() -> type[Data]:
    """Dataset and config helpers."""
    return Data


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded random generator."""
    return np.random.default_rng(0)
