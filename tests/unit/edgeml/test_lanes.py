"""The two lanes of reconciles: a resync queued behind others moves to the woken lane
when its object is woken, a started one is never run twice, a cancelled one is dropped."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Iterator

import pytest

from edgeml.controllers import lanes

WHO: contextvars.ContextVar[str] = contextvars.ContextVar("who", default="")


@pytest.fixture
def busy_resync_lane() -> Iterator[threading.Event]:
    """Every resync thread held until the test sets the returned event."""
    release = threading.Event()
    started = [threading.Event() for _ in range(lanes.RESYNC._max_workers)]

    def hold(mine: threading.Event) -> None:
        mine.set()
        release.wait(30)

    for mine in started:
        lanes.RESYNC.submit(hold, mine)
    for mine in started:
        assert mine.wait(10)
    yield release
    release.set()


def _record(calls: list[str], what: str) -> str:
    calls.append(f"{what} {threading.current_thread().name} {WHO.get()}")
    return what


def test_run_in_runs_in_the_lanes_threads_with_the_callers_context() -> None:
    calls: list[str] = []

    async def main() -> str:
        WHO.set("shop/vib")
        return await lanes.run_in(lanes.WOKEN, _record, calls, "woken")

    assert asyncio.run(main()) == "woken"
    assert calls == [calls[0]]
    assert calls[0].startswith("woken edgeml-woken")
    assert calls[0].endswith("shop/vib")


def test_a_queued_resync_moves_to_the_woken_lane_when_woken_and_runs_once(
    busy_resync_lane: threading.Event,
) -> None:
    calls: list[str] = []

    async def main() -> str:
        woken = asyncio.Event()
        WHO.set("shop/vib")
        call = asyncio.ensure_future(lanes.resync_unless_woken(_record, woken, calls, "ran"))
        await asyncio.sleep(0.05)
        assert not call.done(), "the resync lane is busy: the call waits"
        woken.set()
        result = await asyncio.wait_for(call, 10)
        assert not woken.is_set(), "the moved call reads the newest world: the wake is spent"
        busy_resync_lane.set()
        # The queue entry is taken by a free thread and finds the call moved.
        await asyncio.to_thread(lanes.RESYNC.submit(lambda: None).result, 10)
        return result

    assert asyncio.run(main()) == "ran"
    assert len(calls) == 1
    assert calls[0].startswith("ran edgeml-woken")
    assert calls[0].endswith("shop/vib")


def test_a_started_resync_is_waited_for_not_run_again() -> None:
    calls: list[str] = []
    inside, finish = threading.Event(), threading.Event()

    def slow() -> str:
        inside.set()
        finish.wait(10)
        return _record(calls, "slow")

    async def main() -> str:
        woken = asyncio.Event()
        call = asyncio.ensure_future(lanes.resync_unless_woken(slow, woken))
        assert await asyncio.to_thread(inside.wait, 10)
        woken.set()
        await asyncio.sleep(0.05)
        assert not call.done(), "a started call is not abandoned"
        finish.set()
        return await asyncio.wait_for(call, 10)

    assert asyncio.run(main()) == "slow"
    assert len(calls) == 1
    assert calls[0].startswith("slow edgeml-resync")


def test_a_resync_cancelled_while_queued_never_runs(busy_resync_lane: threading.Event) -> None:
    calls: list[str] = []

    async def main() -> None:
        call = asyncio.ensure_future(
            lanes.resync_unless_woken(_record, asyncio.Event(), calls, "ran")
        )
        await asyncio.sleep(0.05)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        busy_resync_lane.set()
        # The queue entry is taken by a free thread and finds itself dropped.
        await asyncio.to_thread(lanes.RESYNC.submit(lambda: None).result, 10)

    asyncio.run(main())
    assert calls == []
