"""Pure: leader election over a coordination.k8s.io Lease, as client-go does it.

One replica holds the Lease and renews it every `retry`; the others look at the same
interval and take it over only once it has not been renewed for `duration`. The holder
stops acting (the process exits) when it has not renewed for `renew_deadline`, which is
shorter than `duration`: so two replicas never act at once, and a holder that died is
replaced within `duration + retry`. A holder that stops cleanly releases the Lease
(empty holder), and a standby takes it at its next look.

Expiry is judged on the reader's own clock, from when it first saw the Lease's current
record (as client-go does): the holder's renewTime is another machine's clock.
Compare-and-swap makes the writes safe: every write carries the resourceVersion it read,
so of two replicas that race for an expired Lease the API server accepts one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

Action = Literal["Create", "Renew", "TakeOver", "Wait"]


@dataclass(frozen=True)
class LeaseTiming:
    """How long a Lease lasts unrenewed, how soon its holder gives up, how often each
    replica looks (client-go's defaults are 15 s / 10 s / 2 s)."""

    duration: timedelta = timedelta(seconds=10)
    renew_deadline: timedelta = timedelta(seconds=7)
    retry: timedelta = timedelta(seconds=2)

    def __post_init__(self) -> None:
        if not (self.retry < self.renew_deadline < self.duration):
            raise ValueError("need retry < renewDeadline < duration")


@dataclass(frozen=True)
class LeaseFacts:
    """The Lease as read, and when this replica first saw its current record."""

    holder: str | None
    seen: datetime
    """When this replica first read the record as it is now (its own clock)."""
    duration_seconds: int | None = None
    transitions: int = 0


@dataclass(frozen=True)
class LeaseDecision:
    """What to write (or not), and when to look again."""

    action: Action
    holder: str | None
    """Who holds it now, as far as this replica can tell."""
    look_again: timedelta


def decide(lease: LeaseFacts | None, me: str, now: datetime, timing: LeaseTiming) -> LeaseDecision:
    """This replica's move, given the Lease it just read."""
    if lease is None:
        return LeaseDecision("Create", me, timing.retry)
    if lease.holder == me:
        return LeaseDecision("Renew", me, timing.retry)
    if not lease.holder:
        return LeaseDecision("TakeOver", me, timing.retry)  # released, or never held
    lasts = timedelta(seconds=lease.duration_seconds or int(timing.duration.total_seconds()))
    expires = lease.seen + lasts
    if now >= expires:
        return LeaseDecision("TakeOver", me, timing.retry)
    return LeaseDecision("Wait", lease.holder, min(timing.retry, expires - now))


def still_leading(last_renewed: datetime, now: datetime, timing: LeaseTiming) -> bool:
    """Whether a holder may keep acting: it renewed within the renew deadline."""
    return now - last_renewed < timing.renew_deadline
