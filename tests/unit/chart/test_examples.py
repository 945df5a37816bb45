"""The GitOps examples (examples/argocd, examples/flux) install the chart the way the
docs say: CRDs first, server-side apply, values the chart's schema accepts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from unit.chart.helm import render
from unit.chart.values import CHART, REPO, schema_errors

EXAMPLES = REPO / "examples"
CHART_PATH = str(CHART.relative_to(REPO))
OUR_KINDS = {"EdgeModel", "TrainingRun", "EdgeDeployment", "DriftPolicy"}


def load(relative: str) -> list[dict[str, Any]]:
    docs = [d for d in yaml.safe_load_all((EXAMPLES / relative).read_text()) if d]
    for doc in docs:
        assert {"apiVersion", "kind", "metadata", "spec"} <= doc.keys(), doc
        assert doc["metadata"].get("name"), doc
    return docs


def applications() -> dict[str, dict[str, Any]]:
    docs = load("argocd/application.yaml")
    assert {d["apiVersion"] for d in docs} == {"argoproj.io/v1alpha1"}
    assert {d["kind"] for d in docs} == {"Application"}
    return {d["metadata"]["name"]: d for d in docs}


def wave(app: dict[str, Any]) -> int:
    return int(app["metadata"].get("annotations", {}).get("argocd.argoproj.io/sync-wave", "0"))


def flux() -> dict[str, dict[str, Any]]:
    return {d["kind"]: d for d in load("flux/helmrelease.yaml")}


def kustomization_kinds(directory: Path) -> set[str]:
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    kinds = set()
    for resource in kustomization["resources"]:
        for doc in yaml.safe_load_all((directory / resource).read_text()):
            if doc:
                kinds.add(doc["kind"])
    return kinds


# --- Argo CD ------------------------------------------------------------------------------


def test_the_argo_cd_chart_application_installs_this_repositorys_chart() -> None:
    app = applications()["edgeml"]
    source = app["spec"]["source"]
    assert source["path"] == CHART_PATH
    assert (REPO / source["path"] / "Chart.yaml").exists()
    assert source["repoURL"].startswith("https://")
    assert source["helm"].get("skipCrds", False) is False, "the chart's crds/ must be applied"
    assert app["spec"]["destination"]["namespace"] == "edgeml-system"


@pytest.mark.parametrize("name", ["edgeml", "edgeml-models"])
def test_argo_cd_applies_server_side_and_creates_the_namespace(name: str) -> None:
    options = applications()[name]["spec"]["syncPolicy"]["syncOptions"]
    assert "ServerSideApply=true" in options
    assert "CreateNamespace=true" in options


def test_the_models_sync_after_the_chart_and_survive_missing_crds() -> None:
    apps = applications()
    models = apps["edgeml-models"]
    assert wave(models) > wave(apps["edgeml"])
    assert "SkipDryRunOnMissingResource=true" in models["spec"]["syncPolicy"]["syncOptions"]
    assert models["spec"]["syncPolicy"]["retry"]["limit"] >= 1
    path = REPO / models["spec"]["source"]["path"]
    assert kustomization_kinds(path) <= OUR_KINDS, "the models app holds edgeml objects only"


def test_the_argo_cd_values_pass_the_charts_schema() -> None:
    values = applications()["edgeml"]["spec"]["source"]["helm"]["valuesObject"]
    assert schema_errors(values) == []


# --- Flux ---------------------------------------------------------------------------------


def test_the_flux_release_creates_crds_on_install_and_replaces_them_on_upgrade() -> None:
    release = flux()["HelmRelease"]
    assert release["apiVersion"] == "helm.toolkit.fluxcd.io/v2"
    assert release["spec"]["install"]["crds"] == "Create"
    assert release["spec"]["upgrade"]["crds"] == "CreateReplace"
    assert release["spec"]["targetNamespace"] == "edgeml-system"


def test_the_flux_release_reads_the_chart_from_the_source_beside_it() -> None:
    docs = flux()
    source, release = docs["GitRepository"], docs["HelmRelease"]
    assert source["apiVersion"] == "source.toolkit.fluxcd.io/v1"
    chart = release["spec"]["chart"]["spec"]
    assert chart["chart"] == CHART_PATH
    ref = chart["sourceRef"]
    assert (ref["kind"], ref["name"]) == ("GitRepository", source["metadata"]["name"])
    assert ref.get("namespace", release["metadata"]["namespace"]) == source["metadata"]["namespace"]
    # The source's ignore rules keep the chart.
    assert f"!/{CHART_PATH}/" in source["spec"]["ignore"]


def test_the_flux_values_pass_the_charts_schema() -> None:
    assert schema_errors(flux()["HelmRelease"]["spec"]["values"]) == []


# --- both, through helm (where a helm binary is found) -----------------------------------


def _example_values() -> list[tuple[str, dict[str, Any]]]:
    return [
        ("argocd", applications()["edgeml"]["spec"]["source"]["helm"]["valuesObject"]),
        ("flux", flux()["HelmRelease"]["spec"]["values"]),
    ]


@pytest.mark.parametrize(("example", "values"), _example_values(), ids=["argocd", "flux"])
def test_the_examples_values_render(example: str, values: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / f"{example}.yaml"
    path.write_text(yaml.safe_dump(values))
    docs = [d for d in yaml.safe_load_all(render("-f", str(path))) if d]
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    env = {
        e["name"]: e.get("value")
        for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["EDGEML_TRAINING_IMAGE"] == "ghcr.io/edgeml/edgeml-training:0.1.0"
    assert env["EDGEML_IMAGE_PULL_SECRETS"] == "regcred"
