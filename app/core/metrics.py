"""Prometheus metrics: what every process counts, and who may read them.

The counters here live in `prometheus_client`'s default registry. With several worker
processes (`roadchief serve --workers N`), set `PROMETHEUS_MULTIPROC_DIR` to an empty
directory writable by the service (cleared at each start: the systemd unit does it):
`/metrics` then adds up every worker's counters (prometheus_client's multi-process
mode); gauges read from the database come from the worker that answers.

`/metrics` and the versions in `/readyz` are for operators: a client address in
`ROADCHIEF_METRICS_NETWORKS` (loopback by default; behind a reverse proxy that is the
forwarded address, when the proxy is trusted) or a bearer `ROADCHIEF_METRICS_TOKEN`.
"""

from __future__ import annotations

import hmac
import ipaddress
import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.requests import Request

from app.core.config import CoreSettings

REQUESTS = Counter(
    "roadchief_http_requests_total",
    "Requests answered, by method, route template and status.",
    ["method", "route", "status"],
)
LATENCY = Histogram(
    "roadchief_http_request_duration_seconds",
    "Time to answer a request, by method and route template.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
JOB_RUNS = Counter(
    "roadchief_job_runs_total",
    "Background job rounds, by job and outcome (ok, failed, skipped: another server ran it).",
    ["job", "outcome"],
)
JOB_DURATION = Histogram(
    "roadchief_job_duration_seconds",
    "Time one round of a background job took.",
    ["job"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0),
)
JOB_LAST_SUCCESS = Gauge(
    "roadchief_job_last_success_timestamp_seconds",
    "When a background job last finished a round without error (POSIX seconds).",
    ["job"],
    multiprocess_mode="max",
)
JOB_ITEMS = Counter(
    "roadchief_job_items_total",
    "What background jobs did: deadline events recorded, periods closed, patrols measured.",
    ["job", "kind"],
)
WEBHOOK_ATTEMPTS = Counter(
    "roadchief_webhook_attempts_total",
    "Webhook delivery attempts, by result (delivered, or the failure's class).",
    ["result"],
)
WEBHOOK_GIVEN_UP = Counter(
    "roadchief_webhook_failures_total",
    "Webhook deliveries given up after their last attempt.",
)
PHOTOS_PROCESSED = Counter(
    "roadchief_photos_processed_total",
    "Photos checked, decoded and stored (uploads and multipart reports).",
)
PHOTOS_REFUSED = Counter(
    "roadchief_photos_refused_total",
    "Photos refused, by the problem's code (photo_too_large, photo_too_many_pixels...).",
    ["reason"],
)

UNMATCHED = "unmatched"  # any path no route knows: one label, not one per probe


def route_template(request: Request) -> str:
    """The route's path template (`/api/v1/cases/{number}`), never the raw path."""
    route = request.scope.get("route")
    path = getattr(route, "path", None)
    if not isinstance(path, str):
        return UNMATCHED
    return f"{request.scope.get('root_path', '')}{path}"  # a mounted app's prefix


def observe_request(request: Request, status: int, seconds: float) -> None:
    route = route_template(request)
    REQUESTS.labels(request.method, route, str(status)).inc()
    LATENCY.labels(request.method, route).observe(seconds)
    # Single uploads; a multipart report counts its own photos (reports.service).
    if route == "/api/v1/photos" and request.method == "POST" and status == 201:
        PHOTOS_PROCESSED.inc()


#: The problems that refuse a photo itself (`app.media.images`), not a report lacking one.
PHOTO_REFUSALS = frozenset(
    {"photo_format_unsupported", "photo_corrupt", "photo_too_large", "photo_too_many_pixels"}
)


def count_refused_photo(code: str) -> None:
    if code in PHOTO_REFUSALS:
        PHOTOS_REFUSED.labels(code).inc()


def is_operator(request: Request, settings: CoreSettings) -> bool:
    """An address in ROADCHIEF_METRICS_NETWORKS, or the bearer ROADCHIEF_METRICS_TOKEN."""
    token = settings.metrics_token
    given = request.headers.get("authorization", "")
    if (
        token is not None
        and given.lower().startswith("bearer ")
        and hmac.compare_digest(given[7:].strip().encode(), token.get_secret_value().encode())
    ):
        return True
    host = request.client.host if request.client else ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(address in network for network in settings.metrics_networks)


def exposition(*registries: CollectorRegistry) -> tuple[bytes, str]:
    """The text format of this process's (or, in multi-process mode, every worker's)
    counters, followed by the given registries' (gauges read at scrape time)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        shared = CollectorRegistry()
        MultiProcessCollector(shared)
    else:
        shared = REGISTRY
    return b"".join(generate_latest(r) for r in (shared, *registries)), CONTENT_TYPE_LATEST
