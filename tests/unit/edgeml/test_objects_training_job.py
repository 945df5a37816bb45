"""The training Job's pod: the training image, pull secrets, restricted and read-only,
no service-account token, and resources even when the EdgeModel names none."""

from __future__ import annotations

import json
from typing import Any

import pytest

from edgeml.api.common import ResourceRequirements
from edgeml.api.edgedeployment import Toleration
from edgeml.api.edgemodel import EdgeModelSpec
from edgeml.config import OperatorConfig
from edgeml.objects.training_job import TrainingInputs, build_training_job, train_config
from support.objects import edge_model, training_run

CONFIG = OperatorConfig(
    mlflow_tracking_uri="http://mlflow:5000",
    serving_image="registry.example/edgeml-serving:1",
    training_image="registry.example/edgeml-training@sha256:" + "a" * 64,
    training_image_pull_policy="Always",
    image_pull_secrets=("regcred", "mirror"),
)


def inputs(**training: Any) -> TrainingInputs:
    run = training_run()
    run["metadata"].update(namespace="ml", uid="run-uid")
    model = edge_model(training=training) if training else edge_model()
    spec = EdgeModelSpec.model_validate(model["spec"])
    return TrainingInputs(
        run=run,
        model_spec=spec,
        training=spec.training,
        registered_model="vibration",
        tracking_uri="http://mlflow:5000",
        trigger="Manual",
        reason=None,
    )


def pod_of(job: dict[str, Any]) -> dict[str, Any]:
    pod: dict[str, Any] = job["spec"]["template"]["spec"]
    return pod


def container_of(job: dict[str, Any]) -> dict[str, Any]:
    (container,) = pod_of(job)["containers"]
    assert container["name"] == "train"
    return container  # type: ignore[no-any-return]


def test_the_job_runs_the_training_image_with_its_pull_policy() -> None:
    container = container_of(build_training_job(inputs(), CONFIG))
    assert container["image"] == CONFIG.training_image
    assert container["imagePullPolicy"] == "Always"


def test_the_training_image_is_recorded_and_digested_not_the_serving_image() -> None:
    document = train_config(inputs(), CONFIG)
    assert document["image"] == CONFIG.training_image
    other = train_config(inputs(), OperatorConfig(training_image="elsewhere/train:2"))
    assert document["templateDigest"] != other["templateDigest"]
    same = train_config(
        inputs(), OperatorConfig(training_image=CONFIG.training_image, serving_image="x:9")
    )
    assert document["templateDigest"] == same["templateDigest"]


def test_the_pod_names_every_configured_pull_secret() -> None:
    pod = pod_of(build_training_job(inputs(), CONFIG))
    assert pod["imagePullSecrets"] == [{"name": "regcred"}, {"name": "mirror"}]


def test_no_pull_secrets_configured_means_no_field() -> None:
    assert "imagePullSecrets" not in pod_of(build_training_job(inputs(), OperatorConfig()))


def test_the_pod_gets_no_service_account_token() -> None:
    pod = pod_of(build_training_job(inputs(), CONFIG))
    assert pod["automountServiceAccountToken"] is False
    assert pod["enableServiceLinks"] is False


def test_the_pod_runs_as_the_images_non_root_user_with_seccomp() -> None:
    context = pod_of(build_training_job(inputs(), CONFIG))["securityContext"]
    assert context == {
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
    assert container_of(build_training_job(inputs(), CONFIG))["securityContext"][field] == value


def test_tmp_is_a_writable_empty_dir_on_the_read_only_root() -> None:
    job = build_training_job(inputs(), CONFIG)
    assert {"name": "tmp", "mountPath": "/tmp"} in container_of(job)["volumeMounts"]
    assert {"name": "tmp", "emptyDir": {}} in pod_of(job)["volumes"]


def test_the_models_own_volumes_come_after_tmp() -> None:
    volume = {"name": "data", "persistentVolumeClaim": {"claimName": "datasets"}}
    mount = {"name": "data", "mountPath": "/data", "readOnly": True}
    job = build_training_job(
        inputs(**edge_model()["spec"]["training"], volumes=[volume], volumeMounts=[mount]),
        CONFIG,
    )
    assert pod_of(job)["volumes"] == [{"name": "tmp", "emptyDir": {}}, volume]
    assert container_of(job)["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}, mount]


def test_a_model_without_resources_gets_the_configured_default() -> None:
    container = container_of(build_training_job(inputs(), CONFIG))
    assert container["resources"] == {
        "requests": {"cpu": "500m", "memory": "1Gi"},
        "limits": {"memory": "2Gi"},
    }


def test_the_default_resources_come_from_the_config() -> None:
    config = OperatorConfig(
        training_resources=ResourceRequirements.model_validate({"requests": {"cpu": "2"}})
    )
    container = container_of(build_training_job(inputs(), config))
    assert container["resources"] == {"requests": {"cpu": "2"}}


def test_the_models_resources_win_over_the_default() -> None:
    resources = {"requests": {"cpu": "4", "memory": "8Gi"}, "limits": {"memory": "8Gi"}}
    job = build_training_job(
        inputs(**edge_model()["spec"]["training"], resources=resources), CONFIG
    )
    assert container_of(job)["resources"] == resources


def test_the_arguments_are_the_train_config() -> None:
    container = container_of(build_training_job(inputs(), CONFIG))
    assert container["command"] == ["edgeml", "train"]
    flag, document = container["args"]
    assert flag == "--config-json"
    assert json.loads(document) == train_config(inputs(), CONFIG)


def test_builders_return_fresh_security_contexts() -> None:
    first = build_training_job(inputs(), CONFIG)
    container_of(first)["securityContext"]["capabilities"]["drop"].clear()
    pod_of(first)["securityContext"]["runAsUser"] = 0
    second = build_training_job(inputs(), CONFIG)
    assert container_of(second)["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert pod_of(second)["securityContext"]["runAsUser"] == 65532


def test_the_pod_tolerates_the_configured_taints_of_the_training_pool() -> None:
    taint = Toleration.model_validate(
        {"key": "edgeml.io/runtime", "operator": "Equal", "value": "containerd",
         "effect": "NoSchedule"}
    )  # fmt: skip
    config = OperatorConfig(training_tolerations=(taint,))
    assert pod_of(build_training_job(inputs(), config))["tolerations"] == [
        {"key": "edgeml.io/runtime", "operator": "Equal", "value": "containerd",
         "effect": "NoSchedule"}
    ]  # fmt: skip
    assert "tolerations" not in pod_of(build_training_job(inputs(), OperatorConfig()))


REGISTRY_KEYS = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN")


def test_the_registry_secret_gives_its_mlflow_keys_by_name_and_nothing_else() -> None:
    run = training_run()
    run["metadata"].update(namespace="ml", uid="run-uid")
    model = edge_model(registry={"credentialsSecretRef": {"name": "mlflow"}})
    spec = EdgeModelSpec.model_validate(model["spec"])
    job = build_training_job(
        TrainingInputs(run, spec, spec.training, "vibration", "http://mlflow:5000", "Manual", None),
        CONFIG,
    )
    container = container_of(job)
    assert "envFrom" not in container  # the Secret cannot set PYTHONPATH, LD_PRELOAD, ...
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"] if "valueFrom" in e}
    assert {k: refs[k] for k in REGISTRY_KEYS} == {
        key: {"name": "mlflow", "key": key, "optional": True} for key in REGISTRY_KEYS
    }
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"  # never from the Secret


def test_no_registry_secret_means_no_credential_variables() -> None:
    names = {e["name"] for e in container_of(build_training_job(inputs(), CONFIG))["env"]}
    assert names.isdisjoint(REGISTRY_KEYS)
