"""MLflow credentials as plain data: which keys of an EdgeModel's registry Secret count,
the Authorization header they make, and whether the operator may use the Secret at all.

The same keys reach three readers of MLflow: the training Job and the inference pods
(as environment variables, each key by name, so the Secret sets nothing else in them)
and the operator's own calls for that EdgeModel (as the header). The operator reads a
Secret only when its owner opted in with a label, as for receivers and datasets: who may
write an EdgeModel must not be able to make the operator read a Secret for them.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field

REGISTRY_CREDENTIALS_LABEL = "edgeml.io/registry-credentials"
USERNAME = "MLFLOW_TRACKING_USERNAME"
PASSWORD = "MLFLOW_TRACKING_PASSWORD"  # noqa: S105 - the name of a key, not a password
TOKEN = "MLFLOW_TRACKING_TOKEN"  # noqa: S105
KEYS = (USERNAME, PASSWORD, TOKEN)
"""The keys the mlflow client reads; a registry Secret's other keys are ignored."""
PROBLEMS = frozenset(
    {"RegistryCredentialsNotFound", "RegistryCredentialsNotLabelled", "RegistryCredentialsInvalid"}
)
"""The reasons `registry_access` gives; an EdgeModel's RegistryAvailable condition
carries them, and its TrainingRuns wait while it does."""


def authorization_of(values: Mapping[str, str]) -> str | None:
    """The Authorization header the mlflow client sends for these variables: basic auth
    when a username and a password are both set, else a bearer token, else none."""
    user, password = values.get(USERNAME), values.get(PASSWORD)
    if user and password:
        return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    token = values.get(TOKEN)
    return f"Bearer {token}" if token else None


@dataclass(frozen=True)
class RegistryAccess:
    """How the operator calls MLflow for one EdgeModel: with this header (None: its own
    environment's credentials), or not at all, for the reason given."""

    authorization: str | None = field(default=None, repr=False)  # a credential: never logged
    problem: tuple[str, str] | None = None
    """(reason, message) when the EdgeModel names a Secret the operator cannot use."""


def registry_access(
    name: str | None, secret: tuple[Mapping[str, str], Mapping[str, str]] | None
) -> RegistryAccess:
    """The access an EdgeModel's `registry.credentialsSecretRef` gives the operator.

    `name` is the Secret's name (None: the EdgeModel names none, and the operator's own
    credentials are used); `secret` its labels and data as read (None: not found).
    """
    if name is None:
        return RegistryAccess()
    if secret is None:
        return RegistryAccess(
            problem=(
                "RegistryCredentialsNotFound",
                f"Secret {name} (spec.registry.credentialsSecretRef) does not exist",
            )
        )
    labels, data = secret
    if labels.get(REGISTRY_CREDENTIALS_LABEL) != "true":
        return RegistryAccess(
            problem=(
                "RegistryCredentialsNotLabelled",
                f"Secret {name} is not labelled {REGISTRY_CREDENTIALS_LABEL}=true, so the "
                "operator does not read it, and will not call MLflow for this EdgeModel "
                "with its own credentials instead",
            )
        )
    authorization = authorization_of(data)
    if authorization is None:
        return RegistryAccess(
            problem=(
                "RegistryCredentialsInvalid",
                f"Secret {name} needs {TOKEN}, or {USERNAME} and {PASSWORD}",
            )
        )
    return RegistryAccess(authorization=authorization)
