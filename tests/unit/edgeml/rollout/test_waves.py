"""Wave order, wave sizes and the maxUnavailable budget."""

from __future__ import annotations

import pytest

from edgeml.rollout import NodesStep, PauseStep
from edgeml.rollout.waves import max_unavailable, order_nodes, wave_size

FLEET = [(f"n{i:02d}", f"z{i % 3}") for i in range(12)]


def test_order_is_deterministic_and_independent_of_input_order() -> None:
    assert order_nodes(FLEET, "2") == order_nodes(list(reversed(FLEET)), "2")


def test_order_is_salted_by_the_target_version() -> None:
    assert order_nodes(FLEET, "2") != order_nodes(FLEET, "3")
    assert sorted(order_nodes(FLEET, "2")) == sorted(n for n, _ in FLEET)


@pytest.mark.parametrize("salt", ["1", "2", "3", "7:abc"])
def test_every_prefix_spreads_over_zones_round_robin(salt: str) -> None:
    zone = dict(FLEET)
    order = order_nodes(FLEET, salt)
    for k in range(1, len(order) + 1):
        counts = [sum(1 for n in order[:k] if zone[n] == z) for z in ("z0", "z1", "z2")]
        assert max(counts) - min(counts) <= 1, (k, counts)


def test_a_small_zone_shares_the_first_waves_then_the_big_one_continues() -> None:
    fleet = [("a1", "big"), ("a2", "big"), ("a3", "big"), ("a4", "big"), ("b1", "small")]
    order = order_nodes(fleet, "2")
    assert {"b1"} & set(order[:2])
    assert [n for n in order[2:]] == [n for n in order if n.startswith("a")][1:]


def test_one_zone_orders_by_hash() -> None:
    assert order_nodes([("b", ""), ("a", "")], "x") == order_nodes([("a", ""), ("b", "")], "x")


@pytest.mark.parametrize(
    ("steps", "index", "total", "expected"),
    [
        ((NodesStep("10%"),), 0, 20, 2),
        ((NodesStep("10%"),), 0, 21, 3),  # percent rounds up
        ((NodesStep("1%"),), 0, 3, 1),  # at least one for any share above 0%
        ((NodesStep("0%"),), 0, 30, 0),
        ((NodesStep(7),), 0, 5, 5),  # a count is capped by the fleet
        ((NodesStep(3),), 0, 10, 3),
        ((NodesStep("50%"), NodesStep(2)), 1, 10, 5),  # waves never shrink
        ((NodesStep(2), PauseStep()), 1, 10, 2),  # pause keeps the last wave
        ((PauseStep(), NodesStep(2)), 0, 10, 0),  # nothing moved yet
        ((NodesStep(2),), 1, 10, 10),  # past the last step: every node
        ((), 0, 10, 10),  # no canary: every node
    ],
)
def test_wave_size(
    steps: tuple[NodesStep | PauseStep, ...], index: int, total: int, expected: int
) -> None:
    assert wave_size(steps, index, total) == expected


@pytest.mark.parametrize(
    ("value", "total", "expected"),
    [
        (1, 10, 1),
        (3, 10, 3),
        (30, 10, 10),
        ("25%", 10, 3),
        ("0%", 10, 1),
        (0, 10, 1),
        ("100%", 4, 4),
    ],
)
def test_max_unavailable(value: int | str, total: int, expected: int) -> None:
    assert max_unavailable(value, total) == expected
