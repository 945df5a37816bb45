"""Reading the training data and checking it before anything is fitted.

`fetch_dataset` is the only I/O here (file:// and http(s)://); `parse_table` and
`prepare_dataset` are pure: bytes in, a checked numeric matrix out, or a
`TrainingError` whose message names the column at fault.

Categorical features are one-hot encoded here: a column `site` with values `a`, `b`
becomes the numeric inputs `site=a`, `site=b` (1.0 or 0.0), in place of `site` in the
feature order. Categories are the sorted distinct values as text (integral numbers
written without a decimal point). The exported ONNX model takes the expanded numeric
inputs, so a caller must expand rows the same way (the encoding travels with the model,
see `export.py`); a category not seen in training expands to all zeros.
"""

from __future__ import annotations

import hashlib
import io
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd  # type: ignore[import-untyped,unused-ignore]

from edgeml.api.edgemodel import Dataset
from edgeml.training.errors import TrainingError

MIN_ROWS = 20
"""Fewer usable rows than this cannot be split into a training and a held-out part."""
MAX_MISSING_SHARE = 0.5
"""Rows with a missing value are dropped, unless more than this share of them would be."""
MAX_CATEGORIES = 1000
"""A categorical column with more distinct values than this is refused (likely an id)."""
HTTP_TIMEOUT_SECONDS = 60.0

Task = Literal["classification", "regression"]


@dataclass(frozen=True)
class PreparedData:
    """The checked data: a float32 feature matrix, the target, and how it was made."""

    features: npt.NDArray[np.float32]
    """Rows x inputs, categorical columns already one-hot encoded."""
    target: npt.NDArray[Any]
    """The target per row (numbers, or text labels)."""
    slices: npt.NDArray[np.str_] | None
    """The slice column's value per row, as text, when a slice column is set."""
    columns: list[str]
    """The feature columns as the dataset names them, in order."""
    inputs: list[str]
    """The model's input names, in order (categorical columns expanded to `col=value`)."""
    categories: dict[str, list[str]] = field(default_factory=dict)
    """Per categorical column, the categories its one-hot inputs stand for."""
    rows_read: int = 0
    """Rows in the file."""
    rows_dropped: int = 0
    """Rows left out because a used column was missing (or infinite) in them."""

    def encoding(self) -> dict[str, Any]:
        """How raw rows become model inputs (stored with the model and the baseline)."""
        return {"columns": self.columns, "categorical": self.categories, "inputs": self.inputs}


def sha256_hex(data: bytes) -> str:
    """The SHA-256 of some bytes, as hex."""
    return hashlib.sha256(data).hexdigest()


def fetch_dataset(
    uri: str,
    *,
    timeout: float = HTTP_TIMEOUT_SECONDS,
    headers: Mapping[str, str] | None = None,
) -> bytes:
    """The raw bytes at `uri` (file:// or http(s)://).

    A missing file or a 404 is `DatasetNotFound` (exit 2); a server error, 429, timeout
    or unreachable host is `DatasetUnavailable` (exit 3, the Job retries it); object
    stores are `UnsupportedScheme` until an extra for them exists.
    """
    scheme = uri.split("://", 1)[0].lower()
    if scheme == "file":
        return _read_file(uri)
    if scheme in ("http", "https"):
        return _read_http(uri, timeout, dict(headers or {}))
    raise TrainingError(
        "UnsupportedScheme",
        f"{uri}: {scheme}:// datasets are not supported by this image; "
        "use file:// (a mounted volume) or http(s)://",
    )


def _read_file(uri: str) -> bytes:
    parsed = urllib.parse.urlparse(uri)
    if parsed.netloc not in ("", "localhost"):
        raise TrainingError(
            "InvalidUri",
            f"{uri} names the host {parsed.netloc!r}; write file:///absolute/path for a file "
            "in the pod (for example on a mounted volume)",
        )
    path = urllib.parse.unquote(parsed.path)
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError as exc:
        raise TrainingError("DatasetNotFound", f"{uri} does not exist") from exc
    except (IsADirectoryError, PermissionError) as exc:
        raise TrainingError("DatasetUnreadable", f"{uri} cannot be read: {exc.strerror}") from exc
    except OSError as exc:
        # A volume that is not ready, a stale NFS handle: may pass on a retry.
        raise TrainingError(
            "DatasetUnavailable", f"{uri} cannot be read: {exc}", transient=True
        ) from exc


def _read_http(uri: str, timeout: float, headers: dict[str, str]) -> bytes:
    request = urllib.request.Request(uri, headers=headers)  # noqa: S310 (scheme checked above)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            body: bytes = response.read()
            return body
    except urllib.error.HTTPError as exc:
        code = exc.code
        if code in (404, 410):
            raise TrainingError("DatasetNotFound", f"{uri} does not exist (HTTP {code})") from exc
        if code in (401, 403):
            raise TrainingError(
                "DatasetAccessDenied",
                f"{uri} refused access (HTTP {code}); check the dataset's credentials",
            ) from exc
        if code >= 500 or code in (408, 429):
            raise TrainingError(
                "DatasetUnavailable", f"{uri} answered HTTP {code}", transient=True
            ) from exc
        raise TrainingError("DatasetUnreadable", f"{uri} answered HTTP {code}") from exc
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        why = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise TrainingError(
            "DatasetUnavailable", f"{uri} cannot be reached: {why}", transient=True
        ) from exc


def parse_table(raw: bytes, fmt: Literal["csv", "parquet"], uri: str) -> pd.DataFrame:
    """The table in `raw`; bytes that are not a readable CSV/Parquet file are refused."""
    try:
        if fmt == "parquet":
            return pd.read_parquet(io.BytesIO(raw))
        return pd.read_csv(io.BytesIO(raw))
    except Exception as exc:  # the readers raise many types for one meaning: unreadable
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TrainingError(
            "DatasetUnreadable", f"{uri} is not a readable {fmt} file: {first}"
        ) from exc


def _column_list(names: list[str], limit: int = 20) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} columns)" if len(names) > limit else "")


def _as_text(value: Any) -> str:
    """A category or slice value as text; integral floats lose their `.0` (CSV ints with gaps)."""
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _choose_features(frame: pd.DataFrame, spec: Dataset) -> list[str]:
    columns = [str(c) for c in frame.columns]
    listing = _column_list(columns)
    if spec.target not in columns:
        raise TrainingError(
            "MissingTarget", f"column {spec.target!r} is not in the dataset (columns: {listing})"
        )
    if spec.slice_column is not None and spec.slice_column not in columns:
        raise TrainingError(
            "MissingSliceColumn",
            f"slice column {spec.slice_column!r} is not in the dataset (columns: {listing})",
        )
    if spec.features is None:
        features = [c for c in columns if c not in (spec.target, spec.slice_column)]
    else:
        features = list(dict.fromkeys(spec.features))
        for name in features:
            if name not in columns:
                raise TrainingError(
                    "MissingFeature",
                    f"feature column {name!r} is not in the dataset (columns: {listing})",
                )
            if name == spec.target:
                raise TrainingError(
                    "InvalidConfig", f"column {name!r} is the target; it cannot be a feature"
                )
            if name == spec.slice_column:
                raise TrainingError(
                    "InvalidConfig",
                    f"column {name!r} is the slice column; it cannot also be a feature",
                )
    if not features:
        raise TrainingError(
            "NoFeatures", f"the dataset has no feature columns besides the target {spec.target!r}"
        )
    for name in spec.categorical or []:
        if name not in features:
            raise TrainingError(
                "InvalidConfig", f"categorical column {name!r} is not one of the features"
            )
    return features


def _check_types(frame: pd.DataFrame, features: list[str], categorical: set[str]) -> None:
    for name in features:
        column = frame[name]
        if name in categorical or pd.api.types.is_numeric_dtype(column.dtype):
            continue
        sample = next(
            (v for v in column.dropna() if pd.isna(pd.to_numeric(v, errors="coerce"))), None
        )
        example = f" (for example {str(sample)[:40]!r})" if sample is not None else ""
        raise TrainingError(
            "NonNumericFeature",
            f"column {name!r} is not numeric{example}; declare it in dataset.categorical",
        )


def _missing_mask(frame: pd.DataFrame, used: list[str]) -> pd.DataFrame:
    """True where a used value is missing, or an infinite number (unusable as a feature)."""
    mask = frame[used].isna()
    for name in used:
        if pd.api.types.is_float_dtype(frame[name].dtype):
            mask[name] = mask[name] | np.isinf(frame[name].to_numpy(dtype=float, na_value=np.nan))
    return mask


def prepare_dataset(frame: pd.DataFrame, spec: Dataset) -> PreparedData:
    """Check the table against the dataset spec and turn it into a numeric matrix.

    Refusals, each naming the column: MissingTarget, MissingFeature, MissingSliceColumn,
    NoFeatures, InvalidConfig (target/slice listed as a feature, categorical not a
    feature), EmptyColumn, NonNumericFeature, TooManyCategories, TooManyMissing (more
    than half of the rows have a missing value), NotEnoughRows (fewer than 20 usable).
    """
    features = _choose_features(frame, spec)
    categorical = set(spec.categorical or [])
    used = [spec.target, *features]
    if spec.slice_column is not None:
        used.append(spec.slice_column)
    for name in used:
        if frame[name].isna().all():
            raise TrainingError("EmptyColumn", f"column {name!r} has no values")
    _check_types(frame, features, categorical)

    rows_read = len(frame)
    mask = _missing_mask(frame, used)
    dropped_rows = mask.any(axis=1)
    dropped = int(dropped_rows.sum())
    if rows_read and dropped > MAX_MISSING_SHARE * rows_read:
        worst = str(mask.sum().idxmax())
        raise TrainingError(
            "TooManyMissing",
            f"{dropped} of {rows_read} rows have a missing value (most in column {worst!r}: "
            f"{int(mask[worst].sum())}); at most half may be dropped",
        )
    kept = frame.loc[~dropped_rows]
    if len(kept) < MIN_ROWS:
        raise TrainingError(
            "NotEnoughRows",
            f"{len(kept)} usable rows (of {rows_read}, {dropped} with missing values); "
            f"at least {MIN_ROWS} are needed",
        )

    blocks: list[npt.NDArray[np.float32]] = []
    inputs: list[str] = []
    categories: dict[str, list[str]] = {}
    for name in features:
        column = kept[name]
        if name in categorical:
            text = column.map(_as_text)
            values = sorted(set(text))
            if len(values) > MAX_CATEGORIES:
                raise TrainingError(
                    "TooManyCategories",
                    f"categorical column {name!r} has {len(values)} distinct values "
                    f"(at most {MAX_CATEGORIES}); is it an identifier?",
                )
            categories[name] = values
            onehot = np.stack([(text == v).to_numpy() for v in values], axis=1)
            blocks.append(onehot.astype(np.float32))
            inputs.extend(f"{name}={v}" for v in values)
        else:
            blocks.append(column.to_numpy(dtype=np.float64).astype(np.float32).reshape(-1, 1))
            inputs.append(name)
    slices = None
    if spec.slice_column is not None:
        slices = np.array([_as_text(v) for v in kept[spec.slice_column]], dtype=np.str_)
    return PreparedData(
        features=np.hstack(blocks),
        target=kept[spec.target].to_numpy(),
        slices=slices,
        columns=features,
        inputs=inputs,
        categories=categories,
        rows_read=rows_read,
        rows_dropped=dropped,
    )


def prepare_target(target: npt.NDArray[Any], task: Task, name: str) -> npt.NDArray[Any]:
    """The target in a form the estimator and skl2onnx both handle.

    Regression needs numbers (float64). Classification labels become int64 when they
    are integral numbers or booleans, text otherwise; a classifier on fractional numbers,
    or on a single class, is refused.
    """
    if task == "regression":
        if not pd.api.types.is_numeric_dtype(target.dtype) or target.dtype == bool:
            raise TrainingError(
                "NonNumericTarget", f"target {name!r} is not numeric; a regressor needs numbers"
            )
        return target.astype(np.float64)
    if target.dtype == bool:
        labels: npt.NDArray[Any] = target.astype(np.int64)
    elif pd.api.types.is_numeric_dtype(target.dtype):
        as_float = target.astype(np.float64)
        if not np.all(np.mod(as_float, 1) == 0):
            raise TrainingError(
                "InvalidTarget",
                f"target {name!r} has fractional numbers; use a regressor, or integer or "
                "text labels for a classifier",
            )
        labels = as_float.astype(np.int64)
    else:
        labels = np.array([_as_text(v) for v in target], dtype=object)
    if len(np.unique(labels)) < 2:
        raise TrainingError(
            "SingleClass", f"target {name!r} has a single class; a classifier needs two or more"
        )
    return labels
