"""Parse an object as it arrived, keeping what can be kept when its spec is invalid."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from edgeml.api.common import StatusBase
from edgeml.api.kinds import KubeObject, ObjectMeta

ObjT = TypeVar("ObjT", bound=KubeObject[Any, Any])
StatusT = TypeVar("StatusT", bound=StatusBase)

MAX_ERRORS = 3
_UNION_TAGS = frozenset({"int", "str", "float", "bool", "list", "dict", "none"})


@dataclass(frozen=True)
class Parsed(Generic[ObjT, StatusT]):
    """The object if it parsed; else its metadata, old status and why the spec is invalid."""

    metadata: ObjectMeta
    status: StatusT | None
    obj: ObjT | None = None
    error: str | None = None


def describe_errors(err: ValidationError, prefix: str = "spec") -> str:
    """A one-sentence summary of pydantic errors with their field paths, e.g.
    `spec.training.dataset.uri: String should match pattern ...`."""
    parts: list[str] = []
    seen: set[str] = set()
    for e in err.errors():
        # pydantic names the union member it tried (`int`, `str`, `function-after[...]`);
        # a person wants the field's path only, once.
        loc = [str(p) for p in e["loc"] if str(p) not in _UNION_TAGS and "[" not in str(p)]
        path = ".".join(p for p in (prefix, *loc) if p != "")
        if path not in seen:
            seen.add(path)
            parts.append(f"{path}: {e['msg']}")
    more = len(parts) - MAX_ERRORS
    parts = parts[:MAX_ERRORS]
    if more > 0:
        parts.append(f"and {more} more")
    return "; ".join(parts)


def parse(
    model: type[ObjT], status_model: type[StatusT], body: Mapping[str, Any]
) -> Parsed[ObjT, StatusT]:
    """Parse `body` into `model`; on a spec error keep metadata and status for reporting."""
    metadata = ObjectMeta.model_validate(body.get("metadata", {}))
    status: StatusT | None = None
    raw_status = body.get("status")
    if raw_status:
        try:
            status = status_model.model_validate(raw_status)
        except ValidationError:
            status = None  # a status we cannot read is recomputed from the world
    spec_model: type[BaseModel] = model.model_fields["spec"].annotation  # type: ignore[assignment]
    try:
        spec_model.model_validate(body.get("spec") or {})
    except ValidationError as err:
        return Parsed(metadata, status, error=describe_errors(err))
    obj = model.model_validate({**body, "status": raw_status if status else None})
    return Parsed(metadata, status, obj=obj)
