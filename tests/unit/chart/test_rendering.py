"""What the chart renders for images, pull secrets, training resources and kopf's
peering CRDs (helm template; skipped where no helm binary is found)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from edgeml.api.crds import HEADER
from unit.chart.helm import documents, render, run_helm
from unit.chart.values import CHART

DIGEST = "sha256:" + "d" * 64
PEERING = ("--set", "operator.leaderElection.enabled=false")


def operator_container(*values: str) -> dict[str, Any]:
    (deployment,) = [d for d in documents(render(*values)) if d["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container  # type: ignore[no-any-return]


def env_of(*values: str) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in operator_container(*values)["env"]}


def test_each_program_gets_its_image_at_the_app_version_by_default() -> None:
    container = operator_container()
    assert container["image"] == "ghcr.io/edgeml/edgeml-operator:0.1.0"
    assert container["imagePullPolicy"] == "IfNotPresent"
    env = env_of()
    assert env["EDGEML_SERVING_IMAGE"] == "ghcr.io/edgeml/edgeml-serving:0.1.0"
    assert env["EDGEML_TRAINING_IMAGE"] == "ghcr.io/edgeml/edgeml-training:0.1.0"
    assert env["EDGEML_SERVING_IMAGE_PULL_POLICY"] == "IfNotPresent"
    assert env["EDGEML_TRAINING_IMAGE_PULL_POLICY"] == "IfNotPresent"
    assert "EDGEML_IMAGE" not in env


def test_a_digest_wins_over_the_tag() -> None:
    values = ("--set", "image.tag=9.9", "--set", f"image.digest={DIGEST}",
              "--set", "serving.image.tag=1.0", "--set", f"serving.image.digest={DIGEST}",
              "--set", "training.image.repository=mirror.local/train",
              "--set", "training.image.tag=2.0")  # fmt: skip
    assert operator_container(*values)["image"] == f"ghcr.io/edgeml/edgeml-operator@{DIGEST}"
    env = env_of(*values)
    assert env["EDGEML_SERVING_IMAGE"] == f"ghcr.io/edgeml/edgeml-serving@{DIGEST}"
    assert env["EDGEML_TRAINING_IMAGE"] == "mirror.local/train:2.0"


def test_child_pull_policies_are_separate() -> None:
    env = env_of(
        "--set", "serving.image.pullPolicy=Never", "--set", "training.image.pullPolicy=Always"
    )
    assert (env["EDGEML_SERVING_IMAGE_PULL_POLICY"], env["EDGEML_TRAINING_IMAGE_PULL_POLICY"]) == (
        "Never",
        "Always",
    )


def test_pull_secrets_go_to_the_operator_pod_and_to_its_children() -> None:
    values = (
        "--set",
        "imagePullSecrets[0].name=regcred",
        "--set",
        "imagePullSecrets[1].name=mirror",
    )
    (deployment,) = [d for d in documents(render(*values)) if d["kind"] == "Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    assert pod["imagePullSecrets"] == [{"name": "regcred"}, {"name": "mirror"}]
    assert env_of(*values)["EDGEML_IMAGE_PULL_SECRETS"] == "regcred,mirror"
    assert env_of()["EDGEML_IMAGE_PULL_SECRETS"] == ""


def test_training_resources_are_passed_as_json() -> None:
    assert json.loads(env_of()["EDGEML_TRAINING_RESOURCES"]) == {
        "requests": {"cpu": "500m", "memory": "1Gi"},
        "limits": {"memory": "2Gi"},
    }
    env = env_of(
        "--set", "training.resources.requests.cpu=2", "--set", "training.resources.limits=null"
    )
    assert json.loads(env["EDGEML_TRAINING_RESOURCES"]) == {"requests": {"cpu": 2, "memory": "1Gi"}}


def test_the_local_overlay_still_finds_the_variables_it_patches() -> None:
    # manifests/overlays/local patches by name; the names must stay.
    env = env_of()
    assert {"EDGEML_MLFLOW_TRACKING_URI", "EDGEML_TRAINING_NODE_SELECTOR"} <= env.keys()


@pytest.mark.parametrize(
    "values",
    [
        ("--set", "image.digest=latest"),
        ("--set", "serving.image.registry=ghcr.io"),
        ("--set", "training.resources.requests.gpu=1"),
        ("--set", "imagePullSecrets[0].secret=regcred"),
    ],
)
def test_the_schema_refuses_wrong_image_and_resource_values(values: tuple[str, ...]) -> None:
    result = run_helm("template", "edgeml", str(CHART), *values)
    assert result.returncode != 0
    assert "values don't meet the specifications of the schema" in result.stderr, result.stderr


# --- kopf's shared peering CRDs -------------------------------------------------------------


def test_the_chart_installs_only_its_own_crds() -> None:
    shown = run_helm("show", "crds", str(CHART))
    assert shown.returncode == 0, shown.stderr
    # helm joins the files without a document separator: split them at their header.
    files = [f for f in shown.stdout.split(HEADER) if f.strip()]
    kinds = {documents(f)[0]["spec"]["names"]["kind"] for f in files}
    assert kinds == {"EdgeModel", "TrainingRun", "EdgeDeployment", "DriftPolicy"}
    assert "kopf.dev" not in shown.stdout


def test_the_default_leader_election_renders_no_peering_object() -> None:
    kinds = {d["kind"] for d in documents(render("--include-crds"))}
    assert not kinds & {"KopfPeering", "ClusterKopfPeering"}
    assert "CustomResourceDefinition" in kinds


def test_peering_mode_without_kopfs_crds_is_a_clear_error() -> None:
    result = run_helm("template", "edgeml", str(CHART), "--kube-version", "1.35.4", *PEERING)
    assert result.returncode != 0
    assert "kopf's peering, whose CRDs" in result.stderr
    assert "kubectl apply --server-side -f" in result.stderr


def test_peering_mode_renders_where_kopfs_crds_are_served() -> None:
    docs = documents(render(*PEERING, "--api-versions", "kopf.dev/v1"))
    assert [
        (d["kind"], d["metadata"]["name"]) for d in docs if d["apiVersion"] == "kopf.dev/v1"
    ] == [("ClusterKopfPeering", "edgeml")]
