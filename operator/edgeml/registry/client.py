"""Reading registered model versions and moving aliases in MLflow."""

from __future__ import annotations

import functools
import os
from datetime import UTC, datetime
from typing import Any

# Fail fast when the server is down: a reconcile must not hang for minutes.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from edgeml.registry.versions import RegistryVersion


class RegistryUnavailableError(RuntimeError):
    """MLflow could not be reached or answered with a server error; worth retrying."""


@functools.cache
def _client(tracking_uri: str) -> Any:
    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def _not_found(err: MlflowException) -> bool:
    return getattr(err, "error_code", "") in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND")


def _unavailable(err: Exception, what: str) -> RegistryUnavailableError:
    first = str(err).splitlines()[0] if str(err) else type(err).__name__
    return RegistryUnavailableError(f"{what}: {first[:300]}")


def list_versions(tracking_uri: str, name: str, limit: int = 50) -> list[RegistryVersion] | None:
    """The newest versions of registered model `name` (None if the model does not exist)."""
    client = _client(tracking_uri)
    try:
        try:
            model = client.get_registered_model(name)
        except MlflowException as err:
            if _not_found(err):
                return None
            raise
        aliases: dict[int, list[str]] = {}
        for alias, version in (model.aliases or {}).items():
            aliases.setdefault(int(version), []).append(alias)
        found = client.search_model_versions(
            f"name = '{name}'", max_results=limit, order_by=["version_number DESC"]
        )
        versions = []
        for mv in found:
            metrics: dict[str, float] = {}
            if mv.run_id:
                metrics = dict(client.get_run(mv.run_id).data.metrics)
            created = (
                datetime.fromtimestamp(mv.creation_timestamp / 1000, UTC).replace(microsecond=0)
                if mv.creation_timestamp
                else None
            )
            versions.append(
                RegistryVersion(
                    version=int(mv.version),
                    run_id=mv.run_id,
                    source=mv.source,
                    created=created,
                    tags=dict(mv.tags or {}),
                    metrics=metrics,
                    aliases=tuple(sorted(aliases.get(int(mv.version), []))),
                )
            )
        return versions
    except MlflowException as err:
        raise _unavailable(err, f"reading registered model {name}") from err
    except OSError as err:
        raise _unavailable(err, f"reading registered model {name}") from err


def set_alias(tracking_uri: str, name: str, alias: str, version: int) -> None:
    """Point `alias` of registered model `name` at `version` (idempotent)."""
    try:
        _client(tracking_uri).set_registered_model_alias(name, alias, str(version))
    except (MlflowException, OSError) as err:
        raise _unavailable(err, f"moving alias {alias} of {name} to version {version}") from err


def set_version_tag(tracking_uri: str, name: str, version: int, key: str, value: str) -> None:
    """Tag one version (approvals are recorded this way)."""
    try:
        _client(tracking_uri).set_model_version_tag(name, str(version), key, value)
    except (MlflowException, OSError) as err:
        raise _unavailable(err, f"tagging {name} version {version}") from err
