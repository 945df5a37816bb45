"""Two lanes of worker threads: reconciles something asked for, and timer resyncs.

Every object is resynced on a timer (level-triggered: it catches what no event
announces). With thousands of objects the resyncs alone ask for more reconciles than
two cores give, and in one shared pool a patched object's reconcile queued behind them:
measured with 1,000 of each kind (docs/benchmarks.md), an EdgeDeployment's new version
took 253 s to be Healthy, most of it waiting. So reconciles run in one of two pools:

- `WOKEN`: an object changed, or something it watches did (a pod, a node, a champion);
- `RESYNC`: a timer fired and nothing asked.

Resyncs then lag when the machine is short of CPU, and woken reconciles do not. A
resync still queued when its object is woken moves to the woken lane (it would read the
same world), so a change never waits behind its own object's resync either.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")

WOKEN = ThreadPoolExecutor(max_workers=4, thread_name_prefix="edgeml-woken")
RESYNC = ThreadPoolExecutor(max_workers=2, thread_name_prefix="edgeml-resync")


async def run_in(lane: ThreadPoolExecutor, fn: Callable[..., T], *args: object) -> T:
    """Run `fn(*args)` in a thread of `lane`, with the caller's context variables (the
    object's logging context), as `asyncio.to_thread` does in the default pool."""
    context = contextvars.copy_context()
    call = functools.partial(context.run, fn, *args)
    return await asyncio.get_running_loop().run_in_executor(lane, call)


class _Claim:
    """Who runs a queued resync: its thread when it starts, or the woken lane instead."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.state = "queued"

    def take(self, state: str) -> bool:
        """Move from queued to `state` (started, moved, dropped); False if already gone."""
        with self._lock:
            if self.state != "queued":
                return False
            self.state = state
            return True


async def resync_unless_woken(fn: Callable[..., T], woken: asyncio.Event, *args: object) -> T:
    """Run `fn(*args)` in the resync lane; if `woken` is set before it has started, run
    it in the woken lane instead (and clear `woken`: that run reads the newest world).

    A call that has started is waited for, never run twice. If the caller is cancelled
    while the call is queued, the call is dropped.
    """
    claim = _Claim()
    context = contextvars.copy_context()

    def queued() -> tuple[bool, T | None]:
        if not claim.take("started"):
            return False, None
        return True, context.run(fn, *args)

    resync = asyncio.wrap_future(RESYNC.submit(queued))
    wake = asyncio.ensure_future(woken.wait())
    try:
        either: set[asyncio.Future[Any]] = {resync, wake}
        await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        if not resync.done() and claim.take("moved"):
            woken.clear()
            return await run_in(WOKEN, fn, *args)
        ran, result = await resync
        assert ran, "a queued resync runs unless it was moved or dropped"
        return result  # type: ignore[return-value]  # ran: fn's own result
    except asyncio.CancelledError:
        claim.take("dropped")
        raise
    finally:
        wake.cancel()
