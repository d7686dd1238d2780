"""路长吹哨 steps: a whistle's body, blowing it as demo-chief-3, a department reporting in."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.support import Headers
from tests.support.places import Spot

WHISTLES = "/api/v1/whistles"


def whistle_body(spot: Spot, **more: Any) -> dict[str, Any]:
    return {
        "segment_code": spot.segment_code,
        "lon": spot.lon,
        "lat": spot.lat,
        "category_code": "roads.waterlogging",
        "description": "路口积水没过脚踝，需城管、交警到场处置",
        "unit_codes": ["urban-management", "traffic-police-5"],
        **more,
    }


def blow(client: TestClient, as_user: Headers, spot: Spot, **more: Any) -> dict[str, Any]:
    response = client.post(
        WHISTLES, json=whistle_body(spot, **more), headers=as_user("demo-chief-3")
    )
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def report_in(
    client: TestClient, who: dict[str, str], whistle_id: int, lon: float, lat: float, **more: Any
) -> Any:
    return client.post(
        f"{WHISTLES}/{whistle_id}/report-in", json={"lon": lon, "lat": lat, **more}, headers=who
    )
