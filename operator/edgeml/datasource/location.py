"""Pure: s3:// locations, which objects a dataset reads, and data versions.

A data version is a short digest that changes when the data a dataset reads changes:
over the (key, ETag) of each object an s3:// dataset reads, or the ETag (else
Last-Modified) of an http(s) one. The URI and the selection are part of it, so the
version of one dataset never equals another's. The training program records it on the
version it registers; the operator compares it with what it sees now (NewData).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from edgeml.datasource.errors import DataSourceError

Select = Literal["All", "Newest"]
SUFFIXES = {"csv": ".csv", "parquet": ".parquet"}


@dataclass(frozen=True)
class S3Location:
    """An s3:// URI split into its bucket and key (a key ending in / is a prefix)."""

    bucket: str
    key: str

    @property
    def is_prefix(self) -> bool:
        """True when the URI names every object under a prefix (it ends with /)."""
        return self.key == "" or self.key.endswith("/")

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


@dataclass(frozen=True)
class ObjectInfo:
    """One object as a listing shows it."""

    key: str
    etag: str
    size: int
    last_modified: datetime
    version_id: str | None = None

    def to_json(self) -> dict[str, object]:
        """The lineage record of the object (an MLflow artifact of the run)."""
        record: dict[str, object] = {
            "key": self.key,
            "etag": self.etag,
            "size": self.size,
            "lastModified": self.last_modified.isoformat(),
        }
        if self.version_id:
            record["versionId"] = self.version_id
        return record


def parse_s3(uri: str) -> S3Location:
    """`s3://bucket/key` (or `s3://bucket/prefix/`) as a location; ValueError otherwise."""
    if not uri.startswith("s3://"):
        raise ValueError(f"{uri} is not an s3:// URI")
    bucket, _, key = uri[len("s3://") :].partition("/")
    if not bucket:
        raise ValueError(f"{uri} names no bucket")
    return S3Location(bucket, key)


def select_objects(
    objects: Sequence[ObjectInfo], location: S3Location, fmt: str, select: Select
) -> list[ObjectInfo]:
    """The objects a dataset reads, in the order they are read.

    A single key reads that object. A prefix reads the objects under it whose names end
    in the format's suffix (`.csv`, `.parquet`), in key order (All), or only the most
    recently modified of them (Newest; the greater key wins a tie). Empty folder markers
    and other files are ignored.
    """
    if not location.is_prefix:
        return [o for o in objects if o.key == location.key][:1]
    suffix = SUFFIXES.get(fmt, f".{fmt}")
    matching = sorted(
        (o for o in objects if o.key.startswith(location.key) and o.key.endswith(suffix)),
        key=lambda o: o.key,
    )
    if select == "Newest" and matching:
        return [max(matching, key=lambda o: (o.last_modified, o.key))]
    return matching


def chosen_objects(
    listed: Sequence[ObjectInfo], location: S3Location, fmt: str, select: Select
) -> list[ObjectInfo]:
    """`select_objects`, refusing a dataset that would read nothing (DatasetEmpty)."""
    chosen = select_objects(listed, location, fmt, select)
    if not chosen:
        suffix = SUFFIXES.get(fmt, f".{fmt}")
        raise DataSourceError(
            "DatasetEmpty",
            f"{location.uri} holds no {suffix} objects ({len(listed)} other objects); upload "
            "the data under the prefix, or point uri at it",
        )
    return chosen


def _digest(parts: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:20]


def s3_data_version(uri: str, select: Select, objects: Sequence[ObjectInfo]) -> str:
    """The data version of the objects an s3:// dataset reads."""
    return _digest([uri, select, *(f"{o.key}\t{o.etag}" for o in objects)])


def http_data_version(uri: str, etag: str | None, last_modified: str | None) -> str | None:
    """The data version of an http(s) dataset, or None when the server sends neither an
    ETag nor a Last-Modified header (then a change cannot be seen without downloading)."""
    if etag:
        return _digest([uri, f"etag\t{etag}"])
    if last_modified:
        return _digest([uri, f"last-modified\t{last_modified}"])
    return None
