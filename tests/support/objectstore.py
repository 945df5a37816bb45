"""The local cluster's object store (versitygw) for tests: a fresh bucket each, emptied
and removed afterwards, and a Secret pods and the operator read the keys from."""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass
from typing import Any

import pandas as pd
from kubernetes import client as kube

from localcluster import objectstore
from localcluster.settings import Settings

DATASET_CREDENTIALS_LABEL = "edgeml.io/dataset-credentials"


@dataclass
class Bucket:
    """One test's bucket on the cluster's object store."""

    name: str
    endpoint: str
    s3: Any

    def uri(self, key: str = "") -> str:
        return f"s3://{self.name}/{key}"

    def put_csv(self, key: str, frame: pd.DataFrame) -> str:
        """Upload a table as CSV; returns its ETag."""
        body = frame.to_csv(index=False).encode()
        return str(self.s3.put_object(Bucket=self.name, Key=key, Body=body)["ETag"])

    def put_bytes(self, key: str, body: bytes) -> str:
        return str(self.s3.put_object(Bucket=self.name, Key=key, Body=body)["ETag"])

    def read_csv(self, key: str) -> pd.DataFrame:
        body = self.s3.get_object(Bucket=self.name, Key=key)["Body"].read()
        return pd.read_csv(io.BytesIO(body))

    def remove(self) -> None:
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.name)
        for page in pages:
            for item in page.get("Contents", []):
                self.s3.delete_object(Bucket=self.name, Key=item["Key"])
        self.s3.delete_bucket(Bucket=self.name)


def new_bucket(settings: Settings, stem: str = "t") -> Bucket:
    """A bucket of its own, so no test sees another's objects (or the demo's)."""
    name = f"{stem}-{uuid.uuid4().hex[:12]}"
    objectstore.ensure_bucket(settings, name)
    return Bucket(name, settings.s3_endpoint, objectstore.client(settings))


def create_credentials_secret(
    core: kube.CoreV1Api,
    namespace: str,
    name: str = "dataset-keys",
    *,
    labelled: bool = True,
    data: dict[str, str] | None = None,
) -> str:
    """A Secret with the object store's keys (labelled for the operator to read)."""
    labels = {DATASET_CREDENTIALS_LABEL: "true"} if labelled else {}
    core.create_namespaced_secret(
        namespace,
        {
            "metadata": {"name": name, "labels": labels},
            "stringData": data if data is not None else objectstore.secret_data(),
        },
    )
    return name
