"""The training template's digest: what the CodeChange trigger compares."""

from __future__ import annotations

import hashlib
import json

from edgeml.api.edgemodel import TrainingTemplate


def template_digest(training: TrainingTemplate, image: str) -> str:
    """A digest of what decides the model a run produces from given data: the estimator
    (class and parameters), the columns (target, features, categorical), the evaluation,
    and the training image. Not the data itself (NewData watches that), nor resources,
    volumes or deadlines, which change how a run goes, not what it makes."""
    dataset = training.dataset
    document = {
        "estimator": training.estimator.to_json(),
        "target": dataset.target,
        "features": dataset.features,
        "categorical": dataset.categorical,
        "evaluation": training.evaluation.to_json(),
        "image": image,
    }
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:20]
