"""Which nodes form each wave: a deterministic order, spread round-robin over zones."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Sequence

from edgeml.api.common import resolve_percent_or_count
from edgeml.rollout.model import NodesStep, Step


def _key(salt: str, name: str) -> str:
    return hashlib.sha256(f"{salt}\0{name}".encode()).hexdigest()


def order_nodes(nodes: Iterable[tuple[str, str]], salt: str) -> list[str]:
    """Node names in wave order: each zone shuffled by a salted hash, then round-robin.

    `nodes` are (name, zone) pairs. The salt (the target version) makes a new version
    start on different nodes than the last one did, while the same inputs always give
    the same order. Zones take turns, so the first k nodes span min(k, zones) zones.
    """
    zones: dict[str, list[str]] = defaultdict(list)
    for name, zone in nodes:
        zones[zone].append(name)
    ranked: list[tuple[int, str, str]] = []
    for zone, names in zones.items():
        zone_key = _key(salt, "zone/" + zone)
        for rank, name in enumerate(sorted(names, key=lambda n: (_key(salt, n), n))):
            ranked.append((rank, zone_key, name))
    return [name for _, _, name in sorted(ranked)]


def wave_size(steps: Sequence[Step], index: int, total: int) -> int:
    """Nodes on the new version once step `index` moved them: the largest wave so far.

    Past the last step it is every node. A wave never shrinks, even if a count step
    follows a larger percentage step.
    """
    if index >= len(steps):
        return total
    sizes = [
        resolve_percent_or_count(step.nodes, total)
        for step in steps[: index + 1]
        if isinstance(step, NodesStep)
    ]
    return max(sizes, default=0)


def max_unavailable(value: int | str, total: int) -> int:
    """How many online nodes the rollout may have unready at once; at least 1.

    Zero would deadlock: with one pod per node there is no surge to move without it.
    """
    return max(1, resolve_percent_or_count(value, total))
