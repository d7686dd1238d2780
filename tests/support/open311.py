"""Open311 GeoReport v2 steps: the endpoint's base, a civic app's API key (the `make_key`
fixture, for a package's conftest.py), posting a service request, checking an answer
against a JSON Schema."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jsonschema_rs
import pytest
from fastapi.testclient import TestClient

from tests.support.places import Spot

BASE = "/open311/v2"


PHOTO = "https://civic.example.org/photos/1.jpg"


NOW = "2026-11-18T10:00:00+08:00"


def post_request(
    anonymous: TestClient, key: str, spot: Spot, fmt: str = "json", **fields: Any
) -> Any:
    form = {
        "api_key": key,
        "service_code": "roads.manhole",
        "lat": str(spot.lat),
        "long": str(spot.lon),
        "description": "井盖缺失，有人差点踩空",
        "media_url": PHOTO,
        **fields,
    }
    return anonymous.post(
        f"{BASE}/requests.{fmt}", data={k: v for k, v in form.items() if v is not None}
    )


def assert_valid(validator: jsonschema_rs.Validator, body: Any) -> None:
    errors = [f"{e.instance_path}: {e.message}" for e in validator.iter_errors(body)]
    assert not errors, errors


@pytest.fixture
def make_key(client: TestClient) -> Callable[..., str]:
    """An API key created by the demo admin: `make_key("open311", ["410199001"])`."""

    def make(access: str = "open311", codes: list[str] | None = None) -> str:
        response = client.post(
            "/api/v1/admin/api-keys",
            json={"name": f"civic app {access}", "jurisdiction_codes": codes or ["410199"],
                  "access": access},
        )  # fmt: skip
        assert response.status_code == 201, response.text
        key: str = response.json()["key"]
        return key

    return make
