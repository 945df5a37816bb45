"""Fetch a model version from MLflow into the node cache, through the tracking server.

Run as a child process (`python -m edgeml.serving.fetch`) by the server, so a hung
download can be killed and the server never holds a download's buffers. It talks to
MLflow's REST API (registry/client.py): the edge image carries no mlflow library.

    python -m edgeml.serving.fetch --model-uri models:/NAME/VERSION --cache-dir DIR
        [--expected-sha256 HEX]

Prints one JSON line: `{"outcome": "cached", "sha256", "version"}`,
`{"outcome": "mismatch", "expected", "actual"}` or `{"outcome": "unavailable",
"reason"}`; the expected sha256 is the argument, else the version's `edgeml.io/sha256`
tag. A mismatching download is deleted, never cached.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from edgeml.registry.client import (
    RegistryUnavailableError,
    download_version_file,
    get_baseline,
    get_version,
)
from edgeml.serving.cache import MODEL_FILE, ModelCache, file_sha256

TAG_SHA256 = "edgeml.io/sha256"
TAG_RUN_ID = "edgeml.io/run-id"


def parse_model_uri(uri: str) -> tuple[str, str, bool]:
    """(name, version or alias, is_alias) of `models:/name/version` or `models:/name@alias`."""
    if not uri.startswith("models:/"):
        raise ValueError(f"{uri!r} is not a models:/ URI")
    rest = uri[len("models:/") :].strip("/")
    if "@" in rest:
        name, _, alias = rest.rpartition("@")
        if name and alias:
            return name, alias, True
    name, _, version = rest.rpartition("/")
    if not name or not version.isdigit():
        raise ValueError(f"{uri!r} is not models:/<name>/<version> or models:/<name>@<alias>")
    return name, version, False


def fetch(uri: str, cache: ModelCache, expected: str | None) -> dict[str, Any]:
    """Download, verify and cache the version `uri` names; the outcome (see module doc)."""
    tracking_uri = os.environ.get("MLFLOW_TRACKING_URI", "")
    if not tracking_uri.startswith(("http://", "https://")):
        return {"outcome": "unavailable", "reason": "MLFLOW_TRACKING_URI is not an http(s) URL"}
    name, ref, is_alias = parse_model_uri(uri)
    version = get_version(tracking_uri, name, ref, is_alias)
    if version is None:
        return {"outcome": "unavailable", "reason": f"{uri} does not exist in {tracking_uri}"}
    want = expected or version.tags.get(TAG_SHA256)
    if not want:
        return {
            "outcome": "unavailable",
            "reason": f"{name} version {version.version} has no {TAG_SHA256} tag yet",
        }
    if cache.has(want):
        return {"outcome": "cached", "sha256": want, "version": str(version.version)}
    staging = cache.staging()
    try:
        downloaded = staging / MODEL_FILE
        if not download_version_file(tracking_uri, name, version.version, MODEL_FILE, downloaded):
            return {"outcome": "unavailable", "reason": f"{uri} holds no {MODEL_FILE}"}
        actual = file_sha256(downloaded)
        if actual != want:
            return {"outcome": "mismatch", "expected": want, "actual": actual}
        run_id = version.tags.get(TAG_RUN_ID) or version.run_id
        cache.commit(
            staging,
            want,
            _baseline(tracking_uri, run_id),
            {"uri": uri, "name": name, "version": str(version.version), "run_id": version.run_id},
        )
        return {"outcome": "cached", "sha256": want, "version": str(version.version)}
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _baseline(tracking_uri: str, run_id: str | None) -> dict[str, Any] | None:
    """The run's drift baseline, or None (a model without one still serves)."""
    if not run_id:
        return None
    try:
        return get_baseline(tracking_uri, run_id)
    except RegistryUnavailableError as exc:
        print(f"no baseline for run {run_id}: {exc}", file=sys.stderr)
        return None


def main(argv: list[str] | None = None) -> int:
    """Fetch and print the outcome line; exit 0 unless the arguments are wrong."""
    parser = argparse.ArgumentParser(prog="python -m edgeml.serving.fetch")
    parser.add_argument("--model-uri", required=True)
    parser.add_argument("--cache-dir", type=Path, required=True)
    parser.add_argument("--expected-sha256")
    args = parser.parse_args(argv)
    try:
        outcome = fetch(args.model_uri, ModelCache(args.cache_dir), args.expected_sha256)
    except Exception as exc:
        message = " ".join(f"{type(exc).__name__}: {exc}".split())[:500]
        outcome = {"outcome": "unavailable", "reason": f"fetching {args.model_uri}: {message}"}
    print(json.dumps(outcome), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
