"""s3:// datasets on a real S3 server (the local cluster's versitygw): reading a prefix,
the data version the trainer records and the operator's probe sees, and the errors."""

from __future__ import annotations

import http.server
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest

from edgeml.api.edgemodel import Dataset
from edgeml.datasource import location, s3
from edgeml.datasource.errors import DataSourceError
from edgeml.datasource.probe import observe
from edgeml.training.datasets import read_dataset
from edgeml.training.errors import TrainingError
from localcluster.objectstore import secret_data
from support.httpd import serving
from support.objectstore import Bucket


def _env() -> dict[str, str]:
    return {f"EDGEML_DATASET_{k}": v for k, v in secret_data().items()}


def _frame(rows: int, offset: int = 0) -> pd.DataFrame:
    return pd.DataFrame(
        {"a": [float(i + offset) for i in range(rows)], "label": [i % 2 for i in range(rows)]}
    )


def _dataset(bucket: Bucket, key: str, **extra: Any) -> Dataset:
    return Dataset.model_validate(
        {"uri": bucket.uri(key), "target": "label", "s3": {"endpoint": bucket.endpoint}, **extra}
    )


def test_a_prefix_is_read_as_one_table_in_key_order(bucket: Bucket) -> None:
    bucket.put_csv("vib/2026-01.csv", _frame(3))
    bucket.put_csv("vib/2026-02.csv", _frame(2, offset=100))
    bucket.put_bytes("vib/README.txt", b"not data")
    bucket.put_csv("other/x.csv", _frame(5))
    fetched = read_dataset(_dataset(bucket, "vib/"), _env())
    assert fetched.frame["a"].tolist() == [0.0, 1.0, 2.0, 100.0, 101.0]
    assert [o["key"] for o in fetched.objects] == ["vib/2026-01.csv", "vib/2026-02.csv"]
    assert all(o["etag"] and len(o["sha256"]) == 64 for o in fetched.objects)
    # The operator's look and the trainer's read agree on the version.
    assert observe(_dataset(bucket, "vib/"), secret_data()).data_version == fetched.data_version


def test_newest_reads_only_the_last_partition(bucket: Bucket) -> None:
    bucket.put_csv("vib/2026-01.csv", _frame(3))
    bucket.put_csv("vib/2026-02.csv", _frame(2, offset=100))
    fetched = read_dataset(_dataset(bucket, "vib/", select="Newest"), _env())
    assert fetched.frame["a"].tolist() == [100.0, 101.0]
    seen = observe(_dataset(bucket, "vib/", select="Newest"), secret_data())
    assert (seen.objects, seen.newest) == (1, "vib/2026-02.csv")
    assert seen.data_version == fetched.data_version


def test_the_data_version_changes_with_a_new_object_and_not_with_the_same_bytes(
    bucket: Bucket,
) -> None:
    dataset = _dataset(bucket, "vib/")
    bucket.put_csv("vib/a.csv", _frame(3))
    first = observe(dataset, secret_data())
    bucket.put_csv("vib/a.csv", _frame(3))  # the same object again
    assert observe(dataset, secret_data()).data_version == first.data_version
    bucket.put_csv("vib/b.csv", _frame(3, offset=7))
    second = observe(dataset, secret_data())
    assert second.data_version != first.data_version
    assert (second.objects, second.newest) == (2, "vib/b.csv")


def test_a_single_object_is_read_and_versioned(bucket: Bucket) -> None:
    bucket.put_csv("one.csv", _frame(4))
    fetched = read_dataset(_dataset(bucket, "one.csv"), _env())
    assert len(fetched.frame) == 4
    assert observe(_dataset(bucket, "one.csv"), secret_data()).data_version == (
        fetched.data_version
    )


def _refusal(dataset: Dataset, env: dict[str, str]) -> TrainingError:
    with pytest.raises(TrainingError) as caught:
        read_dataset(dataset, env)
    return caught.value


def test_an_empty_prefix_is_refused_with_what_it_holds(bucket: Bucket) -> None:
    bucket.put_bytes("vib/notes.txt", b"hello")
    error = _refusal(_dataset(bucket, "vib/"), _env())
    assert (error.reason, error.exit_code) == ("DatasetEmpty", 2)
    assert "holds no .csv objects (1 other objects)" in error.message


def test_wrong_credentials_are_access_denied(bucket: Bucket) -> None:
    bucket.put_csv("vib/a.csv", _frame(3))
    env = {**_env(), "EDGEML_DATASET_AWS_SECRET_ACCESS_KEY": "wrong"}
    error = _refusal(_dataset(bucket, "vib/"), env)
    assert (error.reason, error.exit_code) == ("DatasetAccessDenied", 2)
    assert "s3.credentialsSecretRef" in error.message


def test_no_credentials_are_unsigned_and_refused_by_a_private_bucket(bucket: Bucket) -> None:
    bucket.put_csv("vib/a.csv", _frame(3))
    error = _refusal(_dataset(bucket, "vib/"), {})
    assert error.reason == "DatasetAccessDenied"


def test_a_missing_bucket_is_not_found(bucket: Bucket) -> None:
    dataset = Dataset.model_validate(
        {"uri": "s3://no-such-bucket-here/x/", "target": "label",
         "s3": {"endpoint": bucket.endpoint}}
    )  # fmt: skip
    assert _refusal(dataset, _env()).reason == "DatasetNotFound"


def test_a_store_that_is_down_is_transient() -> None:
    dataset = Dataset.model_validate(
        {"uri": "s3://edgeml/x/", "target": "label", "s3": {"endpoint": "http://127.0.0.1:9"}}
    )
    error = _refusal(dataset, _env())
    assert (error.reason, error.exit_code) == ("ObjectStoreUnavailable", 3)


def test_objects_with_other_columns_are_refused_by_name(bucket: Bucket) -> None:
    bucket.put_csv("vib/a.csv", _frame(3))
    bucket.put_csv("vib/b.csv", _frame(3).rename(columns={"a": "b"}))
    error = _refusal(_dataset(bucket, "vib/"), _env())
    assert error.reason == "DatasetUnreadable"
    assert "s3://" in error.message
    assert "vib/b.csv" in error.message


class _Versioned(http.server.BaseHTTPRequestHandler):
    etag: str | None = '"v1"'

    def _answer(self, body: bool) -> None:
        self.send_response(200)
        if _Versioned.etag:
            self.send_header("ETag", _Versioned.etag)
        self.send_header("Content-Length", "12")
        self.end_headers()
        if body:
            self.wfile.write(b"a,label\n1,0\n")

    def do_GET(self) -> None:
        self._answer(True)

    def do_HEAD(self) -> None:
        self._answer(False)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def http_base() -> Iterator[str]:
    with serving(_Versioned) as base:
        yield base
    _Versioned.etag = '"v1"'


def test_an_http_dataset_is_versioned_by_its_etag(http_base: str) -> None:
    dataset = Dataset.model_validate({"uri": f"{http_base}/d.csv", "target": "label"})
    fetched = read_dataset(dataset, {})
    assert observe(dataset).data_version == fetched.data_version
    _Versioned.etag = '"v2"'
    assert observe(dataset).data_version != fetched.data_version


def test_an_http_server_without_version_headers_cannot_be_watched(http_base: str) -> None:
    _Versioned.etag = None
    dataset = Dataset.model_validate({"uri": f"{http_base}/d.csv", "target": "label"})
    assert read_dataset(dataset, {}).data_version is None
    with pytest.raises(Exception, match="without an ETag or Last-Modified") as caught:
        observe(dataset)
    assert getattr(caught.value, "reason", None) == "NoVersionHeaders"


def test_an_object_replaced_after_the_listing_is_not_read_unseen(bucket: Bucket) -> None:
    access = s3.S3Access.from_credentials(bucket.endpoint, "us-east-1", secret_data())
    bucket.put_csv("vib/a.csv", _frame(3))
    listed = s3.list_objects(access, location.parse_s3(bucket.uri("vib/")))
    bucket.put_csv("vib/a.csv", _frame(4))
    with pytest.raises(DataSourceError) as caught:
        s3.read_object(access, bucket.name, listed[0])
    assert (caught.value.reason, caught.value.transient) == ("DatasetChanged", True)
