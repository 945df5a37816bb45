"""Quantities, QoS classes and resourceFieldRef values."""

from decimal import Decimal

import pytest

from localcluster.agent.resources import (
    QuantityError,
    parse_quantity,
    qos_class,
    resource_field_value,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1", Decimal(1)),
        ("100m", Decimal("0.1")),
        ("1.5", Decimal("1.5")),
        ("1Ki", Decimal(1024)),
        ("8Gi", Decimal(8 * 2**30)),
        ("2k", Decimal(2000)),
        ("1e3", Decimal(1000)),
        ("500M", Decimal(500_000_000)),
        (2, Decimal(2)),
    ],
)
def test_parse_quantity(text: str | int, value: Decimal) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize("text", ["", "abc", "1Xi", "1.2.3"])
def test_parse_quantity_rejects_garbage(text: str) -> None:
    with pytest.raises(QuantityError):
        parse_quantity(text)


def pod(*resources: dict) -> dict:
    return {
        "spec": {"containers": [{"name": f"c{i}", "resources": r} for i, r in enumerate(resources)]}
    }


def test_qos_classes() -> None:
    assert qos_class(pod({})) == "BestEffort"
    both = {"cpu": "1", "memory": "1Gi"}
    assert qos_class(pod({"limits": both, "requests": both})) == "Guaranteed"
    assert (
        qos_class(pod({"limits": both, "requests": {"cpu": "500m", "memory": "1Gi"}}))
        == "Burstable"
    )
    assert qos_class(pod({"requests": {"cpu": "1"}})) == "Burstable"
    assert qos_class(pod({"limits": both, "requests": both}, {})) == "Burstable"


def test_resource_field_value_rounds_up_and_falls_back_to_the_node() -> None:
    c = {
        "resources": {"limits": {"cpu": "250m", "memory": "100Mi"}, "requests": {"memory": "10Mi"}}
    }
    assert resource_field_value(c, {"resource": "limits.cpu"}) == "1"
    assert resource_field_value(c, {"resource": "limits.cpu", "divisor": "1m"}) == "250"
    assert resource_field_value(c, {"resource": "requests.memory", "divisor": "1Mi"}) == "10"
    assert resource_field_value(c, {"resource": "requests.cpu", "divisor": "1m"}) == "250"
    assert resource_field_value({}, {"resource": "limits.memory"}) == str(8 * 2**30)
    assert resource_field_value({}, {"resource": "requests.cpu"}) == "0"
    with pytest.raises(QuantityError):
        resource_field_value({}, {"resource": "cpu"})
