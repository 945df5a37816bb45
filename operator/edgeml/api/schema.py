"""Turn pydantic's JSON Schema into the structural OpenAPI v3 schema a CRD needs.

pydantic emits JSON Schema 2020-12: `$ref`s into `$defs`, `anyOf` with `null` for
optional fields, numeric `exclusiveMinimum`, `additionalProperties: true` for free
maps. A CRD wants none of that: everything inlined, optional means "may be
absent", OpenAPI 3.0 boolean exclusive bounds, and
`x-kubernetes-preserve-unknown-fields` for free-form objects.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

Schema = dict[str, Any]

# Keys dropped outright: pydantic bookkeeping, or meaningless in a CRD.
_DROP = {"title", "$schema", "discriminator"}


class SchemaError(ValueError):
    """A model uses a construct the CRD schema cannot express."""


def _resolve(node: Schema, defs: dict[str, Schema]) -> Schema:
    """Inline a `$ref`, letting the referring node's own keys (description...) win."""
    ref = node["$ref"]
    name = ref.rsplit("/", 1)[-1]
    if name not in defs:
        raise SchemaError(f"unresolved reference {ref}")
    merged = dict(defs[name])
    merged.update({k: v for k, v in node.items() if k != "$ref"})
    return merged


def _collapse_optional(node: Schema) -> Schema:
    """`anyOf: [X, null]` → X, keeping the outer node's description and default."""
    branches = [b for b in node["anyOf"] if b != {"type": "null"}]
    if len(branches) != 1:
        raise SchemaError(f"a union of {len(branches)} types needs an explicit JSON schema")
    merged = dict(branches[0])
    merged.update({k: v for k, v in node.items() if k != "anyOf"})
    if merged.get("default", 0) is None:
        del merged["default"]
    return merged


def structural(node: Schema, defs: dict[str, Schema], _expanding: tuple[str, ...] = ()) -> Schema:
    """The structural-schema form of one JSON Schema node, recursively."""
    while "$ref" in node or ("anyOf" in node and "x-kubernetes-int-or-string" not in node):
        if "$ref" in node:
            ref = node["$ref"]
            if ref in _expanding:
                raise SchemaError(f"{ref} refers to itself: a CRD schema cannot be recursive")
            _expanding = (*_expanding, ref)
            node = _resolve(node, defs)
        else:
            node = _collapse_optional(node)
    out: Schema = {}
    for key, value in node.items():
        if key in _DROP:
            continue
        if key == "properties":
            out["properties"] = {
                name: structural(sub, defs, _expanding) for name, sub in value.items()
            }
        elif key == "anyOf":  # only int-or-string gets here; its branches stay as they are
            out["anyOf"] = value
        elif key == "items":
            out["items"] = structural(value, defs, _expanding)
        elif key == "additionalProperties":
            if value is True or value == {}:
                out["x-kubernetes-preserve-unknown-fields"] = True
            elif isinstance(value, dict):
                out["additionalProperties"] = structural(value, defs, _expanding)
        elif key == "propertyNames":
            allowed = value.get("enum") or ([value["const"]] if "const" in value else None)
            unknown = set(value) - {"enum", "const", "type"}
            if unknown or not allowed:
                raise SchemaError(
                    f"map keys constrained by {sorted(value)}: only a set of names is supported"
                )
            if allowed:
                rules = out.setdefault("x-kubernetes-validations", [])
                rules.append(
                    {
                        "rule": f"self.all(k, k in {json.dumps(allowed)})",
                        "message": f"keys must be among {', '.join(allowed)}",
                    }
                )
        elif key in ("exclusiveMinimum", "exclusiveMaximum") and not isinstance(value, bool):
            bound = "minimum" if key == "exclusiveMinimum" else "maximum"
            out[bound] = value
            out[key] = True
        elif key == "const":
            out["enum"] = [value]
        elif key == "x-kubernetes-validations":
            out.setdefault("x-kubernetes-validations", []).extend(value)
        else:
            out[key] = value
    if "x-kubernetes-int-or-string" in out:
        out.pop("type", None)
    elif "type" not in out and "x-kubernetes-preserve-unknown-fields" not in out:
        if "properties" in out:
            out["type"] = "object"
        elif "enum" in out:
            out["type"] = "string"
        else:
            raise SchemaError(f"a schema node has no type: {sorted(node)}")
    if (
        out.get("type") == "object"
        and "properties" not in out
        and "additionalProperties" not in out
    ):
        out["x-kubernetes-preserve-unknown-fields"] = True
    return out


def model_schema(model: type[BaseModel]) -> Schema:
    """The structural OpenAPI v3 schema of a pydantic model."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.pop("$defs", {})
    return structural(raw, defs)
