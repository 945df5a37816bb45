"""Reading and checking the dataset: each refusal names its column and reason."""

from __future__ import annotations

import http.server
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from edgeml.api.edgemodel import Dataset
from edgeml.training.datasets import (
    fetch_dataset,
    parse_table,
    prepare_dataset,
    prepare_target,
    sha256_hex,
)
from edgeml.training.errors import TrainingError
from support.httpd import serving


def _spec(**fields: Any) -> Dataset:
    return Dataset.model_validate({"uri": "file:///x.csv", "target": "label", **fields})


def _refusal(frame: pd.DataFrame, **fields: Any) -> TrainingError:
    with pytest.raises(TrainingError) as caught:
        prepare_dataset(frame, _spec(**fields))
    return caught.value


# --- fetching -------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_reads_csv_and_parquet_with_the_sha256_of_the_raw_bytes(
    data: Any, tmp_path: Path, suffix: str
) -> None:
    frame = data.classification(rows=50)
    uri = data.write(frame, tmp_path / f"d{suffix}")
    raw = fetch_dataset(uri)
    assert sha256_hex(raw) == sha256_hex((tmp_path / f"d{suffix}").read_bytes())
    parsed = parse_table(raw, "parquet" if suffix == ".parquet" else "csv", uri)
    assert list(parsed.columns) == list(frame.columns)
    assert len(parsed) == 50


def test_a_missing_file_is_dataset_not_found(tmp_path: Path) -> None:
    uri = (tmp_path / "v.csv").as_uri()
    with pytest.raises(TrainingError) as caught:
        fetch_dataset(uri)
    assert caught.value.line() == f"DatasetNotFound: {uri} does not exist"
    assert caught.value.exit_code == 2


def test_file_uri_with_a_host_is_refused() -> None:
    with pytest.raises(TrainingError) as caught:
        fetch_dataset("file://data/v.csv")
    assert caught.value.reason == "InvalidUri"


@pytest.mark.parametrize("uri", ["gs://bucket/v.csv", "gs://bucket/v.parquet"])
def test_object_stores_are_an_unsupported_scheme(uri: str) -> None:
    with pytest.raises(TrainingError) as caught:
        fetch_dataset(uri)
    assert caught.value.reason == "UnsupportedScheme"
    assert caught.value.exit_code == 2


class _Handler(http.server.BaseHTTPRequestHandler):
    body = b"a,label\n1,0\n"

    def do_GET(self) -> None:
        status = {"/ok.csv": 200, "/gone.csv": 404, "/broken.csv": 503, "/secret.csv": 403}.get(
            self.path, 404
        )
        self.send_response(status)
        self.end_headers()
        if status == 200:
            self.wfile.write(self.body + self.headers.get("Authorization", "").encode())

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def http_base() -> Iterator[str]:
    with serving(_Handler) as base:
        yield base


def test_http_dataset_is_read_with_its_headers(http_base: str) -> None:
    raw = fetch_dataset(f"{http_base}/ok.csv", headers={"Authorization": "Bearer t"})
    assert raw == b"a,label\n1,0\nBearer t"


@pytest.mark.parametrize(
    ("path", "reason", "exit_code"),
    [
        ("/gone.csv", "DatasetNotFound", 2),
        ("/secret.csv", "DatasetAccessDenied", 2),
        ("/broken.csv", "DatasetUnavailable", 3),
    ],
)
def test_http_errors_are_classified(http_base: str, path: str, reason: str, exit_code: int) -> None:
    with pytest.raises(TrainingError) as caught:
        fetch_dataset(f"{http_base}{path}")
    assert (caught.value.reason, caught.value.exit_code) == (reason, exit_code)


def test_unreachable_http_server_is_transient() -> None:
    with pytest.raises(TrainingError) as caught:
        fetch_dataset("http://127.0.0.1:1/v.csv", timeout=2)
    assert (caught.value.reason, caught.value.exit_code) == ("DatasetUnavailable", 3)


def test_garbage_is_dataset_unreadable() -> None:
    with pytest.raises(TrainingError) as caught:
        parse_table(b"\x00\x01 not parquet", "parquet", "file:///x.parquet")
    assert caught.value.reason == "DatasetUnreadable"


# --- checks ---------------------------------------------------------------------------


def test_missing_target_lists_the_columns(data: Any) -> None:
    error = _refusal(data.classification(rows=30, features=3), target="y")
    assert error.line() == (
        "MissingTarget: column 'y' is not in the dataset (columns: f0, f1, f2, label)"
    )


def test_missing_declared_feature(data: Any) -> None:
    error = _refusal(data.classification(rows=30), features=["f0", "nope"])
    assert error.reason == "MissingFeature"
    assert "'nope'" in error.message


def test_missing_slice_column(data: Any) -> None:
    assert _refusal(data.classification(rows=30), sliceColumn="site").reason == (
        "MissingSliceColumn"
    )


def test_text_feature_must_be_declared_categorical(data: Any) -> None:
    frame = data.classification(rows=30)
    frame["site"] = ["a", "b", "c"] * 10
    error = _refusal(frame)
    assert error.reason == "NonNumericFeature"
    assert error.message == (
        "column 'site' is not numeric (for example 'a'); declare it in dataset.categorical"
    )


def test_empty_column_is_named(data: Any) -> None:
    frame = data.classification(rows=30)
    frame["f1"] = np.nan
    error = _refusal(frame)
    assert error.line() == "EmptyColumn: column 'f1' has no values"


def test_too_few_rows(data: Any) -> None:
    error = _refusal(data.classification(rows=19))
    assert error.reason == "NotEnoughRows"
    assert "19 usable rows" in error.message


def test_rows_with_missing_values_are_dropped_and_counted(data: Any) -> None:
    frame = data.classification(rows=40)
    frame.loc[[1, 5, 7], "f2"] = np.nan
    frame.loc[9, "f0"] = np.inf
    prepared = prepare_dataset(frame, _spec())
    assert (prepared.rows_read, prepared.rows_dropped) == (40, 4)
    assert prepared.features.shape == (36, 5)
    assert prepared.features.dtype == np.float32
    assert np.isfinite(prepared.features).all()


def test_more_than_half_missing_is_refused_naming_the_worst_column(data: Any) -> None:
    frame = data.classification(rows=40)
    frame.loc[:24, "f3"] = np.nan
    error = _refusal(frame)
    assert error.reason == "TooManyMissing"
    assert "'f3'" in error.message


def test_features_default_to_all_but_target_and_slice(data: Any) -> None:
    frame = data.classification(rows=30, features=3)
    frame["site"] = ["north", "south"] * 15
    prepared = prepare_dataset(frame, _spec(sliceColumn="site"))
    assert prepared.inputs == ["f0", "f1", "f2"]
    assert prepared.slices is not None
    assert set(prepared.slices.tolist()) == {"north", "south"}


def test_target_listed_as_feature_is_invalid_config(data: Any) -> None:
    assert _refusal(data.classification(rows=30), features=["f0", "label"]).reason == (
        "InvalidConfig"
    )


def test_categorical_must_be_a_feature(data: Any) -> None:
    error = _refusal(data.classification(rows=30), features=["f0"], categorical=["f1"])
    assert error.reason == "InvalidConfig"


def test_categorical_columns_are_one_hot_encoded_in_place(data: Any) -> None:
    frame = data.classification(rows=30, features=2)
    frame.insert(1, "site", ["b", "a", "c"] * 10)
    frame["zone"] = [1.0, 2.0] * 15  # integral numbers as categories: written without .0
    prepared = prepare_dataset(frame, _spec(categorical=["site", "zone"]))
    assert prepared.columns == ["f0", "site", "f1", "zone"]
    assert prepared.inputs == ["f0", "site=a", "site=b", "site=c", "f1", "zone=1", "zone=2"]
    assert prepared.categories == {"site": ["a", "b", "c"], "zone": ["1", "2"]}
    # Row 0 is site b, zone 1.
    assert prepared.features[0, 1:4].tolist() == [0.0, 1.0, 0.0]
    assert prepared.features[0, 5:].tolist() == [1.0, 0.0]
    assert prepared.features[:, 1:4].sum(axis=1).tolist() == [1.0] * 30
    assert prepared.encoding()["inputs"] == prepared.inputs


# --- target -----------------------------------------------------------------------------


def test_regression_target_must_be_numeric() -> None:
    with pytest.raises(TrainingError) as caught:
        prepare_target(np.array(["a", "b"], dtype=object), "regression", "y")
    assert caught.value.reason == "NonNumericTarget"


def test_classification_labels_become_integers_or_text() -> None:
    assert prepare_target(np.array([0.0, 1.0, 1.0]), "classification", "y").dtype == np.int64
    assert prepare_target(np.array([True, False]), "classification", "y").dtype == np.int64
    text = prepare_target(np.array(["ok", "fail"], dtype=object), "classification", "y")
    assert text.tolist() == ["ok", "fail"]


def test_classifier_on_fractions_or_one_class_is_refused() -> None:
    with pytest.raises(TrainingError, match="InvalidTarget"):
        prepare_target(np.array([0.5, 1.0]), "classification", "y")
    with pytest.raises(TrainingError, match="SingleClass"):
        prepare_target(np.array([1, 1, 1]), "classification", "y")
