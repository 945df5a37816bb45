"""Reading registered model versions and moving aliases in MLflow, over its REST API.

The operator needs five calls (get a registered model, search its versions, read a run's
metrics, set an alias, tag a version), and the edge server's fetch two more (a version,
its model file). Importing `mlflow.MlflowClient` for them cost about 120 MB of the
operator's resident memory (docs/benchmarks.md) and 45 MiB of the serving image, so
they are made here with urllib3. Artifacts are read through the tracking server
(`/get-artifact`, `/model-versions/get-artifact`), so a pod needs no credentials for
the artifact store itself, only for MLflow. The training Job keeps the mlflow library:
it logs runs and models.

Credentials: each call takes an `authorization` header, which the operator makes from
the EdgeModel's `registry.credentialsSecretRef` (registry/credentials.py); without one,
the variables the mlflow client reads (the pods have the same Secret's keys as them):
MLFLOW_TRACKING_TOKEN (bearer) or MLFLOW_TRACKING_USERNAME and _PASSWORD (basic). TLS
comes from MLFLOW_TRACKING_INSECURE_TLS, MLFLOW_TRACKING_SERVER_CERT_PATH (a CA bundle)
and MLFLOW_TRACKING_CLIENT_CERT_PATH.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import urllib3

from edgeml.registry.credentials import authorization_of
from edgeml.registry.versions import RegistryVersion

API = "/api/2.0/mlflow"
TIMEOUT = urllib3.Timeout(connect=5.0, read=10.0)
"""Fail fast when the server is down: a reconcile must not hang for minutes."""
RETRIES = urllib3.Retry(total=1, backoff_factor=0.5, status_forcelist=(502, 503, 504))
NOT_FOUND_CODES = frozenset({"RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"})
AUTH_CODES = {401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED"}
"""The error codes MLflow's own JSON errors use for these statuses."""


class RegistryUnavailableError(RuntimeError):
    """MLflow could not be reached or answered with a server error; worth retrying."""


class RegistryRequestError(RuntimeError):
    """MLflow answered a request with an error of its own (an `error_code` and message)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code or status}: {message}")
        self.status = status
        self.code = code


FAILURES = (RegistryRequestError, RegistryUnavailableError, urllib3.exceptions.HTTPError, OSError)
"""What a call may raise: each becomes RegistryUnavailableError for the caller."""


POOL_CONNECTIONS = 8
"""Kept-alive connections per MLflow server: at least the reconciles that may call it at
once (the operator's two lanes hold 6 threads); past it urllib3 opens and discards one
per request."""


@functools.cache
def _pool() -> urllib3.PoolManager:
    tls: dict[str, Any] = {}
    if os.environ.get("MLFLOW_TRACKING_INSECURE_TLS", "").lower() in ("true", "1"):
        tls["cert_reqs"] = "CERT_NONE"
    elif os.environ.get("MLFLOW_TRACKING_SERVER_CERT_PATH"):
        tls["ca_certs"] = os.environ["MLFLOW_TRACKING_SERVER_CERT_PATH"]
    if os.environ.get("MLFLOW_TRACKING_CLIENT_CERT_PATH"):
        tls["cert_file"] = os.environ["MLFLOW_TRACKING_CLIENT_CERT_PATH"]
    return urllib3.PoolManager(
        num_pools=4, maxsize=POOL_CONNECTIONS, timeout=TIMEOUT, retries=RETRIES, **tls
    )


def _auth(authorization: str | None) -> dict[str, str]:
    """The header given, else the one the mlflow client would send from the environment."""
    header = authorization or authorization_of(os.environ)
    return {"Authorization": header} if header else {}


def _call(
    tracking_uri: str,
    method: str,
    path: str,
    body: dict[str, Any],
    authorization: str | None = None,
) -> dict[str, Any]:
    """One REST call; GET sends `body` as the query string, POST as JSON."""
    url = tracking_uri.rstrip("/") + API + path
    if method == "GET":
        fields = {k: str(v) for k, v in body.items()}
        response = _pool().request("GET", url, fields=fields, headers=_auth(authorization))
    else:
        headers = {"Content-Type": "application/json", **_auth(authorization)}
        response = _pool().request(method, url, body=json.dumps(body), headers=headers)
    try:
        payload = json.loads(response.data or b"{}")
    except ValueError:
        payload = None
    if response.status in AUTH_CODES and not isinstance(payload, dict):
        # MLflow's auth app answers these in plain text, and a proxy's login page is not
        # MLflow's JSON either: still, the credentials are what to look at.
        text = (response.data or b"").decode(errors="replace").strip().splitlines()
        raise RegistryRequestError(
            response.status, AUTH_CODES[response.status], text[0][:200] if text else url
        )
    if response.status >= 500 or not isinstance(payload, dict):
        # Not MLflow's JSON (a login page of a proxy, a wrong path): never "empty".
        raise RegistryUnavailableError(f"HTTP {response.status} from {url}, not MLflow's API")
    if response.status >= 400:
        raise RegistryRequestError(
            response.status, str(payload.get("error_code", "")), str(payload.get("message", ""))
        )
    return payload


def _guard(what: str, err: Exception) -> RegistryUnavailableError:
    first = str(err).splitlines()[0] if str(err) else type(err).__name__
    return RegistryUnavailableError(f"{what}: {first[:300]}")


def _version(mv: dict[str, Any], metrics: dict[str, float], aliases: list[str]) -> RegistryVersion:
    stamp = int(mv.get("creation_timestamp") or 0)
    return RegistryVersion(
        version=int(mv["version"]),
        run_id=mv.get("run_id") or None,
        source=mv.get("source"),
        created=datetime.fromtimestamp(stamp / 1000, UTC).replace(microsecond=0) if stamp else None,
        tags={t["key"]: t.get("value", "") for t in mv.get("tags", [])},
        metrics=metrics,
        aliases=tuple(sorted(aliases)),
    )


ENDED_RUN_STATUSES = frozenset({"FINISHED", "FAILED", "KILLED"})
ENDED_RUNS_KEPT = 4096
"""Metrics of ended runs kept in memory (a few hundred bytes each)."""
_ended_runs: OrderedDict[tuple[str, str, str | None], dict[str, float]] = OrderedDict()
_ended_runs_lock = threading.Lock()


def _run_metrics(tracking_uri: str, run_id: str, authorization: str | None) -> dict[str, float]:
    """A run's metrics. Those of an ended run are kept: nothing the training Job does
    writes to a run after it ends, and every EdgeModel reconcile reads the metrics of up
    to 50 versions (one request each), which was most of its time against MLflow. Kept
    per credential: what one EdgeModel's credentials read is never another's answer."""
    key = (tracking_uri, run_id, authorization)
    with _ended_runs_lock:
        kept = _ended_runs.get(key)
        if kept is not None:
            _ended_runs.move_to_end(key)
            return dict(kept)
    run = _call(tracking_uri, "GET", "/runs/get", {"run_id": run_id}, authorization)
    run = run.get("run", {})
    metrics = {m["key"]: float(m["value"]) for m in run.get("data", {}).get("metrics", [])}
    if run.get("info", {}).get("status") in ENDED_RUN_STATUSES:
        with _ended_runs_lock:
            _ended_runs[key] = dict(metrics)
            while len(_ended_runs) > ENDED_RUNS_KEPT:
                _ended_runs.popitem(last=False)
    return metrics


@dataclass(frozen=True)
class RegisteredModel:
    """A registered model as the operator reads it: its newest versions and its tags."""

    versions: list[RegistryVersion]
    tags: dict[str, str]


def list_versions(
    tracking_uri: str, name: str, limit: int = 50, *, authorization: str | None = None
) -> list[RegistryVersion] | None:
    """The newest versions of registered model `name` (None if the model does not exist)."""
    model = read_model(tracking_uri, name, limit, authorization=authorization)
    return None if model is None else model.versions


def read_model(
    tracking_uri: str, name: str, limit: int = 50, *, authorization: str | None = None
) -> RegisteredModel | None:
    """Registered model `name`: its newest versions and its tags (None if it does not exist)."""
    what = f"reading registered model {name}"
    try:
        model = _get_or_none(tracking_uri, "/registered-models/get", {"name": name}, authorization)
        if model is None:
            return None
        if not isinstance(model.get("registered_model"), dict):
            raise RegistryUnavailableError(f"{tracking_uri} answered without a registered_model")
        tags = {
            str(t["key"]): str(t.get("value", ""))
            for t in model["registered_model"].get("tags", [])
        }
        aliases: dict[int, list[str]] = {}
        for entry in model.get("registered_model", {}).get("aliases", []):
            aliases.setdefault(int(entry["version"]), []).append(entry["alias"])
        # MLflow's filter grammar quotes with single quotes; a name holding one is escaped.
        quoted = name.replace("'", "\\'")
        found = _call(
            tracking_uri,
            "GET",
            "/model-versions/search",
            {
                "filter": f"name = '{quoted}'",
                "max_results": limit,
                "order_by": "version_number DESC",
            },
            authorization,
        ).get("model_versions", [])
        versions = [
            _version(
                mv,
                _run_metrics(tracking_uri, mv["run_id"], authorization) if mv.get("run_id") else {},
                aliases.get(int(mv["version"]), []),
            )
            for mv in found
        ]
        return RegisteredModel(versions, tags)
    except (*FAILURES, KeyError, ValueError) as err:
        raise _guard(what, err) from err


def set_model_tag(
    tracking_uri: str, name: str, key: str, value: str, *, authorization: str | None = None
) -> None:
    """Tag the registered model itself (idempotent)."""
    body = {"name": name, "key": key, "value": value}
    try:
        _call(tracking_uri, "POST", "/registered-models/set-tag", body, authorization)
    except FAILURES as err:
        raise _guard(f"tagging registered model {name}", err) from err


def set_alias(
    tracking_uri: str, name: str, alias: str, version: int, *, authorization: str | None = None
) -> None:
    """Point `alias` of registered model `name` at `version` (idempotent)."""
    body = {"name": name, "alias": alias, "version": str(version)}
    try:
        _call(tracking_uri, "POST", "/registered-models/alias", body, authorization)
    except FAILURES as err:
        raise _guard(f"moving alias {alias} of {name} to version {version}", err) from err


def set_version_tag(
    tracking_uri: str,
    name: str,
    version: int,
    key: str,
    value: str,
    *,
    authorization: str | None = None,
) -> None:
    """Tag one version (approvals are recorded this way)."""
    body = {"name": name, "version": str(version), "key": key, "value": value}
    try:
        _call(tracking_uri, "POST", "/model-versions/set-tag", body, authorization)
    except FAILURES as err:
        raise _guard(f"tagging {name} version {version}", err) from err


BASELINE_ARTIFACT = "edgeml/baseline.json"


@functools.lru_cache(maxsize=128)
def _baseline(tracking_uri: str, run_id: str, authorization: str | None) -> dict[str, Any] | None:
    url = tracking_uri.rstrip("/") + "/get-artifact"
    fields = {"path": BASELINE_ARTIFACT, "run_uuid": run_id}
    response = _pool().request("GET", url, fields=fields, headers=_auth(authorization))
    if response.status == 404:
        return None
    if response.status >= 400:
        raise RegistryUnavailableError(f"HTTP {response.status} from {url}")
    try:
        doc = json.loads(response.data)
    except ValueError as err:
        raise RegistryUnavailableError(f"{url} answered a baseline that is not JSON") from err
    if not isinstance(doc, dict):
        raise RegistryUnavailableError(f"{url} answered a baseline that is not a JSON object")
    return doc


def get_baseline(
    tracking_uri: str, run_id: str, *, authorization: str | None = None
) -> dict[str, Any] | None:
    """The drift baseline a training run logged (None if it logged none).

    A run's artifacts never change, so answers are kept, per credential (failures are
    not)."""
    try:
        return _baseline(tracking_uri, run_id, authorization)
    except (urllib3.exceptions.HTTPError, OSError) as err:
        raise _guard(f"reading the baseline of run {run_id}", err) from err


def get_version(tracking_uri: str, name: str, ref: str, by_alias: bool) -> RegistryVersion | None:
    """One version of `name` by number or by alias, without its run's metrics (None when
    the model, the version or the alias does not exist)."""
    what = f"reading {name} {'@' if by_alias else 'version '}{ref}"
    try:
        if by_alias:
            # An unknown alias is INVALID_PARAMETER_VALUE on /registered-models/alias, like
            # a malformed request: the model's alias list tells the two apart.
            model = _get_or_none(tracking_uri, "/registered-models/get", {"name": name})
            if model is None:
                return None
            aliases = model["registered_model"].get("aliases", [])
            ref = next((str(a["version"]) for a in aliases if a["alias"] == ref), "")
            if not ref:
                return None
        found = _get_or_none(tracking_uri, "/model-versions/get", {"name": name, "version": ref})
        return None if found is None else _version(found["model_version"], {}, [])
    except (*FAILURES, KeyError, ValueError, TypeError) as err:
        raise _guard(what, err) from err


def _get_or_none(
    tracking_uri: str, path: str, query: dict[str, Any], authorization: str | None = None
) -> dict[str, Any] | None:
    try:
        return _call(tracking_uri, "GET", path, query, authorization)
    except RegistryRequestError as err:
        if err.code in NOT_FOUND_CODES:
            return None
        raise


DOWNLOAD_CHUNK = 1 << 20


def _download_timeout() -> urllib3.Timeout:
    # The tracking server copies the whole artifact from its store before the first byte:
    # the read timeout is the mlflow client's (MLFLOW_HTTP_REQUEST_TIMEOUT, 120 s).
    try:
        read = float(os.environ.get("MLFLOW_HTTP_REQUEST_TIMEOUT") or 120)
    except ValueError:
        read = 120.0
    return urllib3.Timeout(connect=TIMEOUT.connect_timeout, read=read)


def download_version_file(
    tracking_uri: str, name: str, version: int, path: str, destination: Path
) -> bool:
    """Stream the file `path` of a version's artifacts to `destination`, through the
    tracking server; False when the version holds no such file."""
    url = tracking_uri.rstrip("/") + "/model-versions/get-artifact"
    fields = {"name": name, "version": str(version), "path": path}
    try:
        response = _pool().request(
            "GET", url, fields=fields, headers=_auth(None), preload_content=False,
            timeout=_download_timeout(),
        )  # fmt: skip
        try:
            if response.status == 404:
                return False
            if response.status >= 400:
                raise RegistryUnavailableError(f"HTTP {response.status} from {url}")
            with destination.open("wb") as out:
                shutil.copyfileobj(response, out, DOWNLOAD_CHUNK)
        finally:
            response.release_conn()
    except (urllib3.exceptions.HTTPError, OSError) as err:
        raise _guard(f"downloading {path} of {name} version {version}", err) from err
    return True
