"""pydantic's JSON Schema turned into the structural OpenAPI v3 schema a CRD needs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field

from edgeml.api.common import Duration, KubeModel, PercentOrCount
from edgeml.api.kinds import KINDS
from edgeml.api.schema import SchemaError, model_schema, structural

INT_OR_STRING = [{"type": "integer"}, {"type": "string"}]

# --- throwaway models -------------------------------------------------------------------


class Part(KubeModel):
    """The part's own description."""

    size: int = 1
    """How big."""


class Whole(KubeModel):
    """A whole made of parts."""

    documented_part: Part
    """The field's description."""
    undocumented_part: Part
    optional_part: Part | None = None
    """An optional part."""
    explicit_part: Part = Field(description="Given explicitly.")
    parts: list[Part] = Field(default_factory=list)
    """Many parts."""


class Optionals(KubeModel):
    plain: int | None = None
    """May be absent."""
    with_default: int | None = 5
    text: str | None = None
    durations: list[Duration] | None = None


class Bounds(KubeModel):
    open_interval: float = Field(gt=0, lt=1)
    closed_interval: int = Field(ge=1, le=10)
    half_open: float = Field(gt=0, le=10)


class Literals(KubeModel):
    one: Literal["Only"] = "Only"
    several: Literal["A", "B", "C"]


class Maps(KubeModel):
    free: dict[str, Any] = Field(default_factory=dict)
    """Anything."""
    labels: dict[str, str] = Field(default_factory=dict)
    nested: dict[str, Part] = Field(default_factory=dict)
    keyed: dict[Literal["cpu", "memory"], str] | None = None


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")

    a: int


class Validated(KubeModel):
    """With rules of its own."""

    model_config = ConfigDict(
        json_schema_extra={"x-kubernetes-validations": [{"rule": "self.a > 0", "message": "m"}]}
    )

    a: int = 1
    keyed: dict[Literal["x", "y"], int] = Field(
        default_factory=dict,
        json_schema_extra={"x-kubernetes-validations": [{"rule": "size(self) < 2"}]},
    )


class OneKey(KubeModel):
    keyed: dict[Literal["only"], int] = Field(default_factory=dict)


class IntOrString(KubeModel):
    required_value: PercentOrCount
    """Required."""
    optional_value: PercentOrCount | None = None
    """Optional."""
    defaulted_value: PercentOrCount = 1


class Aliased(KubeModel):
    model_config = ConfigDict(populate_by_name=True)

    class_path: str = Field(alias="class")
    snake_name: int


class UnionOfScalars(KubeModel):
    value: int | str


class OptionalUnionOfScalars(KubeModel):
    value: int | str | None = None


class Other(KubeModel):
    b: str


class UnionOfModels(KubeModel):
    value: Part | Other


class Untyped(KubeModel):
    value: Any = None


class ListOfUntyped(KubeModel):
    values: list[Any] = Field(default_factory=list)


class Recursive(KubeModel):
    child: Recursive | None = None


# --- helpers ----------------------------------------------------------------------------


def nodes(schema: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every dict in a schema, with a path for messages."""
    if isinstance(schema, dict):
        yield path, schema
        for key, value in schema.items():
            yield from nodes(value, f"{path}/{key}")
    elif isinstance(schema, list):
        for index, value in enumerate(schema):
            yield from nodes(value, f"{path}[{index}]")


def props(model: type[BaseModel]) -> dict[str, Any]:
    return model_schema(model)["properties"]  # type: ignore[no-any-return]


REAL_MODELS = [m for info in KINDS for m in (info.spec_model, info.status_model)]

# --- $ref inlining and descriptions ---------------------------------------------------------


def test_references_are_inlined() -> None:
    schema = model_schema(Whole)
    assert not [p for p, n in nodes(schema) if "$ref" in n or "$defs" in n]
    assert props(Whole)["documentedPart"]["properties"]["size"] == {
        "type": "integer",
        "default": 1,
        "description": "How big.",
    }


@pytest.mark.parametrize(
    ("field", "description"),
    [
        ("documentedPart", "The field's description."),
        ("undocumentedPart", "The part's own description."),
        ("optionalPart", "An optional part."),
        ("explicitPart", "Given explicitly."),
        ("parts", "Many parts."),
    ],
)
def test_a_fields_description_wins_over_its_types(field: str, description: str) -> None:
    assert props(Whole)[field]["description"] == description


def test_list_items_are_inlined_with_the_items_description() -> None:
    items = props(Whole)["parts"]["items"]
    assert items["type"] == "object"
    assert items["description"] == "The part's own description."


def test_the_models_docstring_describes_the_root() -> None:
    assert model_schema(Whole)["description"] == "A whole made of parts."


def test_titles_and_schema_keys_are_dropped() -> None:
    for model in (Whole, Optionals, Bounds, Maps, *REAL_MODELS):
        offenders = [
            path
            for path, node in nodes(model_schema(model))
            if {"title", "$schema"} & set(node) and not path.endswith("/properties")
        ]
        assert offenders == [], model


def test_an_unresolved_reference_is_a_schema_error() -> None:
    with pytest.raises(SchemaError, match="unresolved reference #/\\$defs/Missing"):
        structural({"$ref": "#/$defs/Missing"}, {})


def test_a_referring_nodes_keys_win_over_the_definitions() -> None:
    defs = {"X": {"type": "string", "description": "from the definition", "maxLength": 3}}
    assert structural({"$ref": "#/$defs/X", "description": "from the field"}, defs) == {
        "type": "string",
        "description": "from the field",
        "maxLength": 3,
    }


# --- Optional collapse --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ("plain", {"type": "integer", "description": "May be absent."}),
        ("withDefault", {"type": "integer", "default": 5}),
        ("text", {"type": "string"}),
        (
            "durations",
            {
                "type": "array",
                "items": {
                    "type": "string",
                    "pattern": r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$",
                    "maxLength": 32,
                    "description": "A duration such as 30s, 5m, 1h30m (units ms, s, m, h).",
                },
            },
        ),
    ],
)
def test_optional_means_may_be_absent(field: str, expected: dict[str, Any]) -> None:
    assert props(Optionals)[field] == expected


def test_optional_fields_are_not_required() -> None:
    assert "required" not in model_schema(Optionals)


def test_required_fields_use_the_wire_names() -> None:
    assert model_schema(Aliased)["required"] == ["class", "snakeName"]
    assert set(props(Aliased)) == {"class", "snakeName"}


# --- bounds, literals ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        (
            "openInterval",
            {
                "type": "number",
                "minimum": 0,
                "exclusiveMinimum": True,
                "maximum": 1,
                "exclusiveMaximum": True,
            },
        ),
        ("closedInterval", {"type": "integer", "minimum": 1, "maximum": 10}),
        (
            "halfOpen",
            {"type": "number", "minimum": 0, "exclusiveMinimum": True, "maximum": 10},
        ),
    ],
)
def test_exclusive_bounds_become_openapi_3_0_booleans(field: str, expected: dict[str, Any]) -> None:
    assert props(Bounds)[field] == expected


def test_boolean_exclusive_bounds_are_left_alone() -> None:
    node = {"type": "number", "minimum": 0, "exclusiveMinimum": True}
    assert structural(node, {}) == node


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ("one", {"type": "string", "enum": ["Only"], "default": "Only"}),
        ("several", {"type": "string", "enum": ["A", "B", "C"]}),
    ],
)
def test_literals_become_enums(field: str, expected: dict[str, Any]) -> None:
    assert props(Literals)[field] == expected


def test_an_untyped_enum_is_a_string() -> None:
    assert structural({"enum": ["a", "b"]}, {}) == {"enum": ["a", "b"], "type": "string"}


def test_untyped_properties_are_an_object() -> None:
    assert structural({"properties": {"a": {"type": "integer"}}}, {})["type"] == "object"


# --- maps ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        (
            "free",
            {
                "type": "object",
                "x-kubernetes-preserve-unknown-fields": True,
                "description": "Anything.",
            },
        ),
        ("labels", {"type": "object", "additionalProperties": {"type": "string"}}),
        (
            "keyed",
            {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "x-kubernetes-validations": [
                    {
                        "rule": 'self.all(k, k in ["cpu", "memory"])',
                        "message": "keys must be among cpu, memory",
                    }
                ],
            },
        ),
    ],
)
def test_maps(field: str, expected: dict[str, Any]) -> None:
    assert props(Maps)[field] == expected


def test_map_values_are_made_structural() -> None:
    values = props(Maps)["nested"]["additionalProperties"]
    assert values["type"] == "object"
    assert values["properties"]["size"]["type"] == "integer"


def test_a_bare_object_preserves_unknown_fields() -> None:
    assert structural({"type": "object"}, {}) == {
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": True,
    }


def test_forbidding_extra_fields_adds_nothing_to_the_crd() -> None:
    assert model_schema(Strict) == {
        "type": "object",
        "properties": {"a": {"type": "integer"}},
        "required": ["a"],
    }


def test_a_single_allowed_key_becomes_a_rule_too() -> None:
    assert props(OneKey)["keyed"]["x-kubernetes-validations"] == [
        {"rule": 'self.all(k, k in ["only"])', "message": "keys must be among only"}
    ]


def test_key_rules_and_declared_rules_are_kept_together() -> None:
    schema = model_schema(Validated)
    assert schema["x-kubernetes-validations"] == [{"rule": "self.a > 0", "message": "m"}]
    rules = [r["rule"] for r in schema["properties"]["keyed"]["x-kubernetes-validations"]]
    assert sorted(rules) == ['self.all(k, k in ["x", "y"])', "size(self) < 2"]


# --- int-or-string ---------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["requiredValue", "optionalValue", "defaultedValue"])
def test_int_or_string_keeps_its_exact_any_of_and_no_type(field: str) -> None:
    node = props(IntOrString)[field]
    assert node["x-kubernetes-int-or-string"] is True
    assert node["anyOf"] == INT_OR_STRING
    assert "type" not in node
    assert node["minimum"] == 0
    assert node["pattern"] == "^(100|[1-9]?[0-9])%$"


def test_int_or_string_takes_the_fields_description_and_default() -> None:
    fields = props(IntOrString)
    assert fields["requiredValue"]["description"] == "Required."
    assert fields["optionalValue"]["description"] == "Optional."
    assert "default" not in fields["optionalValue"]
    assert fields["defaultedValue"]["default"] == 1
    assert model_schema(IntOrString)["required"] == ["requiredValue"]


def test_a_type_next_to_int_or_string_is_dropped() -> None:
    node = {"x-kubernetes-int-or-string": True, "type": "string", "anyOf": INT_OR_STRING}
    assert structural(node, {}) == {"x-kubernetes-int-or-string": True, "anyOf": INT_OR_STRING}


# --- what cannot be expressed -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "match"),
    [
        (UnionOfScalars, "a union of 2 types needs an explicit JSON schema"),
        (OptionalUnionOfScalars, "a union of 2 types needs an explicit JSON schema"),
        (UnionOfModels, "a union of 2 types needs an explicit JSON schema"),
        (Untyped, "a schema node has no type"),
        (ListOfUntyped, "a schema node has no type"),
    ],
)
def test_what_a_crd_cannot_express_is_a_schema_error(model: type[BaseModel], match: str) -> None:
    with pytest.raises(SchemaError, match=match):
        model_schema(model)


def test_a_schema_error_is_a_value_error() -> None:
    assert issubclass(SchemaError, ValueError)


def test_a_recursive_model_is_a_schema_error() -> None:
    with pytest.raises(SchemaError):
        model_schema(Recursive)


# --- the real models -----------------------------------------------------------------------


@pytest.mark.parametrize("model", REAL_MODELS, ids=lambda m: m.__name__)
def test_structural_is_a_fixed_point(model: type[BaseModel]) -> None:
    once = model_schema(model)
    assert structural(once, {}) == once


@pytest.mark.parametrize("model", REAL_MODELS, ids=lambda m: m.__name__)
def test_real_models_keep_no_json_schema_only_constructs(model: type[BaseModel]) -> None:
    forbidden = {"$ref", "$defs", "allOf", "oneOf", "not", "const", "propertyNames", "$schema"}
    for path, node in nodes(model_schema(model)):
        if path.endswith("/properties"):
            continue  # its keys are field names
        assert not forbidden & set(node), f"{model.__name__}{path} keeps {forbidden & set(node)}"
        for bound in ("exclusiveMinimum", "exclusiveMaximum"):
            assert isinstance(node.get(bound, True), bool), f"{model.__name__}{path}: {bound}"


def test_the_estimators_class_keeps_its_wire_name() -> None:
    from edgeml.api.edgemodel import Estimator

    schema = model_schema(Estimator)
    assert schema["required"] == ["class"]
    assert schema["properties"]["params"] == {
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": True,
        "description": "Constructor parameters of the estimator.",
    }
