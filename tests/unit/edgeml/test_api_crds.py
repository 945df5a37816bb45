"""The CRDs generated from the models: names, columns, structural schemas, checked-in copies."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from edgeml.api.common import GROUP, VERSION
from edgeml.api.crds import (
    HEADER,
    build_crd,
    crd_files,
    peering_crd_files,
    peering_crds,
    stale_crds,
    write_crds,
)
from edgeml.api.kinds import (
    CATEGORY,
    KINDS,
    DriftPolicy,
    EdgeDeployment,
    EdgeModel,
    KindInfo,
    TrainingRun,
)

REPO = Path(__file__).resolve().parents[3]
INT_OR_STRING = [{"type": "integer"}, {"type": "string"}]
CRDS = {info.kind: build_crd(info) for info in KINDS}
KIND_IDS = [info.kind for info in KINDS]

# kind, plural, short names, printer columns in order
NAMES = [
    (
        "EdgeModel",
        "edgemodels",
        ["em"],
        ["Champion", "Latest", "Mode", "Phase", "Ready", "Age", "Registered-Model"],
    ),
    (
        "TrainingRun",
        "trainingruns",
        ["tr"],
        ["Model", "Trigger", "Phase", "Version", "Age", "Job", "Reason"],
    ),
    (
        "EdgeDeployment",
        "edgedeployments",
        ["ed"],
        [
            "Model",
            "Target",
            "Stable",
            "Stable-Nodes",
            "Canary",
            "Canary-Nodes",
            "Phase",
            "Age",
            "Step",
        ],
    ),
    (
        "DriftPolicy",
        "driftpolicies",
        ["dp"],
        [
            "Deployment",
            "Action",
            "Drifted",
            "Worst",
            "Score",
            "Samples",
            "Phase",
            "Age",
            "Last-Retrain",
        ],
    ),
]


def version_of(crd: dict[str, Any]) -> dict[str, Any]:
    (version,) = crd["spec"]["versions"]
    return version  # type: ignore[no-any-return]


def schema_of(kind: str) -> dict[str, Any]:
    return version_of(CRDS[kind])["schema"]["openAPIV3Schema"]  # type: ignore[no-any-return]


# --- names ------------------------------------------------------------------------------------


def test_there_are_four_kinds_in_a_fixed_order() -> None:
    assert [info.model for info in KINDS] == [EdgeModel, TrainingRun, EdgeDeployment, DriftPolicy]


@pytest.mark.parametrize(("kind", "plural", "short_names", "columns"), NAMES)
def test_crd_names(kind: str, plural: str, short_names: list[str], columns: list[str]) -> None:
    crd = CRDS[kind]
    assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
    assert crd["kind"] == "CustomResourceDefinition"
    assert crd["metadata"]["name"] == f"{plural}.edgeml.io"
    assert crd["spec"]["group"] == GROUP == "edgeml.io"
    assert crd["spec"]["scope"] == "Namespaced"
    assert crd["spec"]["names"] == {
        "kind": kind,
        "listKind": f"{kind}List",
        "plural": plural,
        "singular": kind.lower(),
        "shortNames": short_names,
        "categories": ["edgeml"],
    }
    assert CATEGORY == "edgeml"


@pytest.mark.parametrize("kind", KIND_IDS)
def test_crd_labels_name_the_component(kind: str) -> None:
    assert CRDS[kind]["metadata"]["labels"] == {
        "app.kubernetes.io/name": "edgeml",
        "app.kubernetes.io/part-of": "edgeml",
        "app.kubernetes.io/component": "crd",
    }


def test_short_names_and_plurals_are_unique() -> None:
    names = [n for info in KINDS for n in (info.plural, info.singular, *info.short_names)]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("kind", KIND_IDS)
def test_one_served_stored_version_with_a_status_subresource(kind: str) -> None:
    version = version_of(CRDS[kind])
    assert version["name"] == VERSION == "v1alpha1"
    assert version["served"] is True
    assert version["storage"] is True
    assert version["subresources"] == {"status": {}}


# --- printer columns --------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "plural", "short_names", "columns"), NAMES)
def test_printer_columns(
    kind: str, plural: str, short_names: list[str], columns: list[str]
) -> None:
    printed = version_of(CRDS[kind])["additionalPrinterColumns"]
    assert [c["name"] for c in printed] == columns
    info = next(i for i in KINDS if i.kind == kind)
    for column, declared in zip(printed, info.columns, strict=True):
        assert column["jsonPath"] == declared.json_path
        assert column["type"] == declared.type
        assert column.get("priority", 0) == declared.priority
        assert ("priority" in column) == bool(declared.priority)


def test_every_kind_shows_phase_and_age_by_default() -> None:
    for kind in KIND_IDS:
        printed = version_of(CRDS[kind])["additionalPrinterColumns"]
        default = {c["name"]: c for c in printed if not c.get("priority")}
        assert default["Phase"]["jsonPath"] == ".status.phase", kind
        assert default["Age"] == {
            "name": "Age",
            "type": "date",
            "jsonPath": ".metadata.creationTimestamp",
        }, kind


def _column_target(schema: dict[str, Any], json_path: str) -> dict[str, Any] | None:
    """The schema node a printer column's JSONPath reads; None under metadata."""
    simple = re.sub(r"\[[^\]]*\]", "[]", json_path)
    node = schema
    for segment in simple.lstrip(".").split("."):
        name = segment.removesuffix("[]")
        if name == "metadata" and node is schema:
            return None
        assert name in node.get("properties", {}), f"{json_path}: no field {name}"
        node = node["properties"][name]
        if segment.endswith("[]"):
            assert node["type"] == "array", f"{json_path}: {name} is not a list"
            node = node["items"]
    return node


@pytest.mark.parametrize(
    ("kind", "column"),
    [(info.kind, c) for info in KINDS for c in info.columns],
    ids=lambda v: v if isinstance(v, str) else v.name,
)
def test_every_printer_column_reads_a_field_of_its_type(kind: str, column: Any) -> None:
    node = _column_target(schema_of(kind), column.json_path)
    if node is None:
        assert column.json_path == ".metadata.creationTimestamp"
        return
    if column.type == "date":
        assert (node["type"], node.get("format")) == ("string", "date-time"), column.json_path
    else:
        assert node["type"] == column.type, column.json_path


# --- structural schemas -----------------------------------------------------------------------

_FORBIDDEN = {
    "$ref",
    "$defs",
    "$schema",
    "allOf",
    "oneOf",
    "not",
    "const",
    "title",
    "propertyNames",
    "definitions",
}


def structural_problems(node: dict[str, Any], path: str = "") -> list[str]:
    """What keeps a schema from being structural (and what the API server would refuse)."""
    problems = [f"{path or '/'}: has {key}" for key in sorted(_FORBIDDEN & set(node))]
    int_or_string = node.get("x-kubernetes-int-or-string") is True
    if "anyOf" in node and not (int_or_string and node["anyOf"] == INT_OR_STRING):
        problems.append(f"{path}: anyOf other than int-or-string: {node['anyOf']}")
    if int_or_string and "type" in node:
        problems.append(f"{path}: int-or-string with a type")
    preserve = node.get("x-kubernetes-preserve-unknown-fields") is True
    if "type" not in node and not preserve and not int_or_string:
        problems.append(f"{path or '/'}: no type")
    if "properties" in node and "additionalProperties" in node:
        problems.append(f"{path}: both properties and additionalProperties")
    if isinstance(node.get("additionalProperties"), bool):
        problems.append(f"{path}: additionalProperties is a boolean")
    for bound in ("exclusiveMinimum", "exclusiveMaximum"):
        if bound in node and not isinstance(node[bound], bool):
            problems.append(f"{path}: {bound} is not a boolean")
    if node.get("type") == "array" and "items" not in node:
        problems.append(f"{path}: array without items")
    if ("properties" in node or "additionalProperties" in node) and node.get("type") != "object":
        problems.append(f"{path}: fields on a {node.get('type')}")
    missing = set(node.get("required", [])) - set(node.get("properties", {}))
    if missing:
        problems.append(f"{path}: requires undeclared {sorted(missing)}")
    if node.get("x-kubernetes-list-type") == "map":
        keys = node.get("x-kubernetes-list-map-keys", [])
        required = node.get("items", {}).get("required", [])
        if not keys or not set(keys) <= set(required):
            problems.append(f"{path}: list-map keys {keys} are not required in items")
    for rule in node.get("x-kubernetes-validations", []):
        if not isinstance(rule.get("rule"), str) or not rule["rule"]:
            problems.append(f"{path}: a validation without a rule")
    for name, sub in node.get("properties", {}).items():
        problems += structural_problems(sub, f"{path}/properties/{name}")
    if "items" in node:
        problems += structural_problems(node["items"], f"{path}/items")
    if isinstance(node.get("additionalProperties"), dict):
        problems += structural_problems(
            node["additionalProperties"], f"{path}/additionalProperties"
        )
    return problems


@pytest.mark.parametrize("kind", KIND_IDS)
def test_every_schema_is_structural(kind: str) -> None:
    assert structural_problems(schema_of(kind)) == []


@pytest.mark.parametrize(
    ("node", "problem"),
    [
        ({"type": "object", "properties": {"a": {"$ref": "#/x"}}}, "/properties/a: has $ref"),
        ({"anyOf": [{"type": "integer"}, {"type": "null"}]}, "anyOf other than int-or-string"),
        ({"properties": {"a": {}}, "type": "object"}, "/properties/a: no type"),
        ({"type": "number", "exclusiveMinimum": 0}, "exclusiveMinimum is not a boolean"),
        ({"type": "object", "required": ["a"]}, "requires undeclared ['a']"),
        (
            {"type": "array", "items": {"type": "object"}, "x-kubernetes-list-type": "map"},
            "list-map keys [] are not required",
        ),
    ],
)
def test_the_structural_check_catches_what_it_should(node: dict[str, Any], problem: str) -> None:
    assert any(problem in p for p in structural_problems(node)), structural_problems(node)


@pytest.mark.parametrize("kind", KIND_IDS)
def test_the_root_holds_spec_and_status_and_a_plain_metadata(kind: str) -> None:
    root = schema_of(kind)
    assert root["type"] == "object"
    assert root["required"] == ["spec"]
    assert set(root["properties"]) == {"apiVersion", "kind", "metadata", "spec", "status"}
    assert root["properties"]["metadata"] == {"type": "object"}
    assert root["properties"]["kind"]["description"] == kind
    info = next(i for i in KINDS if i.kind == kind)
    assert root["description"] == info.description


@pytest.mark.parametrize("kind", KIND_IDS)
def test_every_status_has_phase_generation_and_list_map_conditions(kind: str) -> None:
    status = schema_of(kind)["properties"]["status"]["properties"]
    assert status["phase"]["type"] == "string"
    assert status["observedGeneration"]["type"] == "integer"
    conditions = status["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    assert set(conditions["items"]["required"]) == {
        "type",
        "status",
        "reason",
        "lastTransitionTime",
    }
    assert conditions["items"]["properties"]["status"]["enum"] == ["True", "False", "Unknown"]


@pytest.mark.parametrize("kind", KIND_IDS)
def test_every_field_is_described(kind: str) -> None:
    undescribed = []

    def walk(node: dict[str, Any], path: str) -> None:
        for name, sub in node.get("properties", {}).items():
            if "description" not in sub and path:
                undescribed.append(f"{path}.{name}")
            walk(sub, f"{path}.{name}")
        if "items" in node:
            walk(node["items"], f"{path}[]")

    walk(schema_of(kind)["properties"]["spec"], "spec")
    walk(schema_of(kind)["properties"]["status"], "status")
    assert undescribed == []


# --- files ------------------------------------------------------------------------------------

FILE_NAMES = [
    "edgeml.io_edgemodels.yaml",
    "edgeml.io_trainingruns.yaml",
    "edgeml.io_edgedeployments.yaml",
    "edgeml.io_driftpolicies.yaml",
]
PEERING_FILE = "kopf.dev_peerings.yaml"


def test_crd_files_are_one_per_kind() -> None:
    assert list(crd_files()) == FILE_NAMES
    assert list(peering_crd_files()) == [PEERING_FILE]


@pytest.mark.parametrize("name", [*FILE_NAMES, PEERING_FILE])
def test_crd_files_are_headed_yaml_of_the_built_crds(name: str) -> None:
    text = {**crd_files(), **peering_crd_files()}[name]
    assert text.startswith(HEADER)
    docs = list(yaml.safe_load_all(text))
    if name.startswith("kopf.dev"):
        assert docs == peering_crds()
    else:
        (crd,) = docs
        assert crd == CRDS[crd["spec"]["names"]["kind"]]


@pytest.mark.parametrize("directory", ["crds", "charts/edgeml/crds"])
def test_checked_in_crds_match_the_models(directory: str) -> None:
    stale = stale_crds(REPO / directory)
    assert stale == [], f"{directory}: {stale} differ from the models; run `edgeml crds`"


def test_checked_in_chart_crds_are_exactly_the_generated_files() -> None:
    """edgeml's CRDs only: kopf's shared peering CRDs are not the chart's to install."""
    assert sorted(p.name for p in (REPO / "charts/edgeml/crds").iterdir()) == sorted(FILE_NAMES)


def test_the_crds_kustomization_lists_every_generated_file_but_kopfs() -> None:
    kustomization = yaml.safe_load((REPO / "crds/kustomization.yaml").read_text())
    assert kustomization["resources"] == FILE_NAMES


def test_kopfs_peering_crds_are_checked_in_beside_ours() -> None:
    assert stale_crds(REPO / "crds", peering_crd_files()) == [], (
        "run `edgeml crds --kopf-peering --output-dir crds`"
    )


def test_stale_crds_reports_missing_and_changed_files(tmp_path: Path) -> None:
    assert stale_crds(tmp_path) == FILE_NAMES
    written = write_crds(tmp_path / "out")
    assert [p.name for p in written] == FILE_NAMES
    assert stale_crds(tmp_path / "out") == []
    changed = tmp_path / "out" / "edgeml.io_trainingruns.yaml"
    changed.write_text(changed.read_text() + "# edited\n")
    (tmp_path / "out" / "edgeml.io_driftpolicies.yaml").unlink()
    assert stale_crds(tmp_path / "out") == [
        "edgeml.io_trainingruns.yaml",
        "edgeml.io_driftpolicies.yaml",
    ]
    assert stale_crds(tmp_path / "out", peering_crd_files()) == [PEERING_FILE]
    write_crds(tmp_path / "out", peering_crd_files())
    assert stale_crds(tmp_path / "out", peering_crd_files()) == []


@pytest.mark.parametrize(
    ("kind", "scope"), [("ClusterKopfPeering", "Cluster"), ("KopfPeering", "Namespaced")]
)
def test_peering_crds(kind: str, scope: str) -> None:
    crd = next(c for c in peering_crds() if c["spec"]["names"]["kind"] == kind)
    plural = kind.lower() + "s"
    assert crd["metadata"]["name"] == f"{plural}.kopf.dev"
    assert crd["spec"]["group"] == "kopf.dev"
    assert crd["spec"]["scope"] == scope
    assert structural_problems(version_of(crd)["schema"]["openAPIV3Schema"]) == []


# --- KindInfo ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("info", "spec", "status"),
    [(info, info.model.model_fields["spec"].annotation, f"{info.kind}Status") for info in KINDS],
    ids=KIND_IDS,
)
def test_kind_info_finds_spec_and_status_models(info: KindInfo, spec: Any, status: str) -> None:
    assert info.spec_model is spec
    assert info.spec_model.__name__ == f"{info.kind}Spec"
    assert info.status_model.__name__ == status
    assert info.singular == info.kind.lower()
