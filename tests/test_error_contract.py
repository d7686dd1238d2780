"""The error contract itself: the recorder behind the `app` fixture catches a route that
answers a problem its OpenAPI entry does not list, and the drifts issue 17 found stay fixed."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.core.errors import NotFound, install_problem_handlers
from tests.support.contract import Answer, ProblemRecorder, undocumented


def test_an_undocumented_problem_is_caught() -> None:
    app = FastAPI()
    install_problem_handlers(app)
    answers: set[Answer] = set()
    app.add_middleware(ProblemRecorder, answers=answers)

    # The committed document has this operation; it does not list `not_found` for it.
    @app.get("/api/v1/me")
    def me() -> Any:
        raise NotFound("不在文档里")

    with TestClient(app) as client:
        assert client.get("/api/v1/me").status_code == 404
        assert client.get("/nowhere").status_code == 404  # no route: not a route's answer
    assert answers == {Answer("GET", "/api/v1/me", 404, "not_found")}
    assert undocumented(answers) == [Answer("GET", "/api/v1/me", 404, "not_found")]


def test_the_app_fixture_records_what_its_routes_answer(
    client: TestClient, anonymous: TestClient, app: FastAPI
) -> None:
    assert client.get("/api/v1/cases/XX-000000").status_code == 404
    assert anonymous.get("/api/v1/territory/units").status_code == 401
    assert client.get("/api/v1/inbox", params={"cursor": "!"}).status_code == 400
    assert client.get("/api/v1/territory/units", params={"limit": 0}).status_code == 422
    assert client.delete("/api/v1/inbox").status_code == 405  # not the route's answer
    assert client.get("/api/v1/nowhere").status_code == 404  # no route
    assert app.state.problem_answers == {
        Answer("GET", "/api/v1/cases/{number}", 404, "not_found"),
        Answer("GET", "/api/v1/territory/units", 401, "not_authenticated"),
        Answer("GET", "/api/v1/inbox", 400, "invalid_cursor"),
        Answer("GET", "/api/v1/territory/units", 422, "validation_failed"),
    }
    # All documented: the drifts issue 17 names (territory/units without its 401 and with
    # FastAPI's own 422, lists without `invalid_cursor`) are gone.
    assert undocumented(app.state.problem_answers) == []
