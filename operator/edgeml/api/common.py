"""Types shared by the four kinds: the model base, conditions, references, durations.

Every model is frozen and speaks Kubernetes JSON (camelCase). Field docstrings
become the descriptions in the generated CRDs and in docs/api.md, so they are
written for the person reading `kubectl explain`.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
)
from pydantic.alias_generators import to_camel

from edgeml.quantities import QUANTITY_PATTERN

GROUP = "edgeml.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"


class KubeModel(BaseModel):
    """Base of every API model: frozen, camelCase on the wire, docstrings as descriptions."""

    model_config = ConfigDict(
        frozen=True,
        alias_generator=to_camel,
        populate_by_name=True,
        use_attribute_docstrings=True,
        # The API server prunes unknown fields before we see them; ignore rather than fail.
        extra="ignore",
    )

    def to_json(self) -> dict[str, Any]:
        """The object as Kubernetes JSON: camelCase keys, unset optional fields omitted."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


# --- scalar types -------------------------------------------------------------------

_DURATION_RE = re.compile(r"^(?:(\d+(?:\.\d+)?)(ms|s|m|h))+$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}

Duration = Annotated[
    str,
    StringConstraints(pattern=r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$", max_length=32),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$",
            "maxLength": 32,
            "description": "A duration such as 30s, 5m, 1h30m (units ms, s, m, h).",
        }
    ),
]
"""A Go-style duration: one or more number+unit pairs, e.g. `90s`, `1h30m`."""


def parse_duration(text: str) -> timedelta:
    """Parse a Duration string (`1h30m`, `250ms`) into a timedelta; ValueError if malformed."""
    if not _DURATION_RE.match(text):
        raise ValueError(f"{text!r} is not a duration such as 30s, 5m or 1h30m")
    seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(text))
    try:
        return timedelta(seconds=seconds)
    except OverflowError as err:
        raise ValueError(f"{text!r} is longer than any duration edgeml can wait") from err


# Five fields, each `*`, a number, a range, a list or a step; names of days and months too.
_CRON_FIELD = (
    r"(\*|[0-9A-Za-z]+(-[0-9A-Za-z]+)?)(/[0-9]+)?(,(\*|[0-9A-Za-z]+(-[0-9A-Za-z]+)?)(/[0-9]+)?)*"
)
CRON_PATTERN = (
    rf"^(@(yearly|annually|monthly|weekly|daily|hourly)|{_CRON_FIELD}( {_CRON_FIELD}){{4}})$"
)

Cron = Annotated[
    str,
    StringConstraints(pattern=CRON_PATTERN, max_length=100),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": CRON_PATTERN,
            "maxLength": 100,
            "description": "A cron schedule: five fields (minute hour day month weekday) "
            "or @daily, @weekly...",
        }
    ),
]
"""A standard five-field cron expression, evaluated in UTC."""

CRON_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@hourly": "0 * * * *",
}
"""The macros cron(8) knows, as the five fields they stand for (cronsim takes fields only)."""


CRON_HELP = (
    "minute 0-59, hour 0-23, day of month 1-31 on a day the month has, month 1-12 or "
    "jan-dec, day of week 0-7 or sun-sat; ranges run upwards, steps are at least 1"
)


def cron_fields(expr: str) -> str:
    """The five-field form of a schedule (macros expanded)."""
    return CRON_MACROS.get(expr.strip(), expr.strip())


def check_cron(expr: str) -> str | None:
    """Why a cron expression cannot be used (a message), or None if it is valid.

    The CRD pattern checks the shape; cronsim (the parser the schedule runs on) checks
    the numbers, and refuses a day that never comes (`0 0 31 4 *`).
    """
    from cronsim import CronSim, CronSimError

    fields = cron_fields(expr)
    if len(fields.split()) != 5:  # cronsim would take a sixth field as seconds
        return f"cron {expr!r}: wrong number of fields ({CRON_HELP})"
    try:
        CronSim(fields, datetime(2000, 1, 1))
    except CronSimError as err:
        what = str(err).lower() or "not a valid schedule"
        return f"cron {expr!r}: {what} ({CRON_HELP})"
    return None


_PERCENT_RE = re.compile(r"^(100|[1-9]?[0-9])%$")


def _check_percent_or_count(value: int | str) -> int | str:
    if isinstance(value, int):
        if value < 0:
            raise ValueError("a node count must be 0 or more")
        return value
    if not _PERCENT_RE.match(value):
        raise ValueError(f"{value!r} is neither a node count nor a percentage from 0% to 100%")
    return value


PercentOrCount = Annotated[
    int | str,
    AfterValidator(_check_percent_or_count),
    WithJsonSchema(
        {
            "x-kubernetes-int-or-string": True,
            # Structural schemas allow only this exact anyOf; the bounds below apply to
            # whichever branch matched (minimum to numbers, pattern to strings).
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "minimum": 0,
            "pattern": "^(100|[1-9]?[0-9])%$",
            "maxLength": 4,
            "description": "A node count (e.g. 5) or a percentage of the targeted nodes "
            '(e.g. "10%").',
        }
    ),
]
"""A count of nodes, or a percentage of the targeted nodes written as a string (`"25%"`)."""


def resolve_percent_or_count(value: int | str, total: int, *, round_up: bool = True) -> int:
    """How many of `total` nodes a PercentOrCount means (percentages round up by default)."""
    if isinstance(value, int):
        return min(value, total)
    percent = int(value.rstrip("%"))
    scaled = total * percent
    count = -(-scaled // 100) if round_up else scaled // 100
    return min(count, total)


Name = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63),
]
"""A Kubernetes object name (DNS-1123 label)."""

Quantity = Annotated[str, StringConstraints(pattern=QUANTITY_PATTERN, max_length=32)]
"""A Kubernetes resource quantity such as `500m`, `2`, `256Mi`."""


# --- references ---------------------------------------------------------------------


class LocalObjectReference(KubeModel):
    """A reference to an object in the same namespace."""

    name: Name
    """Name of the referenced object."""


class SecretKeyReference(KubeModel):
    """A key of a Secret in the same namespace."""

    name: Name
    """Name of the Secret."""
    key: Annotated[str, StringConstraints(min_length=1, max_length=253)]
    """Key within the Secret."""


class ResourceRequirements(KubeModel):
    """CPU and memory for a workload's containers, as in a Pod spec."""

    requests: Annotated[dict[Literal["cpu", "memory"], Quantity], Field(max_length=2)] | None = None
    """Minimum resources, used for scheduling."""
    limits: Annotated[dict[Literal["cpu", "memory"], Quantity], Field(max_length=2)] | None = None
    """Maximum resources."""


# --- status --------------------------------------------------------------------------

ConditionStatus = Literal["True", "False", "Unknown"]


class Condition(KubeModel):
    """One aspect of an object's state, in the standard Kubernetes shape."""

    type: Annotated[str, StringConstraints(max_length=316)]
    """The aspect: Ready, Progressing, Degraded, Drifted, Succeeded..."""
    status: ConditionStatus
    """True, False or Unknown."""
    reason: Annotated[str, StringConstraints(max_length=1024)]
    """A CamelCase word for why the condition is what it is."""
    message: Annotated[str, StringConstraints(max_length=32768)] = ""
    """A sentence for a person: what is happening, and what to do if it is a problem."""
    last_transition_time: datetime
    """When the status last changed."""
    observed_generation: int | None = None
    """The spec generation this condition was computed from."""


class StatusBase(KubeModel):
    """What every kind's status holds."""

    observed_generation: int | None = None
    """The spec generation the operator last reconciled."""
    phase: str | None = None
    """A one-word summary of the state; conditions hold the detail."""
    conditions: list[Condition] = Field(
        default_factory=list,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    """The current conditions; `Ready` on every kind."""
