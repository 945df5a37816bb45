"""Resource quantities: parsing, a pod's QoS class, and `resourceFieldRef` values (pure)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

Obj = dict[str, Any]

# What every process node reports as capacity and allocatable.
NODE_CAPACITY: Mapping[str, str] = {
    "cpu": "4",
    "memory": "8Gi",
    "pods": "110",
    "ephemeral-storage": "50Gi",
}

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
}
_QUANTITY = re.compile(r"^([+-]?[0-9.]+)([eE][+-]?[0-9]+|[a-zA-Z]*)$")


class QuantityError(ValueError):
    """A string that is not a Kubernetes resource quantity."""


def parse_quantity(text: str | int | float) -> Decimal:
    """Parse a Kubernetes quantity ("100m", "1.5Gi", "2e3") into a Decimal."""
    if isinstance(text, int | float):
        return Decimal(str(text))
    m = _QUANTITY.match(text.strip())
    if not m:
        raise QuantityError(f"not a quantity: {text!r}")
    number, suffix = m.groups()
    try:
        value = Decimal(number)
    except InvalidOperation as e:
        raise QuantityError(f"not a quantity: {text!r}") from e
    if suffix in _BINARY:
        return value * _BINARY[suffix]
    if suffix in _DECIMAL:
        return value * _DECIMAL[suffix]
    if suffix[:1] in "eE":
        return value * Decimal(10) ** int(suffix[1:])
    raise QuantityError(f"unknown quantity suffix in {text!r}")


def qos_class(pod: Obj) -> str:
    """The pod's QoS class (Guaranteed, Burstable or BestEffort), by Kubernetes' rules."""
    spec = pod.get("spec") or {}
    containers = list(spec.get("initContainers") or []) + list(spec.get("containers") or [])
    requests: dict[str, Decimal] = {}
    limits: dict[str, Decimal] = {}
    guaranteed = True
    for c in containers:
        res = c.get("resources") or {}
        for name, q in (res.get("requests") or {}).items():
            if name in ("cpu", "memory") and parse_quantity(q) > 0:
                requests[name] = requests.get(name, Decimal(0)) + parse_quantity(q)
        found = set()
        for name, q in (res.get("limits") or {}).items():
            if name in ("cpu", "memory") and parse_quantity(q) > 0:
                found.add(name)
                limits[name] = limits.get(name, Decimal(0)) + parse_quantity(q)
        if found != {"cpu", "memory"}:
            guaranteed = False
    if not requests and not limits:
        return "BestEffort"
    same = requests.keys() == limits.keys() and all(limits[k] == v for k, v in requests.items())
    if guaranteed and same:
        return "Guaranteed"
    return "Burstable"


def resource_field_value(container: Obj | None, ref: Obj) -> str:
    """The value of a `resourceFieldRef` for `container`, as kubelet computes it.

    An unset limit falls back to the node's allocatable amount; the result is
    rounded up to a whole number of `divisor`.
    """
    resource = str(ref.get("resource", ""))
    kind, _, name = resource.partition(".")
    if kind not in ("limits", "requests") or not name:
        raise QuantityError(f"unsupported resource {resource!r}")
    res = (container or {}).get("resources") or {}
    raw = (res.get(kind) or {}).get(name)
    if raw is None and kind == "requests":
        # Requests default to limits (the API server does this too) and else to zero.
        raw = (res.get("limits") or {}).get(name)
    if raw is None:
        raw = NODE_CAPACITY.get(name, "0") if kind == "limits" else "0"
    divisor = parse_quantity(ref.get("divisor") or "1")
    if divisor == 0:
        divisor = Decimal(1)  # the API server defaults an unset divisor to "0"; kubelet reads 1
    if divisor < 0:
        raise QuantityError(f"divisor must be positive in {ref!r}")
    return str(math.ceil(parse_quantity(raw) / divisor))
