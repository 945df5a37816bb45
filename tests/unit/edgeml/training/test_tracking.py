"""The MLflow side without a server: environment defaults and how failures are classified."""

from __future__ import annotations

import numpy as np
import pytest
import requests
from mlflow.exceptions import MlflowException, RestException
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

from edgeml.training.errors import TrainingError
from edgeml.training.export import convert_to_onnx
from edgeml.training.tracking import _signature, configure_environment, registry_errors


def test_environment_requires_the_tracking_uri() -> None:
    with pytest.raises(TrainingError) as caught:
        configure_environment({})
    assert caught.value.reason == "InvalidConfig"


def test_environment_defaults_do_not_override() -> None:
    env = {"MLFLOW_TRACKING_URI": "http://mlflow:5000", "MLFLOW_HTTP_REQUEST_TIMEOUT": "5"}
    configure_environment(env)
    assert env["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "5"
    assert env["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "2"


def _classify(exc: BaseException) -> TrainingError:
    with pytest.raises(TrainingError) as caught, registry_errors("doing it"):
        raise exc
    return caught.value


def test_connection_failure_is_registry_unavailable() -> None:
    try:
        try:
            raise requests.ConnectionError("refused")
        except requests.ConnectionError as inner:
            raise MlflowException("API request failed", error_code=1) from inner
    except MlflowException as outer:
        error = _classify(outer)
    assert (error.reason, error.exit_code) == ("RegistryUnavailable", 3)
    assert error.message == "doing it: API request failed"


def test_server_errors_are_unavailable_and_refusals_rejected() -> None:
    unavailable = _classify(
        RestException({"error_code": "TEMPORARILY_UNAVAILABLE", "message": "x"})
    )
    assert unavailable.reason == "RegistryUnavailable"
    refused = _classify(RestException({"error_code": "PERMISSION_DENIED", "message": "no"}))
    assert (refused.reason, refused.exit_code) == ("RegistryRejected", 2)


def test_a_bare_requests_error_is_unavailable() -> None:
    assert _classify(requests.Timeout("slow")).reason == "RegistryUnavailable"


def test_other_errors_pass_through() -> None:
    with pytest.raises(KeyError), registry_errors("x"):
        raise KeyError("bug")


def test_signature_names_the_input_and_outputs() -> None:
    x, y = make_classification(60, 4, random_state=0)
    estimator = LogisticRegression().fit(x.astype(np.float32), y)
    encoding = {"columns": [], "categorical": {}, "inputs": []}
    model = convert_to_onnx(estimator, 4, "classification", encoding, "lr")
    signature = _signature(model, 4).to_dict()
    assert '"name": "input"' in signature["inputs"]
    assert '"name": "label"' in signature["outputs"]
    assert '"name": "probabilities"' in signature["outputs"]
