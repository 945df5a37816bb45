"""The operator's own configuration, read once from its environment (set by the chart)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

from pydantic import TypeAdapter, ValidationError

from edgeml import __version__
from edgeml.api.common import ResourceRequirements
from edgeml.api.edgedeployment import Toleration
from edgeml.api.notify import Receiver

REGISTRY = "ghcr.io/edgeml"
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
DEFAULT_TRAINING_RESOURCES = ResourceRequirements.model_validate(
    {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "2Gi"}}
)
"""What a training Job gets when neither its EdgeModel nor its TrainingRun names
resources: a request the scheduler can place it by, and a memory limit so a runaway fit
is OOM-killed in its own pod rather than starving the node (no CPU limit: throttling a
batch job only makes it slower)."""


def image_reference(repository: str, tag: str = "", digest: str = "") -> str:
    """`repository@digest` when a digest is given (it wins: the tag is then only a label),
    else `repository:tag`, the tag defaulting to the package version."""
    if digest:
        return f"{repository}@{digest}"
    return f"{repository}:{tag or __version__}"


def _json_env(name: str, default: str) -> dict[str, str]:
    value = json.loads(os.environ.get(name) or default)
    if not isinstance(value, dict):
        raise ValueError(f"{name} must be a JSON object of strings")
    return {str(k): str(v) for k, v in value.items()}


DEFAULT_VOLUME_TYPES = ("persistentVolumeClaim", "configMap", "secret", "emptyDir", "csi")
"""What a training Job may mount unless the operator is configured otherwise: no
hostPath (a node's files), no projected service-account tokens."""


@dataclass(frozen=True)
class OperatorConfig:
    """Settings that apply to every object the operator manages."""

    mlflow_tracking_uri: str = ""
    """The MLflow server used when an EdgeModel does not name one."""
    serving_image: str = image_reference(f"{REGISTRY}/edgeml-serving")
    """The image of inference pods (`edgeml serve`: onnxruntime, no training stack)."""
    training_image: str = image_reference(f"{REGISTRY}/edgeml-training")
    """The image of training Jobs (`edgeml train`: scikit-learn, skl2onnx, MLflow)."""
    serving_image_pull_policy: str = "IfNotPresent"
    """imagePullPolicy of inference pods."""
    training_image_pull_policy: str = "IfNotPresent"
    """imagePullPolicy of training Jobs' pods."""
    image_pull_secrets: tuple[str, ...] = ()
    """Secrets (of type kubernetes.io/dockerconfigjson) every pod the operator creates
    names in imagePullSecrets; each must exist in the pod's own namespace."""
    training_resources: ResourceRequirements = DEFAULT_TRAINING_RESOURCES
    """Resources of a training Job whose EdgeModel and TrainingRun name none."""
    training_node_selector: dict[str, str] = field(default_factory=dict)
    """Where training Jobs run (a non-edge pool)."""
    training_tolerations: tuple[Toleration, ...] = ()
    """Tolerations of training Jobs, for a training pool that is tainted (GPU nodes,
    nodes kept for batch work)."""
    allowed_modules: tuple[str, ...] = ("sklearn",)
    """Top-level modules an estimator class may come from."""
    training_volume_types: tuple[str, ...] = DEFAULT_VOLUME_TYPES
    """Pod volume sources a training template may name (the chart's admission policy
    reads the same list); anything else is InvalidSpec before a Job is created."""
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
            # EDGEML_IMAGE, the one image of releases before the split, still names both.
            serving_image=os.environ.get("EDGEML_SERVING_IMAGE")
            or os.environ.get("EDGEML_IMAGE")
            or defaults.serving_image,
            training_image=os.environ.get("EDGEML_TRAINING_IMAGE")
            or os.environ.get("EDGEML_IMAGE")
            or defaults.training_image,
            serving_image_pull_policy=_pull_policy("EDGEML_SERVING_IMAGE_PULL_POLICY"),
            training_image_pull_policy=_pull_policy("EDGEML_TRAINING_IMAGE_PULL_POLICY"),
            image_pull_secrets=_names(os.environ.get("EDGEML_IMAGE_PULL_SECRETS", "")),
            training_resources=_resources("EDGEML_TRAINING_RESOURCES")
            or defaults.training_resources,
            training_node_selector=_json_env("EDGEML_TRAINING_NODE_SELECTOR", "{}"),
            training_tolerations=_tolerations(
                os.environ.get("EDGEML_TRAINING_TOLERATIONS") or "[]"
            ),
            allowed_modules=tuple(m.strip() for m in modules.split(",") if m.strip())
            if modules
            else defaults.allowed_modules,
            training_volume_types=_names(os.environ.get("EDGEML_TRAINING_VOLUME_TYPES", ""))
            or defaults.training_volume_types,
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


def _pull_policy(name: str) -> str:
    """An imagePullPolicy from the environment (IfNotPresent when unset)."""
    value = os.environ.get(name) or "IfNotPresent"
    if value not in PULL_POLICIES:
        raise ValueError(f"{name} must be one of {', '.join(PULL_POLICIES)}, not {value!r}")
    return value


def _names(text: str) -> tuple[str, ...]:
    """A comma-separated list of names, blanks dropped, order kept, duplicates removed."""
    return tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))


def _resources(name: str) -> ResourceRequirements | None:
    """A JSON `{"requests": {...}, "limits": {...}}` from the environment; None when unset
    or empty (`{}`), so the default stays."""
    try:
        document = json.loads(os.environ.get(name) or "{}")
        if document is None:  # toJson of an unset value
            return None
        if isinstance(document, dict):
            # Helm's toJson writes `cpu: 2` as a number; a quantity is a string.
            document = {
                key: {k: _quantity(v) for k, v in part.items()} if isinstance(part, dict) else part
                for key, part in document.items()
            }
        resources = ResourceRequirements.model_validate(document)
    except (ValueError, ValidationError) as err:
        raise ValueError(f"{name} is not a resources object (cpu, memory): {err}") from err
    if not resources.requests and not resources.limits:
        return None
    return resources


def _quantity(value: object) -> object:
    """A number as the quantity string it means (2 → "2", 0.5 → "0.5"); else as is."""
    if isinstance(value, bool):
        return value
    return str(value) if isinstance(value, int | float) else value


def _tolerations(text: str) -> tuple[Toleration, ...]:
    """EDGEML_TRAINING_TOLERATIONS: a JSON list of tolerations, as in a Pod spec."""
    try:
        return tuple(TypeAdapter(list[Toleration]).validate_json(text))
    except ValidationError as err:
        raise ValueError(
            f"EDGEML_TRAINING_TOLERATIONS is not a list of tolerations: {err}"
        ) from err


def _receivers(text: str) -> tuple[Receiver, ...]:
    """EDGEML_NOTIFY_RECEIVERS: a JSON list of receivers, as in DriftPolicy spec.notify."""
    try:
        return tuple(TypeAdapter(list[Receiver]).validate_json(text))
    except ValidationError as err:
        raise ValueError(f"EDGEML_NOTIFY_RECEIVERS is not a list of receivers: {err}") from err
