"""Waiting for a condition with a timeout, never a bare sleep."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class WaitTimeoutError(AssertionError):
    """The condition was not met in time; the message says what was expected and seen."""


def wait_for(
    observe: Callable[[], T],
    done: Callable[[T], bool],
    *,
    timeout: float,
    what: str,
    interval: float = 0.25,
) -> T:
    """Call `observe` until `done(observation)`; return that observation.

    Exceptions from `observe` count as "not yet" (an API that blinks), and the last
    observation or error is in the failure message.
    """
    deadline = time.monotonic() + timeout
    last: object = "(nothing observed)"
    while True:
        try:
            value = observe()
            if done(value):
                return value
            last = value
        except Exception as err:
            last = f"error: {err!r}"
        if time.monotonic() > deadline:
            raise WaitTimeoutError(
                f"timed out after {timeout:.0f}s waiting for {what}; last seen: {last}"
            )
        time.sleep(interval)
