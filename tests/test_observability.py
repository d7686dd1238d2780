"""Operators watch the service: Prometheus metrics at /metrics (operators only), and
/readyz saying what is not ready without telling strangers the schema's versions."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from opentelemetry.trace import SpanKind
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.cases.models import Case
from app.core.database import Database
from app.core.deps import get_db_session
from app.core.metrics import PHOTO_REFUSALS
from app.core.tracing import configure_tracing, tracing_wanted
from app.main import create_app
from app.settings import Settings
from tests.support import Headers
from tests.support.databases import DatabaseFactory, migrate
from tests.support.places import Spot
from tests.support.reports import new_key, report_body

METRICS_TOKEN = "prometheus-scrape-token-0123456789"
OPERATOR = {"Authorization": f"Bearer {METRICS_TOKEN}"}


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(scraped: dict[Any, float], name: str, **labels: str) -> float:
    return scraped.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def watched(settings: Settings, demo_database: Database, session: Session) -> Iterator[TestClient]:
    changed = settings.model_copy(update={"metrics_token": SecretStr(METRICS_TOKEN)})
    app: FastAPI = create_app(changed, demo_database)
    app.dependency_overrides[get_db_session] = lambda: session
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def test_metrics_move_when_a_report_is_filed(
    watched: TestClient, as_user: Headers, spot: Spot, demo_database: Database
) -> None:
    before = samples(watched.get("/metrics", headers=OPERATOR).text)
    chief = as_user("demo-chief-3")
    body = report_body(spot, category_code="civility.public_behaviour")  # needs no photo
    answer = watched.post("/api/v1/reports", json=body,
                          headers={**chief, "Idempotency-Key": new_key()})  # fmt: skip
    assert answer.status_code == 201, answer.text
    assert watched.get("/api/v1/cases/nowhere-0", headers=chief).status_code == 404
    scraped = watched.get("/metrics", headers=OPERATOR)
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain")
    after = samples(scraped.text)

    route = {"method": "POST", "route": "/api/v1/reports"}
    assert value(after, "roadchief_http_requests_total", **route, status="201") == (
        value(before, "roadchief_http_requests_total", **route, status="201") + 1
    )
    assert value(after, "roadchief_http_request_duration_seconds_count", **route) == (
        value(before, "roadchief_http_request_duration_seconds_count", **route) + 1
    )
    # By the route's template, not the raw path: no label per case number.
    template = {"method": "GET", "route": "/api/v1/cases/{number}", "status": "404"}
    assert value(after, "roadchief_http_requests_total", **template) >= 1
    assert not any("nowhere-0" in dict(labels).get("route", "") for _, labels in after)
    # Cases by status, counted by the database; the naive count over a connection of its own
    # (the collector reads committed rows, not this test's open transaction).
    with demo_database.read_sessions() as other:
        naive = dict(other.execute(select(Case.status, func.count()).group_by(Case.status)).all())
    for status, n in naive.items():
        assert value(after, "roadchief_cases", status=status.value) == n
    assert sum(v for (name, _), v in after.items() if name == "roadchief_cases") == sum(
        naive.values()
    )
    assert ("roadchief_db_pool_connections", frozenset({("state", "in_use")})) in after
    assert value(after, "roadchief_job_lag_seconds", job="deadline_sweep") >= 0


def test_photo_refusals_are_counted_by_reason(watched: TestClient, as_user: Headers) -> None:
    before = samples(watched.get("/metrics", headers=OPERATOR).text)
    answer = watched.post("/api/v1/photos", files={"file": ("p.jpg", b"not a photo", "image/jpeg")},
                          headers=as_user("demo-chief-3"))  # fmt: skip
    assert answer.status_code in (415, 422), answer.text
    reason = answer.json()["code"]
    assert reason in PHOTO_REFUSALS
    after = samples(watched.get("/metrics", headers=OPERATOR).text)
    assert value(after, "roadchief_photos_refused_total", reason=reason) == (
        value(before, "roadchief_photos_refused_total", reason=reason) + 1
    )


def test_metrics_are_for_operators_only(watched: TestClient, as_user: Headers) -> None:
    # The test client's address is no network address: like a stranger on the Internet.
    assert watched.get("/metrics").status_code == 403
    assert watched.get("/metrics").json()["code"] == "metrics_forbidden"
    assert watched.get("/metrics", headers=as_user("demo-admin")).status_code == 403
    assert watched.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 403
    assert watched.get("/metrics", headers=OPERATOR).status_code == 200


def test_readyz_names_what_is_behind(factory: DatabaseFactory) -> None:
    url = factory.new_url()
    database = factory.database(url)
    migrate(database)
    migrate(database, "-1", down=True)  # the code is one migration ahead of the database
    settings = factory.settings(url).model_copy(update={"metrics_token": SecretStr(METRICS_TOKEN)})
    with TestClient(create_app(settings, database)) as client:
        stranger = client.get("/readyz")
        assert stranger.status_code == 503
        body = stranger.json()
        assert body["code"] == "not_ready"
        assert [m["component"] for m in body["not_ready"]] == ["migrations"]
        assert "roadchief db upgrade" in body["detail"]
        assert "current" not in body["not_ready"][0]  # no versions for strangers
        operator = client.get("/readyz", headers=OPERATOR).json()["not_ready"][0]
        assert operator["current"] != operator["expected"]
        migrate(database)
        ready = client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json().get("schema_revision") is None
        assert (
            client.get("/readyz", headers=OPERATOR).json()["schema_revision"]
            == (operator["expected"])
        )


def test_traces_follow_a_request_into_sql_and_the_log_carries_them(
    factory: DatabaseFactory, settings: Settings, as_user: Headers, caplog: pytest.LogCaptureFixture
) -> None:
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    assert not tracing_wanted()  # no OTEL_* variable in the suite: no traces by default
    exporter = InMemorySpanExporter()
    database = factory.database(settings.database_url)  # an engine of its own to instrument
    app = create_app(settings, database)
    assert configure_tracing(app, database.engine, exporter=exporter)
    try:
        with caplog.at_level(logging.INFO, logger="roadchief.request"), TestClient(app) as client:
            assert client.get("/api/v1/me", headers=as_user("demo-chief-3")).status_code == 200
    finally:
        EngineTracer.remove_all_event_listeners()
        HTTPXClientInstrumentor().uninstrument()
        exporter.shutdown()
    spans = exporter.get_finished_spans()
    server = [s for s in spans if s.kind is SpanKind.SERVER]
    assert len(server) == 1
    assert server[0].attributes is not None
    assert server[0].attributes.get("http.route") == "/api/v1/me"
    trace_id = server[0].context.trace_id
    sql = [s for s in spans if s.attributes and "db.statement" in s.attributes]
    assert sql
    assert all(s.context.trace_id == trace_id for s in sql)
    logged = [r.msg for r in caplog.records if r.name == "roadchief.request"]
    assert isinstance(logged[-1], dict)
    assert logged[-1]["trace_id"] == f"{trace_id:032x}"
    assert logged[-1]["request_id"]


def test_readyz_names_an_unreachable_photo_store(
    settings: Settings, demo_database: Database, tmp_path: Path
) -> None:
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the photo store should be")
    broken = settings.model_copy(
        update={"media_dir": blocked, "metrics_token": SecretStr(METRICS_TOKEN)}
    )
    with TestClient(create_app(broken, demo_database)) as client:
        stranger = client.get("/readyz")
        assert stranger.status_code == 503
        assert stranger.json()["not_ready"] == [
            {"component": "photo_store", "detail": "照片存储无法访问"}
        ]
        operator = client.get("/readyz", headers=OPERATOR).json()["not_ready"][0]
        assert operator["error"]  # the failure's class, for operators only
