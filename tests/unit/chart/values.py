"""The chart's values.schema.json applied to a values document.

`jsonschema` validates when it is installed; otherwise a small validator of the
draft-07 keywords the chart's schema uses (type, properties, additionalProperties,
required, enum, pattern, lengths, bounds, items, local $ref) does, so the check runs
in the project's venv as it is. Helm applies the same schema to the merged values at
install; the chart-rendering tests run it where a helm binary is found.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[3]
CHART = REPO / "charts" / "edgeml"
SCHEMA: dict[str, Any] = json.loads((CHART / "values.schema.json").read_text())

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "boolean": (bool,),
    "integer": (int,),
    "number": (int, float),
    "null": (type(None),),
}


def _is(value: Any, name: str) -> bool:
    if isinstance(value, bool) and name in ("integer", "number"):
        return False
    return isinstance(value, _TYPES[name])


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        ref = schema["$ref"]
        assert ref.startswith("#/"), f"only local $refs are supported: {ref}"
        target: Any = root
        for part in ref[2:].split("/"):
            target = target[part]
        schema = target
    return schema


def _errors(value: Any, schema: dict[str, Any], root: dict[str, Any], path: str) -> list[str]:
    schema = _resolve(schema, root)
    where = path or "(root)"
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_is(value, t) for t in types):
            return [f"{where}: {value!r} is not of type {' or '.join(types)}"]
    problems: list[str] = []
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"{where}: {value!r} is not one of {schema['enum']}")
    if isinstance(value, str):
        if "pattern" in schema and not re.search(schema["pattern"], value):
            problems.append(f"{where}: {value!r} does not match {schema['pattern']}")
        if len(value) < schema.get("minLength", 0):
            problems.append(f"{where}: {value!r} is too short")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            problems.append(f"{where}: {value!r} is too long")
    if _is(value, "number"):
        if "minimum" in schema and value < schema["minimum"]:
            problems.append(f"{where}: {value} is below {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            problems.append(f"{where}: {value} is above {schema['maximum']}")
        if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
            problems.append(f"{where}: {value} is not above {schema['exclusiveMinimum']}")
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            problems.append(f"{where}: too few items")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            problems.append(f"{where}: too many items")
        if "items" in schema:
            for i, item in enumerate(value):
                problems += _errors(item, schema["items"], root, f"{path}[{i}]")
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        for key in schema.get("required", []):
            if key not in value:
                problems.append(f"{where}: {key!r} is required")
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            at = f"{path}.{key}" if path else str(key)
            if key in properties:
                problems += _errors(item, properties[key], root, at)
            elif extra is False:
                problems.append(f"{where}: unknown key {key!r}")
            elif isinstance(extra, dict):
                problems += _errors(item, extra, root, at)
    return problems


def schema_errors(values: Any, schema: dict[str, Any] = SCHEMA) -> list[str]:
    """What the chart's schema refuses in `values`; empty when it accepts them."""
    try:
        import jsonschema  # type: ignore[import-untyped]
    except ImportError:
        return _errors(values, schema, schema, "")
    validator = jsonschema.Draft7Validator(schema)
    return [
        f"{'.'.join(map(str, e.path)) or '(root)'}: {e.message}"
        for e in validator.iter_errors(values)
    ]
