"""Operating the service: probes, request ids, problem bodies, configuration, OpenAPI."""

from __future__ import annotations

import json
import logging

import pytest
from fastapi.testclient import TestClient

from app.cli import OPENAPI_PATH, openapi_text
from app.core.config import SettingsError
from app.main import create_app
from app.settings import get_settings
from tests.support.databases import DatabaseFactory, migrate

REQUEST_ID = "5f0c7c4e0e6d4b52a8b1d2e3f4a5b6c7"


def test_liveness_and_readiness(client: TestClient, engine_name: str) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["database"] == ("sqlite" if engine_name == "sqlite" else "postgresql")


def test_not_ready_until_migrated(factory: DatabaseFactory) -> None:
    url = factory.new_url()
    database = factory.database(url)
    with TestClient(create_app(factory.settings(url), database)) as client:
        response = client.get("/readyz")
        assert response.status_code == 503
        assert response.json()["code"] == "not_ready"
        assert "roadchief db upgrade" in response.json()["detail"]
        migrate(database)
        assert client.get("/readyz").status_code == 200


def test_request_id_is_echoed_and_logged(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="roadchief.request"):
        response = client.get("/healthz", headers={"X-Request-ID": REQUEST_ID})
    assert response.headers["X-Request-ID"] == REQUEST_ID
    logged = [r for r in caplog.records if r.name == "roadchief.request"]
    assert logged, "no request log line"
    event = logged[-1].msg
    assert isinstance(event, dict)
    assert event["request_id"] == REQUEST_ID
    assert event["path"] == "/healthz"
    assert event["status"] == 200


def test_the_body_gates_refusals_are_logged_with_their_request_id(
    anonymous: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    """The request log is a pure ASGI middleware outside the body gate: what the gate
    refuses before the route runs is logged too, with the status it was answered."""
    with caplog.at_level(logging.INFO, logger="roadchief.request"):
        response = anonymous.post(
            "/api/v1/reports", content=b"{}", headers={"X-Request-ID": REQUEST_ID}
        )
    assert response.status_code == 401
    event = [r for r in caplog.records if r.name == "roadchief.request"][-1].msg
    assert isinstance(event, dict)
    assert (event["request_id"], event["method"], event["status"]) == (REQUEST_ID, "POST", 401)
    assert event["duration_ms"] >= 0


def test_unknown_route_is_a_problem(client: TestClient) -> None:
    response = client.get("/api/v1/nowhere")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json() == {
        "type": "/problems/not_found",
        "title": "资源不存在",
        "status": 404,
        "detail": "请求的地址不存在",
        "instance": "/api/v1/nowhere",
        "code": "not_found",
    }


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("DATABASE_URL", "mysql://localhost/roadchief", "DATABASE_URL"),
        ("ROADCHIEF_TIME_ZONE", "Mars/Olympus", "ROADCHIEF_TIME_ZONE"),
        ("ROADCHIEF_LOG_LEVEL", "LOUD", "ROADCHIEF_LOG_LEVEL"),
        ("ROADCHIEF_SERVICE_AREA", "114,35,113,34", "ROADCHIEF_SERVICE_AREA"),
        ("ROADCHIEF_LOCATE_SEGMENT_RADIUS_M", "-5", "ROADCHIEF_LOCATE_SEGMENT_RADIUS_M"),
    ],
)
def test_bad_configuration_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, named: str
) -> None:
    monkeypatch.setenv(variable, value)
    get_settings.cache_clear()
    try:
        with pytest.raises(SettingsError, match=named):
            get_settings()
    finally:
        get_settings.cache_clear()


def test_defaults_are_the_documented_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DATABASE_URL", "ROADCHIEF_TIME_ZONE", "ROADCHIEF_MEDIA_DIR"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    try:
        settings = get_settings()
        assert settings.database_url == "sqlite:///var/roadchief.sqlite3"
        assert settings.time_zone == "Asia/Shanghai"
        assert str(settings.media_dir) == "var/media"
    finally:
        get_settings.cache_clear()


def test_committed_openapi_document_is_current() -> None:
    assert OPENAPI_PATH.read_text(encoding="utf-8") == openapi_text(), (
        "openapi/openapi.json is out of date: run `.venv/bin/roadchief openapi`"
    )


def test_every_operation_is_documented() -> None:
    document = json.loads(openapi_text())
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert operation.get("summary"), f"{method.upper()} {path} has no summary"
            success = sorted(code for code in operation["responses"] if code.startswith("2"))
            assert success, f"{method.upper()} {path} documents no success response"
            if success[0] == "204":
                continue  # nothing to type
            content = operation["responses"][success[0]].get("content", {})
            assert content, f"{method.upper()} {path} has no typed response"
            for media_type, body in content.items():
                assert "schema" in body, f"{method.upper()} {path} {media_type} has no schema"


def test_serve_prints_where_to_look_and_each_place_answers(
    anonymous: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`roadchief serve` (what `scripts/start` ends in) names the console, the docs and the
    OpenAPI document; each answers on the app it starts."""
    import re

    import uvicorn
    from typer.testing import CliRunner

    from app.cli import cli

    started: list[str] = []
    monkeypatch.setattr(uvicorn, "run", lambda target, **options: started.append(target))
    result = CliRunner().invoke(cli, ["serve", "--port", "8123"])
    assert result.exit_code == 0, result.output
    assert started == ["app.main:app_factory"]
    places = re.findall(r"http://127\.0\.0\.1:8123(/\S*)", result.output)
    assert places == ["/console", "/docs", "/openapi.json"]
    for place in places:
        answer = anonymous.get(place, follow_redirects=False)
        assert answer.status_code in (200, 303), (place, answer.status_code)
    assert (
        anonymous.get("/console", follow_redirects=False)
        .headers["location"]
        .startswith("/console/login")
    )
