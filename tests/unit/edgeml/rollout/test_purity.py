"""rollout/ is pure: it imports nothing that does I/O, directly or through edgeml."""

from __future__ import annotations

from unit.edgeml.test_boundaries import IO_MODULES, PACKAGE, Rule, violations


def test_rollout_does_no_io() -> None:
    found = violations(PACKAGE, Rule(IO_MODULES, only=("edgeml/rollout/",), transitive=True))
    assert not found, "\n".join(found)
