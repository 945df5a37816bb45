"""An object's loop waits for a wake, its resync time or kopf stopping its daemon."""

from __future__ import annotations

import asyncio
import time

from kopf._cogs.aiokits.aioenums import FlagSetter  # kopf's own stop flag, as daemons get it
from kopf._core.intents.stoppers import DaemonStoppingReason

from edgeml.controllers.handlers import _woken_or_stopped


def test_a_wake_a_stop_and_the_resync_time_each_end_the_wait() -> None:
    async def scenario() -> tuple[bool, bool, float, bool]:
        loop = asyncio.get_running_loop()
        event, flag = asyncio.Event(), FlagSetter[DaemonStoppingReason]()
        loop.call_later(0.05, event.set)
        woken = await _woken_or_stopped(event, flag.async_waiter, 30)
        event.clear()
        timed_out = await _woken_or_stopped(event, flag.async_waiter, 0.05)
        loop.call_later(0.05, flag.set)
        started = time.monotonic()
        stopped = await _woken_or_stopped(event, flag.async_waiter, 30)
        return woken, timed_out, time.monotonic() - started, stopped

    woken, timed_out, waited, stopped = asyncio.run(scenario())
    assert woken is True
    assert timed_out is False
    assert stopped is False
    assert waited < 5  # not the 30 s resync: the stop ended it
