"""The local cluster's object store, seen from the host: a boto3 client and its bucket."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from localcluster.settings import S3_ACCESS_KEY, S3_SECRET_KEY, Settings


def client(settings: Settings) -> Any:
    """A boto3 S3 client for the cluster's versitygw, with its root account."""
    return boto3.client(
        "s3",
        endpoint_url=settings.s3_endpoint,
        aws_access_key_id=S3_ACCESS_KEY,
        aws_secret_access_key=S3_SECRET_KEY,
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3}),
    )


def ensure_bucket(settings: Settings, bucket: str) -> None:
    """Create `bucket` unless it exists (idempotent, like the rest of `up`)."""
    s3 = client(settings)
    try:
        s3.create_bucket(Bucket=bucket)
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") not in (
            "BucketAlreadyOwnedByYou",
            "BucketAlreadyExists",
        ):
            raise


def secret_data() -> dict[str, str]:
    """The keys of a Secret that lets a dataset read the cluster's object store."""
    return {"AWS_ACCESS_KEY_ID": S3_ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": S3_SECRET_KEY}
