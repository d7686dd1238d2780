"""The README's routing examples are what the shipped tables decide: ten cases (a pothole,
a gas-company manhole, a dead corner, road greenery, street vending; Huiji and Dengfeng)
routed through the API and compared with the table between the README's markers."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.routing.schemas import TERRITORY
from app.territory.models import AssetType, RoadGrade
from tests.support.places import asset_owned_by, on_segment

README = Path(__file__).parents[2] / "README.md"
START = "<!-- routing-examples: generated from the shipped tables by "
END = "<!-- /routing-examples -->"
TABLES = ((1, "惠济 2019 (seed 000)"), (2, "登封 2020 (seed 001)"))
CASES = (
    ("pothole", "roads.surface"),
    ("manhole of 金河燃气公司, named", "roads.manhole"),
    ("dead corner", "clean.dead_corner"),
    ("road greenery", "greenery.road_greenery"),
    ("street vending", "order.street_vending"),
)
STREET_OFFICE = "属地街道办事处"


def readme_block() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index(START)
    return text[start : text.index(END, start) + len(END)]


def expected_block(client: TestClient, session: Session) -> str:
    spot = on_segment(session, grade=RoadGrade.BACK_LANE)
    manhole, lon, lat = asset_owned_by(session, AssetType.MANHOLE_COVER, "gas-company")

    @cache
    def name(code: str) -> str:
        if code == TERRITORY:
            return "各街道（镇）"
        response = client.get(f"/api/v1/territory/units/{code}")
        assert response.status_code == 200, code
        unit: dict[str, Any] = response.json()
        return STREET_OFFICE if unit["kind"] == "street_office" else str(unit["name"])

    rows = [
        "| table | case (category) | rule | gets a task (**lead** first) "
        "| responsible for the work item, no task |",
        "| --- | --- | --- | --- | --- |",
    ]
    for version, table in TABLES:
        rules = {
            r["id"]: r
            for r in client.get(f"/api/v1/routing/rule-sets/{version}").json()["document"]["rules"]
        }
        for label, category in CASES:
            body: dict[str, Any] = {
                "category_code": category,
                "lon": spot.lon,
                "lat": spot.lat,
                "rule_set_version": version,
            }
            if category == "roads.manhole":
                body.update(lon=lon, lat=lat, asset_code=manhole)
            decision = client.post("/api/v1/routing/dry-run", json=body).json()
            rule = rules[decision["matched_rule"]["id"]]
            tasked = [f"**{name(u['code'])}**" for u in decision["lead_units"]] + [
                name(u["code"]) for u in decision["cooperating_units"]
            ]
            rows.append(
                f"| {table} | {label} (`{category}`) | {rule['id']} | {'、'.join(tasked)} "
                f"| {'、'.join(name(c) for c in rule.get('responsible', [])) or '—'} |"
            )
    return (
        START
        + "tests/routing/test_readme_examples.py, which prints the new table when they "
        + "change -->\n"
        + "\n".join(rows)
        + "\n"
        + END
    )


def test_the_readme_shows_what_the_shipped_tables_decide(
    client: TestClient, session: Session
) -> None:
    expected = expected_block(client, session)
    assert readme_block() == expected, f"README.md should read:\n{expected}"
