"""Registered versions as plain data, so pure code can reason about them without MLflow."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from edgeml.quantities import QUANTITY_PATTERN

TAG_PREFIX = "edgeml.io/"
SHA256_TAG = f"{TAG_PREFIX}sha256"
RUN_TAG = f"{TAG_PREFIX}training-run"
RUN_UID_TAG = f"{TAG_PREFIX}training-run-uid"
DATASET_TAG = f"{TAG_PREFIX}dataset-sha256"
DATA_VERSION_TAG = f"{TAG_PREFIX}data-version"
"""The data version trained on (edgeml.datasource.location): NewData compares it."""
TEMPLATE_DIGEST_TAG = f"{TAG_PREFIX}template-digest"
"""The digest of the training template trained with (objects.template): CodeChange
compares it."""
TRIGGER_TAG = f"{TAG_PREFIX}trigger"
RECOMMENDED_TAG = f"{TAG_PREFIX}recommended-"
TRIGGER_ID_TAG = f"{TAG_PREFIX}trigger-id"
REASON_TAG = f"{TAG_PREFIX}reason"
REQUIRES_APPROVAL_TAG = f"{TAG_PREFIX}requires-approval"
"""Set by a run whose version must wait for a person (a DriftPolicy with action Retrain)."""
COMPARED_WITH_TAG = f"{TAG_PREFIX}compared-with"
"""The champion version the training scored on the same held-out rows."""
PROMOTION_TAG = f"{TAG_PREFIX}promotion"
"""Rejected, once promotion refused the version (promoted versions carry promoted-by)."""
PROMOTION_MESSAGE_TAG = f"{TAG_PREFIX}promotion-message"
OWNER_TAG = f"{TAG_PREFIX}edge-model"
"""On the registered model: the EdgeModel (`namespace/name`) whose versions it holds. Two
EdgeModels of the same name in two namespaces default to one registered name on a shared
MLflow; the tag keeps the second from taking, promoting or training into the first's."""
CHAMPION_METRIC_PREFIX = "champion."
"""Run metrics holding the champion's score on the version's held-out rows."""
TRAINING_METRIC_PREFIX = "training."


@dataclass(frozen=True)
class RegistryVersion:
    """One registered version, with what the operator needs from its run."""

    version: int
    run_id: str | None
    source: str | None
    created: datetime | None
    tags: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()

    @property
    def sha256(self) -> str | None:
        return self.tags.get(SHA256_TAG)

    @property
    def recommended(self) -> dict[str, str]:
        """The pod requests the training profile recommends (cpu, memory), if profiled.

        Tags are free text anyone with registry access can set: a value that is not a
        Kubernetes quantity is dropped, or every pod of the version would be refused.
        """
        return {
            key: value
            for key in ("cpu", "memory")
            if (value := self.tags.get(RECOMMENDED_TAG + key))
            and re.fullmatch(QUANTITY_PATTERN, value)
            and len(value) <= 32
        }
