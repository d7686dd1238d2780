"""Work the service does by itself, on a timer: the deadline sweep, closing finished
assessment periods, measuring patrols again after late fixes, and webhook delivery.

Inside the service every `background_interval_seconds`, in two loops of their own threads
(so requests are not held up): one for the database's own work, one for webhook delivery,
which waits on receivers elsewhere and so must never hold up a deadline. The same calls
are CLI commands for cron (`roadchief workflow sweep`, `roadchief webhooks deliver`).
All are safe to run on every server of a deployment at once, and each unit of work is done
once: the sweep claims its rows (`FOR UPDATE SKIP LOCKED` on PostgreSQL, then a
conditional UPDATE) in the transaction that records their events, so a server killed
mid-sweep rolls its claims back with its work and another server does it; a webhook
delivery is claimed with a lease (a server killed mid-send leaves it to another after the
lease); closing periods and measuring patrols run on one server at a time (`job_lock`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterator

import httpx
import structlog

import app.wiring  # noqa: F401  (the domains' registrations)
from app.assessment.periods import close_due_periods
from app.cases.sweep import sweep
from app.core.database import Database
from app.core.joblocks import job_lock
from app.core.metrics import JOB_DURATION, JOB_ITEMS, JOB_LAST_SUCCESS, JOB_RUNS
from app.notifications.delivery import deliver_due, webhook_client
from app.patrols.service import remeasure_due
from app.settings import Settings

log = structlog.get_logger("roadchief.jobs")


@contextlib.contextmanager
def measured(job: str) -> Iterator[None]:
    """Count the round (ok or failed) and its time in the job metrics."""
    started = time.perf_counter()
    try:
        yield
    except Exception:
        JOB_RUNS.labels(job, "failed").inc()
        raise
    JOB_RUNS.labels(job, "ok").inc()
    JOB_DURATION.labels(job).observe(time.perf_counter() - started)
    JOB_LAST_SUCCESS.labels(job).set_to_current_time()


def run_jobs_once(database: Database, settings: Settings) -> None:
    """The deadline sweep, closing periods, measuring patrols: the database's own work."""
    with measured("deadline_sweep"), database.sessions() as session:
        swept = sweep(session, settings)
    for kind, n in swept.recorded.items():
        JOB_ITEMS.labels("deadline_sweep", kind).inc(n)
    # These two read a lot before they write a little: read-only sessions, whose writes
    # start transactions of their own, so other writers are not held back meanwhile. One
    # server at a time computes them (the others would compute the same and lose the write).
    frozen: list[str] = []
    remeasured = 0
    with job_lock(database.engine, "close_periods") as mine:
        if not mine:
            JOB_RUNS.labels("close_periods", "skipped").inc()
        else:
            with measured("close_periods"), database.read_sessions() as session:
                frozen = close_due_periods(session, settings)
            JOB_ITEMS.labels("close_periods", "closed").inc(len(frozen))
    with job_lock(database.engine, "remeasure_patrols") as mine:
        if not mine:
            JOB_RUNS.labels("remeasure_patrols", "skipped").inc()
        else:
            with measured("remeasure_patrols"), database.read_sessions() as session:
                remeasured = remeasure_due(session, settings)
            JOB_ITEMS.labels("remeasure_patrols", "measured").inc(remeasured)
    if swept.total or frozen or remeasured:
        log.info("jobs_ran", swept=swept.recorded, closed=frozen, remeasured=remeasured)


def deliver_once(database: Database, settings: Settings, client: httpx.Client) -> None:
    with measured("webhook_delivery"), database.sessions() as session:
        delivered = deliver_due(session, settings, client)
    if delivered.delivered or delivered.retrying or delivered.failed:
        log.info("webhooks_ran", webhooks=vars(delivered))


@contextlib.asynccontextmanager
async def background_jobs(database: Database, settings: Settings) -> AsyncIterator[None]:
    """Run the jobs every interval while the app lives (not at all if the interval is 0)."""
    if settings.background_interval_seconds <= 0:
        yield
        return

    async def every_interval(name: str, job: Callable[[], None]) -> None:
        while True:
            try:
                await asyncio.to_thread(job)
            except Exception:  # a failed round must not stop the next one
                log.exception("jobs_failed", loop=name)
            await asyncio.sleep(settings.background_interval_seconds)

    with webhook_client(settings) as client:
        tasks = [
            asyncio.create_task(
                every_interval("database", lambda: run_jobs_once(database, settings))
            ),
            asyncio.create_task(
                every_interval("webhooks", lambda: deliver_once(database, settings, client))
            ),
        ]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
