"""Gauges read from the database when `/metrics` is scraped: cases by status, how far the
background jobs are behind, the connection pool in use. Counts are cached for a few
seconds, so a busy Prometheus (or several) cannot turn scrapes into load."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import datetime

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.pool import QueuePool

from app.cases.models import Case, CaseTask
from app.core.database import Database, utcnow
from app.notifications.models import DeliveryStatus, WebhookDelivery


class DatabaseCollector(Collector):
    def __init__(self, database: Database, cache_seconds: float = 10.0) -> None:
        self.database = database
        self.cache_seconds = cache_seconds
        self._lock = threading.Lock()
        self._read_at = -1e9
        self._cases: list[tuple[str, int]] = []
        self._lag: dict[str, float] = {}

    def _read(self) -> None:
        now = utcnow()

        def behind(oldest: datetime | None) -> float:
            return max(0.0, (now - oldest).total_seconds()) if oldest else 0.0

        with self.database.read_sessions() as session:
            self._cases = [
                (str(getattr(status, "value", status)), int(n))
                for status, n in session.execute(
                    select(Case.status, func.count()).group_by(Case.status)
                )
            ]
            # The oldest unit of work whose moment has come and that is still not done.
            alarm = session.scalar(
                select(func.min(CaseTask.next_alarm_at)).where(CaseTask.next_alarm_at <= now)
            )
            delivery = session.scalar(
                select(func.min(WebhookDelivery.next_attempt_at)).where(
                    WebhookDelivery.status == DeliveryStatus.PENDING,
                    WebhookDelivery.next_attempt_at <= now,
                )
            )
        self._lag = {"deadline_sweep": behind(alarm), "webhook_delivery": behind(delivery)}

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self._lock:
            if time.monotonic() - self._read_at > self.cache_seconds:
                self._read()
                self._read_at = time.monotonic()
            cases, lag = list(self._cases), dict(self._lag)
        by_status = GaugeMetricFamily(
            "roadchief_cases", "Cases by status (案件状态).", labels=["status"]
        )
        for status, n in sorted(cases):
            by_status.add_metric([status], n)
        yield by_status
        behind = GaugeMetricFamily(
            "roadchief_job_lag_seconds",
            "How long the oldest due unit of work of a job has waited (0: none waiting).",
            labels=["job"],
        )
        for job, seconds in sorted(lag.items()):
            behind.add_metric([job], seconds)
        yield behind
        pool = self.database.engine.pool
        in_use = GaugeMetricFamily(
            "roadchief_db_pool_connections",
            "This process's database connections, by state.",
            labels=["state"],
        )
        if isinstance(pool, QueuePool):
            in_use.add_metric(["in_use"], pool.checkedout())
            in_use.add_metric(["idle"], pool.checkedin())
            in_use.add_metric(["pool_size"], pool.size())
        yield in_use


def database_metrics(database: Database) -> CollectorRegistry:
    """A registry of this app's own (one per app: tests build many apps in one process)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector(database))
    return registry
