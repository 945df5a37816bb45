"""The only place that talks to an object store: list and read an s3:// dataset (boto3).

Works with AWS S3 and S3-compatible stores (versitygw, MinIO, Ceph RGW, ...): with an
endpoint set, requests use path-style addressing, which every such store accepts.
Without credentials, requests are unsigned (a public bucket): no ambient identity of the
process (an instance role, a mounted token) is ever used, so the operator cannot read a
bucket on behalf of someone who gave it no keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from edgeml.api.edgemodel import Dataset
from edgeml.datasource.errors import DataSourceError
from edgeml.datasource.location import ObjectInfo, S3Location

ACCESS_KEY = "AWS_ACCESS_KEY_ID"
SECRET_KEY = "AWS_SECRET_ACCESS_KEY"  # noqa: S105 (a key name, not a secret)
SESSION_TOKEN = "AWS_SESSION_TOKEN"  # noqa: S105
CREDENTIAL_KEYS = (ACCESS_KEY, SECRET_KEY, SESSION_TOKEN)
"""The keys read from a dataset's credentials Secret (the AWS SDKs' own names)."""
MAX_OBJECTS = 10_000
"""A prefix with more objects than this is refused: a dataset, not a data lake."""

_NOT_FOUND = {"NoSuchBucket", "NoSuchKey", "NotFound", "404"}
_DENIED = {
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidToken",
    "ExpiredToken",
    "AllAccessDisabled",
    "403",
}


@dataclass(frozen=True)
class S3Access:
    """How to reach one store: its endpoint (AWS when None), region and keys."""

    endpoint: str | None = None
    region: str = "us-east-1"
    access_key: str | None = None
    secret_key: str | None = None
    session_token: str | None = None
    timeout: float = 10.0

    @staticmethod
    def from_credentials(
        endpoint: str | None, region: str, credentials: Mapping[str, str] | None
    ) -> S3Access:
        """From a dataset's s3 options and the keys of its Secret (or the environment)."""
        creds = credentials or {}
        return S3Access(
            endpoint,
            region,
            creds.get(ACCESS_KEY) or None,
            creds.get(SECRET_KEY) or None,
            creds.get(SESSION_TOKEN) or None,
        )


def access_for(
    dataset: Dataset, credentials: Mapping[str, str] | None, timeout: float = 10.0
) -> S3Access:
    """How to reach an s3:// dataset's store: its `s3` options and the Secret's keys."""
    options = dataset.s3
    return replace(
        S3Access.from_credentials(
            options.endpoint if options else None,
            options.region if options else "us-east-1",
            credentials,
        ),
        timeout=timeout,
    )


def _client(access: S3Access) -> Any:
    # boto3 is imported on first use: importing it costs a process 26 MB of memory
    # (measured), and an operator whose datasets are not on s3:// never needs it.
    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config

    signed = access.access_key is not None and access.secret_key is not None
    config = Config(
        connect_timeout=access.timeout,
        read_timeout=access.timeout * 3,
        retries={"max_attempts": 2, "mode": "standard"},
        s3={"addressing_style": "path"} if access.endpoint else {},
        **({} if signed else {"signature_version": UNSIGNED}),
    )
    # A session of its own: never the process's environment or instance credentials.
    session = boto3.session.Session(
        aws_access_key_id=access.access_key if signed else None,
        aws_secret_access_key=access.secret_key if signed else None,
        aws_session_token=access.session_token if signed else None,
        region_name=access.region,
    )
    return session.client("s3", endpoint_url=access.endpoint, config=config)


def _where(access: S3Access) -> str:
    return access.endpoint or "AWS S3"


def _error(exc: Exception, uri: str, access: S3Access) -> DataSourceError:
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        text = error.get("Message") or code
        if code in _NOT_FOUND or status == 404:
            what = "bucket" if code == "NoSuchBucket" else "object"
            return DataSourceError("DatasetNotFound", f"{uri}: no such {what} ({code})")
        if code in _DENIED or status in (401, 403):
            return DataSourceError(
                "DatasetAccessDenied",
                f"{uri}: {_where(access)} refused the credentials ({code}: {text}); check "
                "the keys in the dataset's s3.credentialsSecretRef Secret",
            )
        if code == "PreconditionFailed" or status == 412:
            return DataSourceError(
                "DatasetChanged",
                f"{uri} changed while it was read; reading again",
                transient=True,
            )
        if status >= 500 or status in (408, 429) or code in ("SlowDown", "RequestTimeout"):
            return DataSourceError(
                "ObjectStoreUnavailable",
                f"{uri}: {_where(access)} answered {status} {code}",
                transient=True,
            )
        return DataSourceError("DatasetUnreadable", f"{uri}: {code or status}: {text}")
    return DataSourceError(
        "ObjectStoreUnavailable",
        f"{uri}: {_where(access)} cannot be reached: {exc}",
        transient=True,
    )


def list_objects(access: S3Access, location: S3Location) -> list[ObjectInfo]:
    """The objects at `location`: every object under a prefix, or the one object a key
    names (DatasetNotFound when it does not exist)."""
    client = _client(access)
    from botocore.exceptions import BotoCoreError, ClientError  # imported by _client

    try:
        if not location.is_prefix:
            head = client.head_object(Bucket=location.bucket, Key=location.key)
            return [
                ObjectInfo(
                    location.key,
                    str(head.get("ETag", "")),
                    int(head.get("ContentLength", 0)),
                    head["LastModified"],
                    head.get("VersionId"),
                )
            ]
        found: list[ObjectInfo] = []
        pages = client.get_paginator("list_objects_v2").paginate(
            Bucket=location.bucket, Prefix=location.key
        )
        for page in pages:
            for item in page.get("Contents", []):
                found.append(
                    ObjectInfo(
                        str(item["Key"]),
                        str(item.get("ETag", "")),
                        int(item.get("Size", 0)),
                        item["LastModified"],
                    )
                )
                if len(found) > MAX_OBJECTS:
                    raise DataSourceError(
                        "DatasetTooLarge",
                        f"{location.uri} holds more than {MAX_OBJECTS} objects; name a "
                        "narrower prefix (for example one partition)",
                    )
        return found
    except (ClientError, BotoCoreError) as exc:
        raise _error(exc, location.uri, access) from exc


def read_object(access: S3Access, bucket: str, obj: ObjectInfo) -> bytes:
    """The bytes of one listed object, exactly the listed version (If-Match its ETag):
    an object replaced between the listing and the read is DatasetChanged (transient)."""
    client = _client(access)
    from botocore.exceptions import BotoCoreError, ClientError  # imported by _client

    uri = f"s3://{bucket}/{obj.key}"
    try:
        kwargs: dict[str, str] = {"Bucket": bucket, "Key": obj.key}
        if obj.etag:
            kwargs["IfMatch"] = obj.etag
        response = client.get_object(**kwargs)
        body: bytes = response["Body"].read()
        return body
    except (ClientError, BotoCoreError) as exc:
        raise _error(exc, uri, access) from exc
