"""Fetch a model version from MLflow into the node cache: the only serving module with mlflow.

Run as a child process (`python -m edgeml.serving.fetch`) by the server, so the server
itself never imports mlflow (about 150 MB of resident memory an edge pod should not
carry for a one-off download), and a hung download can be killed.

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
import tempfile
from pathlib import Path
from typing import Any

from edgeml.serving.cache import MODEL_FILE, ModelCache, file_sha256

TAG_SHA256 = "edgeml.io/sha256"
TAG_RUN_ID = "edgeml.io/run-id"
BASELINE_ARTIFACT = "edgeml/baseline.json"
CLIENT_ENV_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
}
"""Fail fast: the server retries with its own backoff and stays unready meanwhile."""


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
    import mlflow
    from mlflow import MlflowClient

    name, ref, is_alias = parse_model_uri(uri)
    client = MlflowClient()
    version = (
        client.get_model_version_by_alias(name, ref)
        if is_alias
        else client.get_model_version(name, ref)
    )
    tags = dict(version.tags or {})
    want = expected or tags.get(TAG_SHA256)
    if not want:
        return {
            "outcome": "unavailable",
            "reason": f"{name} version {version.version} has no {TAG_SHA256} tag yet",
        }
    if cache.has(want):
        return {"outcome": "cached", "sha256": want, "version": str(version.version)}
    staging = cache.staging()
    try:
        with tempfile.TemporaryDirectory(dir=staging) as download:
            local = mlflow.artifacts.download_artifacts(
                artifact_uri=f"models:/{name}/{version.version}", dst_path=download
            )
            downloaded = Path(local) / MODEL_FILE
            if not downloaded.is_file():
                return {"outcome": "unavailable", "reason": f"{uri} holds no {MODEL_FILE}"}
            actual = file_sha256(downloaded)
            if actual != want:
                return {"outcome": "mismatch", "expected": want, "actual": actual}
            os.replace(downloaded, staging / MODEL_FILE)
            baseline = _baseline(tags.get(TAG_RUN_ID) or version.run_id, download)
        cache.commit(
            staging,
            want,
            baseline,
            {"uri": uri, "name": name, "version": str(version.version), "run_id": version.run_id},
        )
        return {"outcome": "cached", "sha256": want, "version": str(version.version)}
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _baseline(run_id: str | None, scratch: str) -> dict[str, Any] | None:
    """The run's drift baseline, or None (a model without one still serves)."""
    import mlflow

    if not run_id:
        return None
    try:
        path = mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path=BASELINE_ARTIFACT, dst_path=os.path.join(scratch, "b")
        )
        value = json.loads(Path(path).read_text())
    except Exception as exc:
        print(f"no baseline for run {run_id}: {exc}", file=sys.stderr)
        return None
    return value if isinstance(value, dict) else None


def main(argv: list[str] | None = None) -> int:
    """Fetch and print the outcome line; exit 0 unless the arguments are wrong."""
    parser = argparse.ArgumentParser(prog="python -m edgeml.serving.fetch")
    parser.add_argument("--model-uri", required=True)
    parser.add_argument("--cache-dir", type=Path, required=True)
    parser.add_argument("--expected-sha256")
    args = parser.parse_args(argv)
    for key, value in CLIENT_ENV_DEFAULTS.items():
        os.environ.setdefault(key, value)
    try:
        outcome = fetch(args.model_uri, ModelCache(args.cache_dir), args.expected_sha256)
    except Exception as exc:
        message = " ".join(f"{type(exc).__name__}: {exc}".split())[:500]
        outcome = {"outcome": "unavailable", "reason": f"fetching {args.model_uri}: {message}"}
    print(json.dumps(outcome), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
