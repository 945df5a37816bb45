"""The input of `edgeml train`: one JSON document the operator writes into the Job.

```json
{"registeredModel": "vibration", "namespace": "demo", "trainingRun": "vibration-1",
 "trainingRunUid": "<uid>", "trigger": "Manual", "reason": "optional text",
 "image": "ghcr.io/edgeml/edgeml-training:0.1.0", "allowedModules": ["sklearn"],
 "training": {...an EdgeModel spec.training, merged with the run's overrides...}}
```
"""

from __future__ import annotations

import json
from typing import Annotated

from pydantic import Field, StringConstraints, ValidationError

from edgeml.api.common import KubeModel
from edgeml.api.edgemodel import TrainingTemplate
from edgeml.training.errors import TrainingError

_NonEmpty = Annotated[str, StringConstraints(min_length=1, max_length=1024)]


class ChampionReference(KubeModel):
    """The champion when the run was started: scored on the run's held-out rows."""

    version: Annotated[int, Field(ge=1)]
    """Its registered version."""
    sha256: str | None = None
    """The sha256 of its ONNX bytes, checked after download."""


class TrainingConfig(KubeModel):
    """Everything one training run needs to know, as the operator hands it over."""

    registered_model: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    """The MLflow registered model that receives the new version."""
    namespace: _NonEmpty
    """The TrainingRun's namespace (names the MLflow experiment)."""
    training_run: _NonEmpty
    """The TrainingRun's name."""
    training_run_uid: _NonEmpty
    """The TrainingRun's uid: the idempotency key of the registered version."""
    edge_model: str | None = None
    """The TrainingRun's EdgeModel (its modelRef.name): the registered model is tagged as
    `namespace/edgeModel`'s, and one tagged as another EdgeModel's is refused."""
    trigger: str = "Manual"
    """Why the run exists: Manual, Schedule, Drift or NewData."""
    reason: str | None = None
    """A sentence on why; becomes the version's description."""
    trigger_id: str | None = None
    """The id that follows a retrain from its trigger to the rollout."""
    require_approval: bool = False
    """Tag the version so that it waits for a person's approval."""
    champion: ChampionReference | None = None
    """The champion to score on the same held-out rows (none for a first version)."""
    image: str | None = None
    """The image the Job runs, recorded on the MLflow run."""
    template_digest: str | None = None
    """The digest of what was trained with (estimator, features, evaluation, image),
    recorded on the version for the CodeChange trigger."""
    allowed_modules: list[_NonEmpty] = Field(default_factory=lambda: ["sklearn"], min_length=1)
    """Top-level modules (or dotted prefixes) estimator classes may come from."""
    training: TrainingTemplate
    """The training template, already merged with the run's overrides."""

    @property
    def experiment_name(self) -> str:
        """The MLflow experiment of all runs of this model in this namespace."""
        return f"edgeml/{self.namespace}/{self.registered_model}"


def parse_config(text: str) -> TrainingConfig:
    """Parse the config JSON; a document that does not parse is an `InvalidConfig` error."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TrainingError("InvalidConfig", f"the config is not JSON: {exc}") from exc
    try:
        return TrainingConfig.model_validate(data)
    except ValidationError as exc:
        raise TrainingError("InvalidConfig", _first_error(exc)) from exc


def _first_error(exc: ValidationError) -> str:
    """The first validation error as `field.path: message (and N more)`."""
    errors = exc.errors()
    first = errors[0]
    where = ".".join(str(part) for part in first["loc"]) or "config"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {first['msg']}{more}"
