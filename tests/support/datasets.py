"""Small generated datasets written where training pods can read them (a hostPath dir)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.datasets import make_classification

FEATURES = [f"f{i}" for i in range(8)]


def write_vibration(directory: Path, rows: int = 800, seed: int = 7) -> Path:
    """A binary classification CSV: eight numeric features and a `label` column."""
    x, y = make_classification(
        n_samples=rows,
        n_features=len(FEATURES),
        n_informative=5,
        n_redundant=1,
        class_sep=1.2,
        random_state=seed,
    )
    frame = pd.DataFrame(x, columns=FEATURES)
    frame["label"] = y
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "vibration.csv"
    frame.to_csv(path, index=False)
    return path


def write_with_text_column(directory: Path, rows: int = 200) -> Path:
    """Like `write_vibration`, plus a text column that is not declared categorical."""
    frame = pd.read_csv(write_vibration(directory, rows))
    frame["site"] = np.where(np.arange(rows) % 2 == 0, "north", "south")
    path = directory / "with_site.csv"
    frame.to_csv(path, index=False)
    return path
