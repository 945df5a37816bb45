"""The chart's values.schema.json: the defaults pass, images and resources are typed,
unknown keys are refused (checked without helm; see values.py)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from unit.chart.values import CHART, schema_errors


def defaults() -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text())
    return values


def with_value(path: str, value: Any) -> dict[str, Any]:
    values = defaults()
    *parents, last = path.split(".")
    node = values
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value
    return values


def test_the_default_values_pass_the_schema() -> None:
    assert schema_errors(defaults()) == []


def test_each_program_has_its_own_image_defaulting_to_the_app_version() -> None:
    values = defaults()
    images = {
        "operator": values["image"],
        "training": values["training"]["image"],
        "serving": values["serving"]["image"],
    }
    for program, image in images.items():
        assert image["repository"] == f"ghcr.io/edgeml/edgeml-{program}"
        assert (image["tag"], image["digest"], image["pullPolicy"]) == ("", "", "IfNotPresent")


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("image.digest", "sha256:" + "a" * 64),
        ("serving.image.tag", "1.2.3-rc.1"),
        ("training.image.repository", "registry.local:5000/team/edgeml-training"),
        ("imagePullSecrets", [{"name": "regcred"}, {"name": "mirror.creds"}]),
        ("training.resources", {"requests": {"cpu": 2, "memory": "4Gi"}}),
        ("training.resources", {}),
    ],
)
def test_the_schema_accepts(path: str, value: Any) -> None:
    assert schema_errors(with_value(path, value)) == []


@pytest.mark.parametrize(
    ("path", "value", "why"),
    [
        ("image.digest", "a" * 64, "does not match"),
        ("serving.image.digest", "sha256:short", "does not match"),
        ("training.image.tag", "v1:latest", "does not match"),
        ("serving.image.repository", "ghcr.io/edgeml/edgeml-serving@sha256", "does not match"),
        ("training.image.pullPolicy", "Sometimes", "is not one of"),
        ("serving.image.registry", "ghcr.io", "unknown key 'registry'"),
        ("image.operator", {"repository": "x"}, "unknown key 'operator'"),
        ("imagePullSecrets", [{"name": "regcred", "namespace": "x"}], "unknown key"),
        ("imagePullSecrets", ["regcred"], "is not of type"),
        ("training.resources", {"requests": {"gpu": "1"}}, "unknown key 'gpu'"),
        ("training.resources", {"request": {"cpu": "1"}}, "unknown key 'request'"),
        ("training.resources", {"limits": {"memory": ["2Gi"]}}, "is not of type"),
    ],
)
def test_the_schema_refuses(path: str, value: Any, why: str) -> None:
    errors = schema_errors(with_value(path, value))
    assert any(why in e for e in errors), errors
