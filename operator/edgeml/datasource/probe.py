"""A look at a dataset without reading it: its data version, for the NewData trigger."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from edgeml.api.edgemodel import Dataset
from edgeml.datasource import http, location, s3
from edgeml.datasource.errors import DataSourceError

PROBE_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class Observation:
    """What a look found."""

    data_version: str
    objects: int | None = None
    """How many objects the dataset reads (s3:// only)."""
    newest: str | None = None
    """The key of the most recently modified of them."""


def observe(
    dataset: Dataset,
    credentials: Mapping[str, str] | None = None,
    authorization: str | None = None,
) -> Observation:
    """The dataset's data version now: an s3:// listing, or an http(s) HEAD request.

    Raises DataSourceError: DatasetNotFound, DatasetEmpty (a prefix with no object of the
    format), DatasetAccessDenied, ObjectStoreUnavailable or DatasetUnavailable
    (transient), NoVersionHeaders (an http server that sends neither ETag nor
    Last-Modified), UnsupportedScheme (file://, which only the training pod can see).
    """
    uri = dataset.uri
    if uri.startswith("s3://"):
        access = s3.access_for(dataset, credentials, PROBE_TIMEOUT_SECONDS)
        where = location.parse_s3(uri)
        listed = s3.list_objects(access, where)
        chosen = location.chosen_objects(listed, where, dataset.format, dataset.select)
        newest = max(chosen, key=lambda o: (o.last_modified, o.key))
        return Observation(
            location.s3_data_version(uri, dataset.select, chosen), len(chosen), newest.key
        )
    if uri.startswith(("http://", "https://")):
        headers = {"Authorization": authorization} if authorization else {}
        response = http.fetch(uri, headers, method="HEAD", timeout=PROBE_TIMEOUT_SECONDS)
        version = location.http_data_version(uri, response.etag, response.last_modified)
        if version is None:
            raise DataSourceError(
                "NoVersionHeaders",
                f"{uri} answers without an ETag or Last-Modified header, so a change cannot "
                "be seen without downloading it; use spec.schedule instead",
            )
        return Observation(version)
    raise DataSourceError(
        "UnsupportedScheme",
        f"{uri}: only s3:// and http(s):// datasets can be watched for new data",
    )
