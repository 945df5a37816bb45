"""Which registry Secrets the operator uses for an EdgeModel, and the header they make."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgeml.registry.credentials import (
    PROBLEMS,
    REGISTRY_CREDENTIALS_LABEL,
    RegistryAccess,
    authorization_of,
    registry_access,
)

LABELLED = {REGISTRY_CREDENTIALS_LABEL: "true"}
BASIC = {"MLFLOW_TRACKING_USERNAME": "ann", "MLFLOW_TRACKING_PASSWORD": "pw"}
TOKEN = {"MLFLOW_TRACKING_TOKEN": "tok"}


@pytest.mark.parametrize(
    ("values", "header"),
    [
        ({}, None),
        (BASIC, "Basic YW5uOnB3"),
        ({**BASIC, **TOKEN}, "Basic YW5uOnB3"),  # the mlflow client's order: basic first
        (TOKEN, "Bearer tok"),
        ({"MLFLOW_TRACKING_USERNAME": "ann", **TOKEN}, "Bearer tok"),  # half a pair is none
        ({"MLFLOW_TRACKING_USERNAME": "", "MLFLOW_TRACKING_PASSWORD": "", **TOKEN}, "Bearer tok"),
        ({"MLFLOW_TRACKING_TOKEN": ""}, None),
    ],
)
def test_the_header_is_the_one_the_mlflow_client_sends(
    values: dict[str, str], header: str | None
) -> None:
    assert authorization_of(values) == header


@given(st.text(min_size=1), st.text(min_size=1))
def test_a_basic_header_decodes_to_the_pair(user: str, password: str) -> None:
    header = authorization_of(
        {"MLFLOW_TRACKING_USERNAME": user, "MLFLOW_TRACKING_PASSWORD": password}
    )
    assert header is not None
    assert header.startswith("Basic ")
    assert base64.b64decode(header.removeprefix("Basic ")).decode() == f"{user}:{password}"


def test_no_secret_named_is_the_operators_own_credentials() -> None:
    assert registry_access(None, None) == RegistryAccess()


@pytest.mark.parametrize(
    ("secret", "reason", "says"),
    [
        (None, "RegistryCredentialsNotFound",
         "Secret mlflow (spec.registry.credentialsSecretRef) does not exist"),
        (({}, BASIC), "RegistryCredentialsNotLabelled",
         f"not labelled {REGISTRY_CREDENTIALS_LABEL}=true"),
        (({REGISTRY_CREDENTIALS_LABEL: "yes"}, BASIC), "RegistryCredentialsNotLabelled", "=true"),
        ((LABELLED, {"password": "pw"}), "RegistryCredentialsInvalid",
         "needs MLFLOW_TRACKING_TOKEN, or"),
        ((LABELLED, {"MLFLOW_TRACKING_USERNAME": "ann"}), "RegistryCredentialsInvalid", "needs"),
    ],
)  # fmt: skip
def test_a_secret_the_operator_cannot_use_says_why(
    secret: tuple[dict[str, str], dict[str, str]] | None, reason: str, says: str
) -> None:
    access = registry_access("mlflow", secret)
    assert access.authorization is None
    assert access.problem is not None
    assert access.problem[0] == reason
    assert reason in PROBLEMS
    assert says in access.problem[1]


@pytest.mark.parametrize(("data", "header"), [(BASIC, "Basic YW5uOnB3"), (TOKEN, "Bearer tok")])
def test_a_labelled_secret_with_keys_is_used(data: dict[str, str], header: str) -> None:
    access = registry_access("mlflow", (LABELLED, {**data, "PYTHONPATH": "/evil"}))
    assert access == RegistryAccess(authorization=header)
    assert header not in repr(access)  # a credential never reaches a log line
