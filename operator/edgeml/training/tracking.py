"""Everything the training program says to MLflow: the run, the model, the version.

One run per training in the experiment `edgeml/<namespace>/<registeredModel>`; the ONNX
model logged with `mlflow.onnx.log_model(name="model")`, the baseline and the profile
as `edgeml/baseline.json` and `edgeml/profile.json`; a new version of the registered
model, tagged so the operator and the edge pods can trust it (`edgeml.io/sha256` is of
`model.onnx` as downloaded back from `models:/<name>/<version>`). No alias is set:
promotion is the operator's job.

Idempotent under Job retries: the version is created with the TrainingRun's uid as a
tag (in the same call), and `find_version` looks it up before training, so a retry
after a crash reports the existing version instead of making a second one (and
finishes its sha256 tag if the crash came before that).

MLflow failures become `TrainingError`s: unreachable servers, 5xx and timeouts are
`RegistryUnavailable` (exit 3, retried); refusals such as permission denied are
`RegistryRejected` (exit 2).
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx

from edgeml import __version__
from edgeml.plans.common import REGISTERED_MODEL_IN_USE
from edgeml.registry.versions import COMPARED_WITH_TAG as TAG_COMPARED_WITH
from edgeml.registry.versions import DATA_VERSION_TAG as TAG_DATA_VERSION
from edgeml.registry.versions import OWNER_TAG, TRAINING_METRIC_PREFIX
from edgeml.registry.versions import REASON_TAG as TAG_REASON
from edgeml.registry.versions import REQUIRES_APPROVAL_TAG as TAG_REQUIRES_APPROVAL
from edgeml.registry.versions import TEMPLATE_DIGEST_TAG as TAG_TEMPLATE_DIGEST
from edgeml.registry.versions import TRIGGER_ID_TAG as TAG_TRIGGER_ID
from edgeml.training.config import TrainingConfig
from edgeml.training.errors import TrainingError

TAG_SHA256 = "edgeml.io/sha256"
TAG_TRAINING_RUN = "edgeml.io/training-run"
TAG_TRAINING_RUN_UID = "edgeml.io/training-run-uid"
TAG_TRIGGER = "edgeml.io/trigger"
TAG_DATASET_SHA256 = "edgeml.io/dataset-sha256"
TAG_DATASET_URI = "edgeml.io/dataset-uri"
TAG_RUN_ID = "edgeml.io/run-id"
TAG_VERSION = "edgeml.io/version"
TAG_IMAGE = "edgeml.io/image"
TAG_RECOMMENDED = "edgeml.io/recommended-"
"""+ cpu / memory: the requests the profile recommends for an edge inference pod."""

CLIENT_ENV_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
}
"""Short retries, so a dead server fails the Job in seconds, not minutes (the Job's own
backoffLimit is the retry that matters)."""

_MAX_PARAM_LENGTH = 6000
_TRANSIENT_CODES = {
    "INTERNAL_ERROR",
    "TEMPORARILY_UNAVAILABLE",
    "REQUEST_LIMIT_EXCEEDED",
    "DEADLINE_EXCEEDED",
    "IO_ERROR",
    "ABORTED",
}


@dataclass(frozen=True)
class RegisteredVersion:
    """A registered version this training produced (or an earlier attempt of it did)."""

    name: str
    version: int
    run_id: str
    sha256: str
    dataset_sha256: str
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def model_uri(self) -> str:
        """The version's models:/ URI."""
        return f"models:/{self.name}/{self.version}"


@dataclass(frozen=True)
class RunRecord:
    """What one training logs: the inputs that made it and what came out."""

    params: dict[str, Any]
    metrics: dict[str, float]
    training_metrics: dict[str, float]
    dataset_uri: str
    dataset_sha256: str
    onnx_model: onnx.ModelProto
    input_example: npt.NDArray[np.float32]
    baseline: dict[str, Any]
    profile: dict[str, Any]
    notes: list[str]
    compared_with: int | None = None
    """The champion version scored on the same held-out rows (`champion.*` metrics)."""
    data_version: str | None = None
    """The data version read (see edgeml.datasource.location), when it has one."""
    dataset_objects: list[dict[str, Any]] = field(default_factory=list)
    """The objects of an s3:// dataset, as read (key, ETag, size, sha256)."""


def configure_environment(env: MutableMapping[str, str]) -> None:
    """Require MLFLOW_TRACKING_URI and default the client's retries and timeout."""
    if not env.get("MLFLOW_TRACKING_URI"):
        raise TrainingError(
            "InvalidConfig", "MLFLOW_TRACKING_URI is not set; the Job must name the MLflow server"
        )
    for key, value in CLIENT_ENV_DEFAULTS.items():
        env.setdefault(key, value)


def _is_connection_problem(exc: BaseException) -> bool:
    import requests

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, requests.RequestException | ConnectionError | TimeoutError):
            return True
        current = current.__cause__ or current.__context__
    return False


@contextmanager
def registry_errors(action: str) -> Iterator[None]:
    """Turn MLflow and HTTP failures while doing `action` into TrainingErrors."""
    from mlflow.exceptions import MlflowException

    try:
        yield
    except TrainingError:
        raise
    except MlflowException as exc:
        status = _http_status(exc)
        transient = (
            _is_connection_problem(exc)
            or exc.error_code in _TRANSIENT_CODES
            or (status is not None and status >= 500)
        )
        reason = "RegistryUnavailable" if transient else "RegistryRejected"
        raise TrainingError(reason, f"{action}: {exc.message}", transient=transient) from exc
    except Exception as exc:
        if _is_connection_problem(exc):
            raise TrainingError("RegistryUnavailable", f"{action}: {exc}", transient=True) from exc
        raise


def _http_status(exc: Any) -> int | None:
    try:
        return int(exc.get_http_status_code())
    except (AttributeError, TypeError, ValueError):
        return None


def _client() -> Any:
    from mlflow import MlflowClient

    return MlflowClient()


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


def find_version(config: TrainingConfig) -> RegisteredVersion | None:
    """The version an earlier attempt of this TrainingRun registered, if any.

    A version whose sha256 tag is missing (the attempt crashed right after registering)
    is completed here.
    """
    client = _client()
    name = config.registered_model
    with registry_errors(f"searching versions of {name}"):
        found = list(
            client.search_model_versions(
                f"name = '{_quote(name)}' and "
                f"tags.`{TAG_TRAINING_RUN_UID}` = '{_quote(config.training_run_uid)}'"
            )
        )
    if not found:
        return None
    version = min(found, key=lambda v: int(v.version))
    sha256 = version.tags.get(TAG_SHA256) or _tag_sha256(client, name, int(version.version))
    with registry_errors(f"reading run {version.run_id}"):
        run_metrics = client.get_run(version.run_id).data.metrics if version.run_id else {}
    return RegisteredVersion(
        name=name,
        version=int(version.version),
        run_id=version.run_id or "",
        sha256=sha256,
        dataset_sha256=version.tags.get(TAG_DATASET_SHA256, ""),
        metrics={
            k: float(v) for k, v in run_metrics.items() if not k.startswith(TRAINING_METRIC_PREFIX)
        },
    )


def _tag_sha256(client: Any, name: str, version: int) -> str:
    """Download the registered version, hash its model.onnx, and tag the version with it."""
    import mlflow

    with (
        registry_errors(f"downloading {name} version {version}"),
        tempfile.TemporaryDirectory(prefix="edgeml-verify-") as tmp,
    ):
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=f"models:/{name}/{version}", dst_path=tmp
        )
        path = Path(local) / "model.onnx"
        if not path.is_file():
            raise TrainingError("RegistryRejected", f"{name} version {version} holds no model.onnx")
        digest = _file_sha256(path)
    with registry_errors(f"tagging {name} version {version}"):
        client.set_model_version_tag(name, str(version), TAG_SHA256, digest)
    return digest


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _experiment_id(client: Any, name: str) -> str:
    from mlflow.exceptions import MlflowException

    existing = client.get_experiment_by_name(name)
    if existing is not None:
        return str(existing.experiment_id)
    try:
        return str(client.create_experiment(name))
    except MlflowException as exc:  # another run created it meanwhile
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
        return str(client.get_experiment_by_name(name).experiment_id)


def _param_value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= _MAX_PARAM_LENGTH else text[: _MAX_PARAM_LENGTH - 3] + "..."


def _signature(model: onnx.ModelProto, n_inputs: int) -> Any:
    from mlflow.models import ModelSignature
    from mlflow.types import Schema, TensorSpec

    outputs: list[Any] = []
    for output in model.graph.output:
        elem = output.type.tensor_type.elem_type
        if elem not in (onnx.TensorProto.FLOAT, onnx.TensorProto.INT64, onnx.TensorProto.DOUBLE):
            return ModelSignature(
                inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, n_inputs), "input")])
            )
        dims = [d.dim_value if d.dim_value > 0 else -1 for d in output.type.tensor_type.shape.dim]
        dtype = onnx.helper.tensor_dtype_to_np_dtype(elem)
        outputs.append(TensorSpec(np.dtype(dtype), tuple(dims) or (-1,), output.name))
    return ModelSignature(
        inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, n_inputs), "input")]),
        outputs=Schema(outputs),
    )


def _pip_requirements() -> list[str]:
    import onnxruntime

    return [f"onnx=={onnx.__version__}", f"onnxruntime=={onnxruntime.__version__}"]


def _run_tags(config: TrainingConfig, record: RunRecord) -> dict[str, str]:
    tags = {
        TAG_TRAINING_RUN: f"{config.namespace}/{config.training_run}",
        TAG_TRAINING_RUN_UID: config.training_run_uid,
        TAG_TRIGGER: config.trigger,
        TAG_DATASET_SHA256: record.dataset_sha256,
        TAG_DATASET_URI: record.dataset_uri,
        TAG_VERSION: __version__,
    }
    if config.image:
        tags[TAG_IMAGE] = config.image
    if config.trigger_id:
        tags[TAG_TRIGGER_ID] = config.trigger_id
    if config.reason:
        tags["mlflow.note.content"] = config.reason
    tags.update(_data_tags(config, record))
    return tags


def _data_tags(config: TrainingConfig, record: RunRecord) -> dict[str, str]:
    tags: dict[str, str] = {}
    if record.data_version:
        tags[TAG_DATA_VERSION] = record.data_version
    if config.template_digest:
        tags[TAG_TEMPLATE_DIGEST] = config.template_digest
    return tags


def version_tags(config: TrainingConfig, record: RunRecord, run_id: str) -> dict[str, str]:
    """The tags a new version is created with: what the operator and the pods need to
    trust it, and its lineage (trigger, reason, the champion it was compared with)."""
    tags = {
        TAG_TRAINING_RUN: f"{config.namespace}/{config.training_run}",
        TAG_TRAINING_RUN_UID: config.training_run_uid,
        TAG_TRIGGER: config.trigger,
        TAG_DATASET_SHA256: record.dataset_sha256,
        TAG_RUN_ID: run_id,
        **{
            f"{TAG_RECOMMENDED}{key}": str(value)
            for key, value in (record.profile.get("recommended") or {}).items()
            if key in ("cpu", "memory")
        },
    }
    if config.trigger_id:
        tags[TAG_TRIGGER_ID] = config.trigger_id
    if config.reason:
        tags[TAG_REASON] = config.reason
    if config.require_approval:
        tags[TAG_REQUIRES_APPROVAL] = "true"
    tags.update(_data_tags(config, record))
    if record.compared_with is not None:
        tags[TAG_COMPARED_WITH] = str(record.compared_with)
    return tags


def _stop_stale_runs(client: Any, experiment_id: str, uid: str) -> None:
    """Earlier attempts of this TrainingRun that died mid-run: mark them KILLED."""
    stale = client.search_runs(
        [experiment_id],
        filter_string=f"tags.`{TAG_TRAINING_RUN_UID}` = '{_quote(uid)}' "
        "and attributes.status = 'RUNNING'",
    )
    for run in stale:
        client.set_terminated(run.info.run_id, status="KILLED")


def _claim_model(client: Any, name: str, owner: str) -> None:
    """Create the registered model tagged as `owner`'s, or tag it if it names no owner;
    refuse one another EdgeModel owns (the operator refuses that too, but two first runs
    of same-named EdgeModels in two namespaces may race to create it)."""
    from mlflow.exceptions import MlflowException

    try:
        client.create_registered_model(name, tags={OWNER_TAG: owner})
        return
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    current = client.get_registered_model(name).tags.get(OWNER_TAG)
    if current is None:
        client.set_registered_model_tag(name, OWNER_TAG, owner)
    elif current != owner:
        raise TrainingError(
            REGISTERED_MODEL_IN_USE,
            f"MLflow registered model {name} belongs to EdgeModel {current} (its tag "
            f"{OWNER_TAG}), not to {owner}; set spec.registry.registeredModel on {owner} "
            "to a name of its own",
        )


def log_and_register(config: TrainingConfig, record: RunRecord) -> RegisteredVersion:
    """Log the run, register the model as a new version, verify and tag its sha256."""
    import mlflow
    import mlflow.onnx

    client = _client()
    name = config.registered_model
    with registry_errors(f"logging the run of {config.training_run}"):
        if config.edge_model:
            # Before the run is logged: a refused training leaves no run behind either.
            _claim_model(client, name, f"{config.namespace}/{config.edge_model}")
        experiment_id = _experiment_id(client, config.experiment_name)
        _stop_stale_runs(client, experiment_id, config.training_run_uid)
        with mlflow.start_run(
            experiment_id=experiment_id,
            run_name=config.training_run,
            tags=_run_tags(config, record),
        ) as run:
            run_id = run.info.run_id
            mlflow.log_params({k: _param_value(v) for k, v in record.params.items()})
            mlflow.log_metrics({**record.metrics, **record.training_metrics})
            n_inputs = int(record.input_example.shape[1])
            info = mlflow.onnx.log_model(
                record.onnx_model,
                name="model",
                signature=_signature(record.onnx_model, n_inputs),
                input_example={"input": record.input_example},
                # One self-contained file, so its sha256 covers every weight.
                save_as_external_data=False,
                onnx_execution_providers=["CPUExecutionProvider"],
                # Stated, not inferred: inference spawns an interpreter (about 3 s).
                pip_requirements=_pip_requirements(),
            )
            mlflow.log_dict(record.baseline, "edgeml/baseline.json")
            mlflow.log_dict(record.profile, "edgeml/profile.json")
            if record.notes:
                mlflow.log_text("\n".join(record.notes) + "\n", "edgeml/notes.txt")
            if record.dataset_objects:
                mlflow.log_dict({"objects": record.dataset_objects}, "edgeml/dataset-objects.json")
            # The uid tag goes in with the version itself: a retry finds it, whatever
            # happens after this call.
            version = mlflow.register_model(
                info.model_uri, name, tags=version_tags(config, record, run_id)
            )
            number = int(version.version)
            if config.reason:
                client.update_model_version(name, str(number), description=config.reason)
            sha256 = _tag_sha256(client, name, number)
    return RegisteredVersion(
        name=name,
        version=number,
        run_id=run_id,
        sha256=sha256,
        dataset_sha256=record.dataset_sha256,
        metrics=dict(record.metrics),
    )
