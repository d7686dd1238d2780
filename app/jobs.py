"""Work the service does by itself, on a timer: the deadline sweep, webhook delivery, and
closing finished assessment periods.

Inside the service every `background_interval_seconds` (in a worker thread, so requests
are not held up); the same calls are CLI commands for cron (`roadchief workflow sweep`,
`roadchief webhooks deliver`). Both are safe to run from several processes at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx
import structlog

from app.assessment.periods import close_due_periods
from app.cases.sweep import sweep
from app.core.config import Settings
from app.core.database import Database
from app.notifications.delivery import deliver_due

log = structlog.get_logger("roadchief.jobs")


def run_jobs_once(database: Database, settings: Settings, client: httpx.Client) -> None:
    with database.sessions() as session:
        swept = sweep(session, settings)
    with database.sessions() as session:
        delivered = deliver_due(session, settings, client)
    with database.sessions() as session:
        frozen = close_due_periods(session, settings)
    if swept.total or delivered.delivered or delivered.retrying or delivered.failed or frozen:
        log.info("jobs_ran", swept=swept.recorded, webhooks=vars(delivered), closed=frozen)


@contextlib.asynccontextmanager
async def background_jobs(database: Database, settings: Settings) -> AsyncIterator[None]:
    """Run the jobs every interval while the app lives (not at all if the interval is 0)."""
    if settings.background_interval_seconds <= 0:
        yield
        return

    async def loop() -> None:
        with httpx.Client() as client:
            while True:
                try:
                    await asyncio.to_thread(run_jobs_once, database, settings, client)
                except Exception:  # a failed round must not stop the next one
                    log.exception("jobs_failed")
                await asyncio.sleep(settings.background_interval_seconds)

    task = asyncio.create_task(loop())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
