"""Pure: the NewData and CodeChange triggers, what the operator watches for them, and
what it compares.

NewData: the operator looks at the dataset a retrain would read (the policy's override,
else the model's) every `newData.interval` and computes its data version
(edgeml.datasource.location), the same digest the training program records on the
version it registers. A version that is neither the champion's nor the baseline (the
version the policy already retrained for, or first saw) asks for one run.

CodeChange: the digest of the training template a retrain would use, with the training
image (objects.template), against the champion's; a champion without one (trained before
digests were recorded) makes the current template the baseline.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from edgeml.api.common import parse_duration
from edgeml.api.driftpolicy import DriftPolicySpec, NewDataStatus
from edgeml.api.edgemodel import Dataset, EdgeModelSpec, TrainingTemplate
from edgeml.objects.template import template_digest
from edgeml.plans.common import ConditionSpec
from edgeml.plans.trainingrun import merge_overrides

DATASET_READABLE = "DatasetReadable"
DATASET_CREDENTIALS_LABEL = "edgeml.io/dataset-credentials"
"""The label a Secret needs before the operator reads it to watch a dataset."""
RETRY_AFTER_ERROR = timedelta(seconds=30)
"""A failed look is retried this soon (or at the interval, if shorter)."""


@dataclass(frozen=True)
class DataLook:
    """One look at the dataset, as the controller made it."""

    uri: str
    at: datetime
    data_version: str | None = None
    objects: int | None = None
    newest: str | None = None
    error_reason: str | None = None
    """DatasetNotFound, DatasetEmpty, DatasetAccessDenied, ObjectStoreUnavailable, ..."""
    error: str | None = None


@dataclass(frozen=True)
class ChangeFacts:
    """What one trigger compares: the value now, the champion's, and the baseline."""

    current: str
    champion: str | None
    baseline: str | None
    reason: str
    """The run's reason, should this change start one."""


def retrain_template(model: EdgeModelSpec, spec: DriftPolicySpec) -> TrainingTemplate:
    """The training template a retrain of this policy uses."""
    return merge_overrides(model.training, spec.retraining.overrides)


def watched_dataset(model: EdgeModelSpec | None, spec: DriftPolicySpec) -> Dataset | None:
    """The dataset a retrain reads: the policy's override, else the model's."""
    overrides = spec.retraining.overrides
    if overrides is not None and overrides.dataset is not None:
        return overrides.dataset
    return model.training.dataset if model is not None else None


def watch_problem(dataset: Dataset | None) -> str | None:
    """Why newData cannot watch this dataset (InvalidSpec), or None."""
    if dataset is not None and dataset.uri.startswith("file://"):
        return (
            f"spec.newData: the dataset {dataset.uri} is a file on a volume only the training "
            "pod mounts, so the operator cannot watch it; use an s3:// or http(s):// dataset "
            "(or spec.schedule)"
        )
    return None


def look_due(spec: DriftPolicySpec, old: NewDataStatus | None, uri: str, now: datetime) -> bool:
    """Whether the operator should look at the dataset now."""
    if spec.new_data is None:
        return False
    if old is None or old.checked is None or old.uri != uri:
        return True
    at = next_look(spec, old)
    return at is None or now >= at


def next_look(spec: DriftPolicySpec, status: NewDataStatus) -> datetime | None:
    """When the next look is due (sooner after a failed one)."""
    if spec.new_data is None or status.checked is None:
        return None
    interval = parse_duration(spec.new_data.interval)
    if status.error is not None:
        interval = min(interval, RETRY_AFTER_ERROR)
    return status.checked + interval


def new_data_status(old: NewDataStatus | None, look: DataLook | None) -> NewDataStatus | None:
    """The watch's status after this pass: a failed look keeps the last good version."""
    if look is None:
        return old
    base = old if old is not None and old.uri == look.uri else NewDataStatus(uri=look.uri)
    if look.error is not None:
        return base.model_copy(update={"checked": look.at, "error": look.error})
    return base.model_copy(
        update={
            "checked": look.at,
            "error": None,
            "data_version": look.data_version,
            "objects": look.objects,
            "newest": look.newest,
        }
    )


def dataset_condition(look: DataLook | None, status: NewDataStatus | None) -> ConditionSpec | None:
    """DatasetReadable: whether the last look at the watched dataset worked."""
    if look is None or status is None:
        return None
    if look.error is not None:
        kept = (
            f" The last data version seen, {status.data_version}, is kept."
            if status.data_version
            else ""
        )
        return ConditionSpec(
            DATASET_READABLE,
            "False",
            look.error_reason or "DatasetUnreadable",
            f"{look.error}{kept} The operator looks again at the next interval.",
        )
    what = f"{look.objects} objects" if look.objects is not None else "the dataset"
    newest = f", newest {look.newest}" if look.newest else ""
    return ConditionSpec(
        DATASET_READABLE,
        "True",
        "Watching",
        f"{look.uri}: {what}{newest}, data version {look.data_version}.",
    )


def data_change(
    status: NewDataStatus | None, champion: Mapping[str, Any] | None
) -> ChangeFacts | None:
    """The NewData comparison, once the watch has a data version."""
    if status is None or not status.data_version:
        return None
    champ = (champion or {}).get("dataVersion")
    version = (champion or {}).get("version")
    objects = f" ({status.objects} objects, newest {status.newest})" if status.newest else ""
    trained = f"; champion version {version} was trained on data version {champ}" if champ else ""
    return ChangeFacts(
        status.data_version,
        champ,
        status.baseline,
        f"New data at {status.uri}: data version {status.data_version}{objects}{trained}.",
    )


def code_change(
    model: EdgeModelSpec | None,
    spec: DriftPolicySpec,
    image: str,
    champion: Mapping[str, Any] | None,
    baseline: str | None,
) -> ChangeFacts | None:
    """The CodeChange comparison, when the policy opted in and the model has a champion."""
    if not spec.code_change or model is None or not champion:
        return None
    digest = template_digest(retrain_template(model, spec), image)
    champ = champion.get("templateDigest")
    return ChangeFacts(
        digest,
        champ,
        baseline,
        f"The training template or image changed since champion version "
        f"{champion.get('version')} was trained (template {champ or 'unrecorded'} -> "
        f"{digest}).",
    )
