"""Leader election over a Lease: never two leaders, a dead one replaced in time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeml.plans.leadership import LeaseFacts, LeaseTiming, decide, still_leading

T0 = datetime(2026, 5, 1, tzinfo=UTC)
TIMING = LeaseTiming()


def test_the_first_replica_creates_the_lease_and_then_renews_it() -> None:
    assert decide(None, "a", T0, TIMING).action == "Create"
    assert decide(LeaseFacts("a", T0), "a", T0, TIMING).action == "Renew"


def test_a_standby_waits_until_the_lease_is_unrenewed_for_its_duration() -> None:
    lease = LeaseFacts("a", T0, duration_seconds=10)
    waiting = decide(lease, "b", T0 + timedelta(seconds=9), TIMING)
    assert (waiting.action, waiting.holder) == ("Wait", "a")
    assert waiting.look_again == timedelta(seconds=1)
    assert decide(lease, "b", T0 + timedelta(seconds=10), TIMING).action == "TakeOver"


def test_a_released_lease_is_taken_at_once() -> None:
    assert decide(LeaseFacts("", T0), "b", T0, TIMING).action == "TakeOver"


def test_a_holder_stops_acting_before_anyone_may_take_over() -> None:
    assert still_leading(T0, T0 + timedelta(seconds=6), TIMING)
    assert not still_leading(T0, T0 + timedelta(seconds=7), TIMING)
    assert TIMING.renew_deadline < TIMING.duration


def test_timings_that_would_allow_two_leaders_are_refused() -> None:
    with pytest.raises(ValueError, match="retry < renewDeadline < duration"):
        LeaseTiming(duration=timedelta(seconds=5), renew_deadline=timedelta(seconds=6))


@dataclass
class Replica:
    name: str
    alive: bool = True
    last_renewed: datetime | None = None
    seen_version: int = -1
    seen_at: datetime = T0

    def leading(self, now: datetime) -> bool:
        return (
            self.alive
            and self.last_renewed is not None
            and still_leading(self.last_renewed, now, TIMING)
        )


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=2),  # which replica acts
            st.integers(min_value=0, max_value=3000),  # milliseconds until it does
            st.booleans(),  # whether its write reaches the API server
            st.integers(min_value=0, max_value=20),  # 0: it dies now
        ),
        max_size=60,
    )
)
def test_never_two_leaders_and_a_dead_one_is_replaced_in_time(
    steps: list[tuple[int, int, bool, int]],
) -> None:
    """Three replicas over one Lease (compare-and-swap on its version), with lost writes,
    crashes and arbitrary timing: at no instant do two believe they lead, and once the
    leader is dead a live replica leads within duration + retry of its last renewal."""
    replicas = [Replica(n) for n in "abc"]
    holder: str | None = None
    version = 0
    now = T0
    for who, wait_ms, delivered, fate in steps:
        now += timedelta(milliseconds=wait_ms)
        leaders = [r.name for r in replicas if r.leading(now)]
        assert len(leaders) <= 1, (now, leaders)
        replica = replicas[who]
        if not replica.alive:
            continue
        if fate == 0:
            replica.alive = False
            continue
        if replica.seen_version != version:
            replica.seen_version, replica.seen_at = version, now
        facts = LeaseFacts(holder, replica.seen_at, 10) if version else None
        decision = decide(facts, replica.name, now, TIMING)
        if decision.action != "Wait" and delivered:
            # The write carries the version read: it lands, since nothing changed between.
            holder, version = replica.name, version + 1
            replica.last_renewed = now
            replica.seen_version, replica.seen_at = version, now
    # Liveness: with every live replica looking every retry, a live one leads in time.
    alive = [r for r in replicas if r.alive]
    if not alive:
        return
    dead_since = now
    for _ in range(20):
        now += TIMING.retry
        for replica in alive:
            if replica.seen_version != version:
                replica.seen_version, replica.seen_at = version, now
            facts = LeaseFacts(holder, replica.seen_at, 10) if version else None
            if decide(facts, replica.name, now, TIMING).action != "Wait":
                holder, version = replica.name, version + 1
                replica.last_renewed = now
                replica.seen_version, replica.seen_at = version, now
        if any(r.leading(now) for r in alive):
            break
    assert any(r.leading(now) for r in alive)
    assert now - dead_since <= TIMING.duration + 2 * TIMING.retry
