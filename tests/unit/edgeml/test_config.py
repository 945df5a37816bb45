"""The operator's configuration from its environment: receivers, images, resources."""

from __future__ import annotations

import pytest

from edgeml import __version__
from edgeml.api.notify import Receiver
from edgeml.config import DEFAULT_TRAINING_RESOURCES, OperatorConfig, image_reference


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


# --- images, pull secrets, training resources -----------------------------------------------

IMAGE_VARS = (
    "EDGEML_IMAGE",
    "EDGEML_SERVING_IMAGE",
    "EDGEML_TRAINING_IMAGE",
    "EDGEML_SERVING_IMAGE_PULL_POLICY",
    "EDGEML_TRAINING_IMAGE_PULL_POLICY",
    "EDGEML_IMAGE_PULL_SECRETS",
    "EDGEML_TRAINING_RESOURCES",
)


@pytest.fixture
def bare_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in IMAGE_VARS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.mark.parametrize(
    ("repository", "tag", "digest", "reference"),
    [
        ("ghcr.io/edgeml/edgeml-serving", "", "", "ghcr.io/edgeml/edgeml-serving:0.1.0"),
        ("mirror.local/serving", "1.2.3", "", "mirror.local/serving:1.2.3"),
        (
            "mirror.local/serving",
            "1.2.3",
            "sha256:" + "f" * 64,
            "mirror.local/serving@sha256:" + "f" * 64,
        ),
        (
            "mirror.local/serving",
            "",
            "sha256:" + "0" * 64,
            "mirror.local/serving@sha256:" + "0" * 64,
        ),
    ],
    ids=["version", "tag", "digest-wins", "digest"],
)
def test_image_reference(repository: str, tag: str, digest: str, reference: str) -> None:
    assert image_reference(repository, tag, digest) == reference


def test_images_default_to_the_projects_images_at_the_package_version(
    bare_env: pytest.MonkeyPatch,
) -> None:
    config = OperatorConfig.from_env()
    assert config.serving_image == f"ghcr.io/edgeml/edgeml-serving:{__version__}"
    assert config.training_image == f"ghcr.io/edgeml/edgeml-training:{__version__}"
    assert (config.serving_image_pull_policy, config.training_image_pull_policy) == (
        "IfNotPresent",
        "IfNotPresent",
    )
    assert config.image_pull_secrets == ()
    assert config.training_resources == DEFAULT_TRAINING_RESOURCES


def test_each_child_image_comes_from_its_own_variable(bare_env: pytest.MonkeyPatch) -> None:
    bare_env.setenv("EDGEML_SERVING_IMAGE", "mirror.local/serving:7")
    bare_env.setenv("EDGEML_TRAINING_IMAGE", "mirror.local/training@sha256:" + "1" * 64)
    bare_env.setenv("EDGEML_SERVING_IMAGE_PULL_POLICY", "Always")
    bare_env.setenv("EDGEML_TRAINING_IMAGE_PULL_POLICY", "Never")
    config = OperatorConfig.from_env()
    assert config.serving_image == "mirror.local/serving:7"
    assert config.training_image == "mirror.local/training@sha256:" + "1" * 64
    assert (config.serving_image_pull_policy, config.training_image_pull_policy) == (
        "Always",
        "Never",
    )


def test_the_single_image_variable_of_older_releases_still_names_both(
    bare_env: pytest.MonkeyPatch,
) -> None:
    bare_env.setenv("EDGEML_IMAGE", "old/edgeml:0.0.9")
    config = OperatorConfig.from_env()
    assert (config.serving_image, config.training_image) == ("old/edgeml:0.0.9",) * 2
    bare_env.setenv("EDGEML_TRAINING_IMAGE", "new/training:1")
    assert OperatorConfig.from_env().training_image == "new/training:1"


def test_a_wrong_pull_policy_is_a_clear_error(bare_env: pytest.MonkeyPatch) -> None:
    bare_env.setenv("EDGEML_SERVING_IMAGE_PULL_POLICY", "Sometimes")
    with pytest.raises(ValueError, match="EDGEML_SERVING_IMAGE_PULL_POLICY must be one of"):
        OperatorConfig.from_env()


@pytest.mark.parametrize(
    ("value", "names"),
    [("", ()), ("regcred", ("regcred",)), (" a, b ,,a ", ("a", "b"))],
)
def test_pull_secrets_are_a_comma_separated_list(
    bare_env: pytest.MonkeyPatch, value: str, names: tuple[str, ...]
) -> None:
    bare_env.setenv("EDGEML_IMAGE_PULL_SECRETS", value)
    assert OperatorConfig.from_env().image_pull_secrets == names


def test_training_resources_come_from_json(bare_env: pytest.MonkeyPatch) -> None:
    bare_env.setenv(
        "EDGEML_TRAINING_RESOURCES", '{"requests": {"cpu": "2", "memory": "4Gi"}, "limits": {}}'
    )
    resources = OperatorConfig.from_env().training_resources
    assert resources.to_json() == {"requests": {"cpu": "2", "memory": "4Gi"}, "limits": {}}


@pytest.mark.parametrize("value", ["{}", "null", ""])
def test_empty_training_resources_keep_the_default(
    bare_env: pytest.MonkeyPatch, value: str
) -> None:
    bare_env.setenv("EDGEML_TRAINING_RESOURCES", value)
    assert OperatorConfig.from_env().training_resources == DEFAULT_TRAINING_RESOURCES


@pytest.mark.parametrize(
    "value", ['{"requests": {"cpu": "two"}}', '{"requests": {"gpu": "1"}}', "[]", "nope"]
)
def test_malformed_training_resources_are_a_clear_error(
    bare_env: pytest.MonkeyPatch, value: str
) -> None:
    bare_env.setenv("EDGEML_TRAINING_RESOURCES", value)
    with pytest.raises(ValueError, match="EDGEML_TRAINING_RESOURCES is not a resources object"):
        OperatorConfig.from_env()


def test_numeric_quantities_from_helm_are_strings(bare_env: pytest.MonkeyPatch) -> None:
    bare_env.setenv("EDGEML_TRAINING_RESOURCES", '{"requests": {"cpu": 2}, "limits": {"cpu": 0.5}}')
    resources = OperatorConfig.from_env().training_resources
    assert resources.to_json() == {"requests": {"cpu": "2"}, "limits": {"cpu": "0.5"}}


def test_training_tolerations_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "EDGEML_TRAINING_TOLERATIONS",
        '[{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}]',
    )
    (toleration,) = OperatorConfig.from_env().training_tolerations
    assert toleration.to_json() == {"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}
    monkeypatch.setenv("EDGEML_TRAINING_TOLERATIONS", '[{"operator": "Sometimes"}]')
    with pytest.raises(
        ValueError, match="EDGEML_TRAINING_TOLERATIONS is not a list of tolerations"
    ):
        OperatorConfig.from_env()


def test_training_volume_types_come_from_the_chart_and_default_to_no_hostpath(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("EDGEML_TRAINING_VOLUME_TYPES", raising=False)
    assert OperatorConfig.from_env().training_volume_types == (
        "persistentVolumeClaim",
        "configMap",
        "secret",
        "emptyDir",
        "csi",
    )
    monkeypatch.setenv("EDGEML_TRAINING_VOLUME_TYPES", " emptyDir, hostPath ,emptyDir")
    assert OperatorConfig.from_env().training_volume_types == ("emptyDir", "hostPath")
