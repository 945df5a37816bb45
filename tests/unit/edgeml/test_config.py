"""The operator's configuration from its environment: operator-wide receivers."""

from __future__ import annotations

import pytest

from edgeml.api.notify import Receiver
from edgeml.config import OperatorConfig


def test_operator_wide_receivers_and_namespace_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EDGEML_POD_NAMESPACE", "ops")
    monkeypatch.setenv(
        "EDGEML_NOTIFY_RECEIVERS",
        '[{"name": "pager", "secretRef": {"name": "pager-hook"}, "format": "CloudEvents"}]',
    )
    config = OperatorConfig.from_env()
    assert config.namespace == "ops"
    assert config.notify_receivers == (
        Receiver.model_validate(
            {"name": "pager", "secretRef": {"name": "pager-hook"}, "format": "CloudEvents"}
        ),
    )


def test_no_receivers_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EDGEML_NOTIFY_RECEIVERS", raising=False)
    monkeypatch.delenv("EDGEML_POD_NAMESPACE", raising=False)
    config = OperatorConfig.from_env()
    assert (config.notify_receivers, config.namespace) == ((), "edgeml-system")


@pytest.mark.parametrize(
    "value", ['{"name": "x"}', '[{"name": "Bad Name", "secretRef": {"name": "s"}}]', "nope"]
)
def test_malformed_receivers_are_a_clear_error(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("EDGEML_NOTIFY_RECEIVERS", value)
    with pytest.raises(ValueError, match="EDGEML_NOTIFY_RECEIVERS is not a list of receivers"):
        OperatorConfig.from_env()
