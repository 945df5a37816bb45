"""When a container is restarted: restartPolicy and CrashLoopBackOff timing (pure)."""

from __future__ import annotations

from dataclasses import dataclass

INITIAL_BACKOFF = 10.0
MAX_BACKOFF = 300.0
# A container that stayed up this long since its last restart starts over at the initial backoff.
RESET_AFTER = 2 * MAX_BACKOFF


@dataclass(frozen=True)
class Backoff:
    """The current backoff of a container: its length and when it was last raised (monotonic)."""

    seconds: float
    updated_at: float


def should_restart(policy: str, exit_code: int, *, init: bool = False) -> bool:
    """Whether a container that exited with `exit_code` is started again under `policy`.

    An init container that succeeded is done for good; one that failed is retried
    unless the policy is Never.
    """
    if init:
        return exit_code != 0 and policy != "Never"
    if policy == "Always":
        return True
    if policy == "OnFailure":
        return exit_code != 0
    return False


def _live(backoff: Backoff | None, now: float) -> Backoff | None:
    if backoff is None or now - backoff.updated_at > RESET_AFTER:
        return None
    return backoff


def restart_delay(backoff: Backoff | None, finished_at: float, now: float) -> float:
    """Seconds left before a container that finished at `finished_at` may start again.

    Like kubelet, the first restart is immediate; later ones wait out the backoff
    counted from when the container finished.
    """
    live = _live(backoff, now)
    if live is None:
        return 0.0
    return max(0.0, live.seconds - (now - finished_at))


def after_restart(backoff: Backoff | None, now: float) -> Backoff:
    """The backoff once a container has been restarted at `now`: 10 s, then doubling up to 5 min."""
    live = _live(backoff, now)
    if live is None:
        return Backoff(INITIAL_BACKOFF, now)
    return Backoff(min(live.seconds * 2, MAX_BACKOFF), now)
