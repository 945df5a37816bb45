"""The inference pod: the serving image, pull secrets, and the same restricted,
read-only, token-less contract as the training Job."""

from __future__ import annotations

from typing import Any

import pytest

from edgeml.api.edgedeployment import EdgeDeploymentSpec
from edgeml.config import OperatorConfig
from edgeml.objects.inference import CACHE_PATH, ServingInputs, build_inference_pod
from support.objects import edge_deployment

CONFIG = OperatorConfig(
    serving_image="registry.example/edgeml-serving@sha256:" + "b" * 64,
    training_image="registry.example/edgeml-training:1",
    serving_image_pull_policy="Never",
    image_pull_secrets=("regcred",),
)


def pod(
    config: OperatorConfig = CONFIG, credentials_secret: str | None = None, **spec: Any
) -> dict[str, Any]:
    body = edge_deployment(**spec)
    body["metadata"].update(namespace="edge", uid="dep-uid")
    inputs = ServingInputs(
        deployment=body,
        spec=EdgeDeploymentSpec.model_validate(body["spec"]),
        registered_model="vibration",
        tracking_uri="http://mlflow:5000",
        credentials_secret=credentials_secret,
    )
    return build_inference_pod(inputs, "edge-0", 3, "c" * 64, config)


def container_of(manifest: dict[str, Any]) -> dict[str, Any]:
    (container,) = manifest["spec"]["containers"]
    return container  # type: ignore[no-any-return]


def test_the_pod_runs_the_serving_image_with_its_pull_policy() -> None:
    container = container_of(pod())
    assert container["image"] == CONFIG.serving_image
    assert container["imagePullPolicy"] == "Never"


def test_the_default_images_are_the_projects_two_child_images() -> None:
    config = OperatorConfig()
    assert config.serving_image == "ghcr.io/edgeml/edgeml-serving:0.1.0"
    assert config.training_image == "ghcr.io/edgeml/edgeml-training:0.1.0"
    container = container_of(pod(config))
    assert (container["image"], container["imagePullPolicy"]) == (
        config.serving_image,
        "IfNotPresent",
    )


def test_the_pod_names_the_configured_pull_secrets() -> None:
    assert pod()["spec"]["imagePullSecrets"] == [{"name": "regcred"}]
    assert "imagePullSecrets" not in pod(OperatorConfig())["spec"]


def test_the_pod_gets_no_service_account_token() -> None:
    assert pod()["spec"]["automountServiceAccountToken"] is False


def test_the_pod_runs_as_the_images_non_root_user_with_seccomp() -> None:
    assert pod()["spec"]["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 65532,
        "runAsGroup": 65532,
        "fsGroup": 65532,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("readOnlyRootFilesystem", True),
        ("allowPrivilegeEscalation", False),
        ("privileged", False),
        ("capabilities", {"drop": ["ALL"]}),
        ("runAsNonRoot", True),
        ("seccompProfile", {"type": "RuntimeDefault"}),
    ],
)
def test_the_container_is_restricted(field: str, value: Any) -> None:
    assert container_of(pod())["securityContext"][field] == value


def test_the_writable_paths_are_volumes() -> None:
    manifest = pod()
    mounts = {m["mountPath"]: m["name"] for m in container_of(manifest)["volumeMounts"]}
    assert mounts == {"/tmp": "tmp", CACHE_PATH: "model-cache"}
    volumes = {v["name"]: v for v in manifest["spec"]["volumes"]}
    assert volumes["tmp"] == {"name": "tmp", "emptyDir": {}}
    assert volumes["model-cache"] == {"name": "model-cache", "emptyDir": {}}


def test_the_pod_is_bound_to_its_node() -> None:
    terms = pod()["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ]["nodeSelectorTerms"]
    assert terms == [
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["edge-0"]}]}
    ]


def test_the_registry_secret_gives_the_pod_its_mlflow_keys_by_name_only() -> None:
    container = container_of(pod(credentials_secret="mlflow"))
    assert "envFrom" not in container
    keys = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN")
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"] if "valueFrom" in e}
    assert refs == {key: {"name": "mlflow", "key": key, "optional": True} for key in keys}
    assert not {e["name"] for e in container_of(pod())["env"]} & set(keys)
