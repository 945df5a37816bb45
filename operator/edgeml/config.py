"""The operator's own configuration, read once from its environment (set by the chart)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

from pydantic import TypeAdapter, ValidationError

from edgeml import __version__
from edgeml.api.notify import Receiver


def _json_env(name: str, default: str) -> dict[str, str]:
    value = json.loads(os.environ.get(name) or default)
    if not isinstance(value, dict):
        raise ValueError(f"{name} must be a JSON object of strings")
    return {str(k): str(v) for k, v in value.items()}


@dataclass(frozen=True)
class OperatorConfig:
    """Settings that apply to every object the operator manages."""

    mlflow_tracking_uri: str = ""
    """The MLflow server used when an EdgeModel does not name one."""
    image: str = f"ghcr.io/edgeml/edgeml:{__version__}"
    """The image of training Jobs and inference pods (the operator's own image)."""
    training_node_selector: dict[str, str] = field(default_factory=dict)
    """Where training Jobs run (a non-edge pool)."""
    allowed_modules: tuple[str, ...] = ("sklearn",)
    """Top-level modules an estimator class may come from."""
    training_ttl_seconds: int = 86400
    """How long a finished training Job is kept (its logs with it)."""
    serving_cache_host_path: str = ""
    """A node directory where inference pods cache verified models (writable by uid
    65532); empty keeps the cache in the pod (an emptyDir)."""
    metrics_timeout_seconds: float = 2.0
    """How long analysis waits for one pod's /metrics."""
    resync_seconds: float = 15.0
    """The longest an object waits between reconciles when no watch event wakes it."""
    namespace: str = "edgeml-system"
    """The operator's own namespace, where the operator-wide receivers' Secrets are."""
    notify_receivers: tuple[Receiver, ...] = ()
    """Operator-wide webhooks: told of every EdgeDeployment's failed rollouts (rollbacks,
    artifacts that fail verification), and of drift for DriftPolicies without spec.notify."""

    @classmethod
    def from_env(cls) -> OperatorConfig:
        """Read EDGEML_* variables; unset ones keep their defaults."""
        defaults = cls()
        modules = os.environ.get("EDGEML_ALLOWED_MODULES")
        return cls(
            mlflow_tracking_uri=os.environ.get("EDGEML_MLFLOW_TRACKING_URI", ""),
            image=os.environ.get("EDGEML_IMAGE") or defaults.image,
            training_node_selector=_json_env("EDGEML_TRAINING_NODE_SELECTOR", "{}"),
            allowed_modules=tuple(m.strip() for m in modules.split(",") if m.strip())
            if modules
            else defaults.allowed_modules,
            training_ttl_seconds=int(
                os.environ.get("EDGEML_TRAINING_TTL_SECONDS", defaults.training_ttl_seconds)
            ),
            serving_cache_host_path=os.environ.get("EDGEML_SERVING_CACHE_HOST_PATH", ""),
            metrics_timeout_seconds=float(
                os.environ.get("EDGEML_METRICS_TIMEOUT_SECONDS", defaults.metrics_timeout_seconds)
            ),
            resync_seconds=float(os.environ.get("EDGEML_RESYNC_SECONDS", defaults.resync_seconds)),
            namespace=os.environ.get("EDGEML_POD_NAMESPACE") or defaults.namespace,
            notify_receivers=_receivers(os.environ.get("EDGEML_NOTIFY_RECEIVERS") or "[]"),
        )


def _receivers(text: str) -> tuple[Receiver, ...]:
    """EDGEML_NOTIFY_RECEIVERS: a JSON list of receivers, as in DriftPolicy spec.notify."""
    try:
        return tuple(TypeAdapter(list[Receiver]).validate_json(text))
    except ValidationError as err:
        raise ValueError(f"EDGEML_NOTIFY_RECEIVERS is not a list of receivers: {err}") from err
