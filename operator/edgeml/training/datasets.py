"""Reading the training data and checking it before anything is fitted.

`read_dataset` and `fetch_dataset` are the only I/O here (file:// directly, http(s)://
and s3:// through edgeml.datasource); `parse_table` and
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
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd  # type: ignore[import-untyped,unused-ignore]

from edgeml.api.edgemodel import Dataset
from edgeml.datasource import http, location, s3
from edgeml.datasource.errors import DataSourceError
from edgeml.training.errors import TrainingError

MIN_ROWS = 20
"""Fewer usable rows than this cannot be split into a training and a held-out part."""
MAX_MISSING_SHARE = 0.5
"""Rows with a missing value are dropped, unless more than this share of them would be."""
MAX_CATEGORIES = 1000
"""A categorical column with more distinct values than this is refused (likely an id)."""
HTTP_TIMEOUT_SECONDS = 60.0
AUTHORIZATION_ENV = "EDGEML_DATASET_AUTHORIZATION"

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


@dataclass(frozen=True)
class Fetched:
    """A dataset as read: its table, and what the lineage records of it."""

    frame: pd.DataFrame
    sha256: str
    """SHA-256 of the bytes read (of every object's bytes in read order, for a prefix)."""
    data_version: str | None
    """The data version the operator's NewData trigger compares (datasource.location);
    None for a file:// dataset or an http(s) server that sends no ETag/Last-Modified."""
    objects: list[dict[str, Any]] = field(default_factory=list)
    """For an s3:// dataset, each object read (key, ETag, size, version, sha256)."""


def _training_error(exc: DataSourceError) -> TrainingError:
    return TrainingError(exc.reason, exc.message, transient=exc.transient)


def read_dataset(dataset: Dataset, env: Mapping[str, str]) -> Fetched:
    """Read and parse a dataset of any supported scheme.

    http(s):// sends EDGEML_DATASET_AUTHORIZATION as the Authorization header; s3://
    signs with EDGEML_DATASET_AWS_ACCESS_KEY_ID / _SECRET_ACCESS_KEY (/ _SESSION_TOKEN)
    when set, and an s3:// prefix reads its objects as one table (`select`).
    """
    uri = dataset.uri
    if uri.startswith("s3://"):
        return _read_s3(dataset, env)
    headers = {"Authorization": env[AUTHORIZATION_ENV]} if env.get(AUTHORIZATION_ENV) else {}
    version: str | None = None
    if uri.startswith(("http://", "https://")):
        try:
            response = http.fetch(uri, headers)
        except DataSourceError as exc:
            raise _training_error(exc) from exc
        raw = response.body
        version = location.http_data_version(uri, response.etag, response.last_modified)
    else:
        raw = fetch_dataset(uri)
    return Fetched(parse_table(raw, dataset.format, uri), sha256_hex(raw), version)


def _read_s3(dataset: Dataset, env: Mapping[str, str]) -> Fetched:
    keys = {key: env.get(f"EDGEML_DATASET_{key}", "") for key in s3.CREDENTIAL_KEYS}
    access = s3.access_for(dataset, keys)
    where = location.parse_s3(dataset.uri)
    try:
        listed = s3.list_objects(access, where)
        chosen = location.chosen_objects(listed, where, dataset.format, dataset.select)
        digest = hashlib.sha256()
        frames: list[pd.DataFrame] = []
        objects: list[dict[str, Any]] = []
        for obj in chosen:
            body = s3.read_object(access, where.bucket, obj)
            digest.update(body)
            frames.append(parse_table(body, dataset.format, f"s3://{where.bucket}/{obj.key}"))
            objects.append({**obj.to_json(), "sha256": sha256_hex(body)})
    except DataSourceError as exc:
        raise _training_error(exc) from exc
    first = list(frames[0].columns)
    for obj, frame in zip(chosen[1:], frames[1:], strict=True):
        if list(frame.columns) != first:
            raise TrainingError(
                "DatasetUnreadable",
                f"s3://{where.bucket}/{obj.key} has the columns {list(frame.columns)}, "
                f"not those of s3://{where.bucket}/{chosen[0].key} ({first}); every object "
                "under a prefix must have the same columns",
            )
    frame = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    version = location.s3_data_version(dataset.uri, dataset.select, chosen)
    return Fetched(frame, digest.hexdigest(), version, objects)


def fetch_dataset(
    uri: str,
    *,
    timeout: float = HTTP_TIMEOUT_SECONDS,
    headers: Mapping[str, str] | None = None,
) -> bytes:
    """The raw bytes at a file:// or http(s):// `uri`.

    A missing file or a 404 is `DatasetNotFound` (exit 2); a server error, 429, timeout
    or unreachable host is `DatasetUnavailable` (exit 3, the Job retries it); s3:// is
    read by `read_dataset`, other schemes are `UnsupportedScheme`.
    """
    scheme = uri.split("://", 1)[0].lower()
    if scheme == "file":
        return _read_file(uri)
    if scheme in ("http", "https"):
        try:
            return http.fetch(uri, headers, timeout=timeout).body
        except DataSourceError as exc:
            raise _training_error(exc) from exc
    raise TrainingError(
        "UnsupportedScheme",
        f"{uri}: {scheme}:// datasets are not supported by this image; "
        "use file:// (a mounted volume), http(s):// or s3://",
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
