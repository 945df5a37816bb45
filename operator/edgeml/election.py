"""Leader election for the operator's replicas: hold the Lease, or stand by.

`run_elected` acquires the Lease (plans.leadership decides each move), then runs the
operator while renewing it every `retry`. A holder that cannot renew within the renew
deadline exits at once, before any standby may take over, so two replicas never act at
once; one that is stopped (SIGTERM: an upgrade, a scale-down) releases the Lease, and a
standby takes over at its next look. While standing by, the process answers its
liveness endpoint so the kubelet does not restart it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import urlparse

from aiohttp import web

from edgeml.kube.lease import LeaseRecord, read_lease, write_lease
from edgeml.plans.leadership import LeaseFacts, LeaseTiming, decide, still_leading

log = logging.getLogger("edgeml.election")
EXIT_LOST_LEADERSHIP = 3


def _now() -> datetime:
    # Local judgements only (expiry, the renew deadline): a monotonic clock as a datetime.
    return datetime(2000, 1, 1, tzinfo=UTC) + timedelta(seconds=time.monotonic())


@dataclass
class Elector:
    """One replica's view of the Lease."""

    namespace: str
    name: str
    identity: str
    timing: LeaseTiming = field(default_factory=LeaseTiming)
    owner: Callable[[], tuple[str, str] | None] = lambda: None
    """(name, uid) of the ServiceAccount the Lease belongs to, asked at every write: an
    account deleted and made again has a new uid, and a Lease naming the old one would be
    collected."""
    record: LeaseRecord | None = None
    seen_version: str | None = None
    seen_at: datetime = datetime(2000, 1, 1, tzinfo=UTC)
    last_renewed: datetime | None = None

    @property
    def where(self) -> str:
        return f"Lease {self.namespace}/{self.name}"

    async def _read(self) -> LeaseRecord | None:
        record = await asyncio.to_thread(read_lease, self.namespace, self.name)
        version = record.resource_version if record else None
        if version != self.seen_version:
            self.seen_version, self.seen_at = version, _now()
        self.record = record
        return record

    async def _write(self, acquired: bool) -> bool:
        duration = int(self.timing.duration.total_seconds())
        return await asyncio.to_thread(
            write_lease, self.namespace, self.name, self.identity, duration,
            read=self.record, acquired=acquired, owner=self.owner(),
        )  # fmt: skip

    async def step(self) -> tuple[bool, timedelta]:
        """One look: (leading now, when to look again)."""
        record = await self._read()
        facts = (
            LeaseFacts(record.holder, self.seen_at, record.duration_seconds, record.transitions)
            if record is not None
            else None
        )
        decision = decide(facts, self.identity, _now(), self.timing)
        if decision.action == "Wait":
            return False, decision.look_again
        if await self._write(acquired=decision.action != "Renew"):
            self.last_renewed = _now()
            if decision.action != "Renew":
                log.info("%s: %s now leads (%s)", self.where, self.identity, decision.action)
            return True, decision.look_again
        return False, self.timing.retry  # another replica wrote first

    async def acquire(self) -> None:
        """Return once this replica holds the Lease."""
        waiting_for: str | None = None
        while True:
            try:
                leading, wait = await self.step()
            except Exception as err:  # the API server may be down: keep looking
                log.warning("%s: cannot look at the Lease: %s", self.where, err)
                leading, wait = False, self.timing.retry
            if leading:
                return
            holder = self.record.holder if self.record else None
            if holder != waiting_for:
                log.info("%s: standing by; %s leads", self.where, holder)
                waiting_for = holder
            await asyncio.sleep(wait.total_seconds())

    async def keep(self) -> None:
        """Renew until leadership is lost; then exit the process at once."""
        while True:
            await asyncio.sleep(self.timing.retry.total_seconds())
            try:
                leading, _ = await self.step()
                if not leading and self.record is not None and self.record.holder != self.identity:
                    self._lost(f"{self.record.holder} holds it now")
            except Exception as err:
                log.warning("%s: renewal failed: %s", self.where, err)
            assert self.last_renewed is not None
            if not still_leading(self.last_renewed, _now(), self.timing):
                self._lost(f"not renewed for {self.timing.renew_deadline.total_seconds():.0f}s")

    def _lost(self, why: str) -> None:
        log.error("%s: leadership lost (%s): exiting so that no two replicas act", self.where,
                  why)  # fmt: skip
        logging.shutdown()
        os._exit(EXIT_LOST_LEADERSHIP)

    async def release(self) -> None:
        """Hand the Lease back (an empty holder), so a standby takes over at once."""
        try:
            record = await asyncio.to_thread(read_lease, self.namespace, self.name)
            if record is not None and record.holder == self.identity:
                await asyncio.to_thread(
                    write_lease,
                    self.namespace,
                    self.name,
                    "",
                    1,
                    read=record,
                    acquired=False,
                    owner=self.owner(),
                )
                log.info("%s: released", self.where)
        except Exception as err:
            log.warning("%s: could not release the Lease: %s", self.where, err)


async def _standby_health(liveness: str) -> web.AppRunner:
    """Answer the liveness endpoint while standing by (kopf serves it once leading)."""
    url = urlparse(liveness)

    async def healthy(_: web.Request) -> web.Response:
        return web.json_response({"standby": True})

    app = web.Application()
    app.router.add_get(url.path or "/", healthy)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, url.hostname, url.port or 80, reuse_address=True).start()
    return runner


async def run_elected(
    elector: Elector, liveness: str, operate: Callable[[], Awaitable[None]]
) -> None:
    """Stand by until this replica leads, then run `operate` while holding the Lease."""
    health = await _standby_health(liveness)
    try:
        await elector.acquire()
    finally:
        await health.cleanup()
    keeper = asyncio.create_task(elector.keep())
    try:
        await operate()
    finally:
        keeper.cancel()
        await elector.release()
