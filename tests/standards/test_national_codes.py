"""National editions, a platform's code table, 部件标识码 on import, the exchange."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.accounts.models import Role
from app.accounts.schemas import UserCreate
from app.accounts.service import create_user
from app.cases.models import Case, CaseSource
from app.exchange.models import PlatformCase
from app.reports.models import Report
from app.settings import Settings
from app.standards.codes import load_edition, standards_settings
from app.territory.models import Asset
from tests.support.open311 import BASE, NOW, post_request
from tests.support.photos import jpeg
from tests.support.places import Spot
from tests.support.reports import upload

pytestmark = pytest.mark.time_machine(NOW)

#: A platform's table as a deployment supplies it. The codes are this test's own (9x:
#: no standard uses them); only the names must be the taxonomy's.
TEST_TABLE = {
    "edition": "cjt-214-2007",
    "source": "test fixture (not the standard)",
    "components": [{"code": "91", "name": "公用设施", "minors": [{"code": "95", "name": "井盖"}]}],
    "events": [
        {"code": "94", "name": "突发事件", "minors": [{"code": "91", "name": "路面塌陷"}]},
        {"code": "91", "name": "市容环境", "minors": [{"code": "93", "name": "积存垃圾渣土"}]},
    ],
}


def _use(monkeypatch: pytest.MonkeyPatch, **env: str) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    standards_settings.cache_clear()
    load_edition.cache_clear()


@pytest.fixture
def platform_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "table.yaml"
    path.write_text(yaml.safe_dump(TEST_TABLE, allow_unicode=True), encoding="utf-8")
    _use(monkeypatch, ROADCHIEF_NATIONAL_TABLE=str(path))
    yield path
    monkeypatch.delenv("ROADCHIEF_NATIONAL_TABLE")
    _use(monkeypatch)


def test_every_edition_is_published_with_what_is_missing(client: TestClient) -> None:
    body = client.get("/api/v1/standards/national-classes").json()
    assert body["edition"] == "cjt-214-2007"  # the demo's
    editions = {e["edition"]: e for e in body["editions"]}
    assert set(editions) == {"cjt-214-2007", "gbt-30428.2-2013", "gbt-47678.5-2026"}
    assert editions["cjt-214-2007"]["identifier_length"] == 16
    assert editions["gbt-30428.2-2013"]["identifier_length"] == 17
    assert all(e["missing"] for e in editions.values())  # no table text was found
    leaves = {c["code"]: c for c in body["categories"]}
    assert leaves["roads.manhole"]["national"]["major"] == "公用设施"
    # Shipped editions carry no class codes: nothing is guessed.
    assert {code for c in leaves.values() for code in c["classes"].values()} == {None}


def test_a_platform_table_names_the_classes_everywhere(
    client: TestClient,
    anonymous: TestClient,
    session: Session,
    spot: Spot,
    make_key: Callable[..., str],
    platform_table: Path,
) -> None:
    leaves = {
        c["code"]: c["classes"]
        for c in client.get("/api/v1/standards/national-classes").json()["categories"]
    }
    assert leaves["roads.surface"]["cjt-214-2007"] == "event:9491"
    assert leaves["roads.manhole"]["cjt-214-2007"] == "component:9195"
    assert leaves["roads.surface"]["gbt-30428.2-2013"] is None  # the table is one edition's
    # Open311: the national code is an alias of the service code, and listed as a keyword.
    definition = anonymous.get(f"{BASE}/services/event:9491.json").json()
    assert definition["service_code"] == "roads.surface"
    services = {s["service_code"]: s for s in anonymous.get(f"{BASE}/services.json").json()}
    assert "event:9491" in services["roads.surface"]["keywords"]
    # Two categories share 积存垃圾渣土: its code names neither.
    assert anonymous.get(f"{BASE}/services/event:9193.json").status_code == 404
    number = post_request(
        anonymous, make_key(), spot, service_code="event:9491", media_url="https://x.org/1.jpg"
    ).json()[0]["service_request_id"]
    case = session.scalar(select(Case).where(Case.number == number))
    assert case is not None
    assert case.category_code == "roads.surface"
    exported = client.get("/api/v1/exchange/cases").json()["cases"]
    mine = next(c for c in exported if c["number"] == number)
    assert mine["national"]["code"] == "event:9491"
    assert mine["national"]["edition"] == "cjt-214-2007"

    # The phone's API takes the national code in place of the category, and says it back.
    report = {
        "national_code": "event:9491",
        "description": "路面坑洼",
        "lon": spot.lon,
        "lat": spot.lat,
        "device_time": NOW,
        "photos": [{"photo_id": upload(client, jpeg())["id"]}],
    }
    filed = client.post("/api/v1/reports", json=report)
    assert filed.status_code == 201, filed.text
    detail = client.get(f"/api/v1/reports/{filed.json()['report_id']}").json()
    assert (detail["category_code"], detail["national_code"]) == ("roads.surface", "event:9491")
    stored = (
        session.scalar(select(func.count()).select_from(Report)),
        session.scalar(select(func.count()).select_from(Case)),
    )
    for refused in (
        {"national_code": "event:9193"},  # two categories share it
        {"national_code": "event:9491", "category_code": "roads.manhole"},  # disagree
    ):
        answer = client.post("/api/v1/reports", json={**report, **refused})
        assert (answer.status_code, answer.json()["code"]) == (422, "unknown_category")
    neither = client.post("/api/v1/reports", json={**report, "national_code": None})
    assert (neither.status_code, neither.json()["code"]) == (422, "validation_failed")
    assert (
        session.scalar(select(func.count()).select_from(Report)),
        session.scalar(select(func.count()).select_from(Case)),
    ) == stored  # nothing of the refused reports was kept
    # Exports carry the class beside the category, by name and code.
    sheet = client.get(
        "/api/v1/assessment/cases/export.csv",
        params={"from": "2026-11-01", "to": "2026-11-30", "street": spot.street_code},
    )
    assert sheet.status_code == 200, sheet.text
    header, *rows = csv.reader(io.StringIO(sheet.content.decode("utf-8-sig")))
    cells = [dict(zip(header, row, strict=True)) for row in rows]
    mine = next(c for c in cells if c["案件编号"] == filed.json()["case_number"])
    assert (mine["国标分类"], mine["国标分类编码"]) == ("路面塌陷", "event:9491")
    # KPIs by category name each category's class too.
    kpis = client.get(
        "/api/v1/assessment/kpis",
        params={"by": "category", "from": "2026-11-01", "to": "2026-11-30"},
    )
    assert kpis.status_code == 200, kpis.text
    classes = {row["key"]: row["national_code"] for row in kpis.json()["rows"]}
    assert classes["roads.surface"] == "event:9491"


def _manhole(national_id: str, lon: float, lat: float, code: str = "MH-NAT-000001") -> Any:
    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {
                    "code": code,
                    "asset_type": "manhole_cover",
                    "owner_unit_code": "gas-company",
                    "national_id": national_id,
                },
                "geometry": {"type": "Point", "coordinates": [lon, lat]},
            }
        ],
    }


def test_an_imported_component_identifier_is_kept_and_checked(
    client: TestClient, session: Session, spot: Spot, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = "/api/v1/admin/territory/assets/import"
    good = "4101990101000001"  # 410199 (the demo district) + 01 + 01 + 000001
    response = client.post(url, json=_manhole(good, spot.lon, spot.lat))
    assert response.status_code == 200, response.text
    asset = client.get("/api/v1/territory/assets/MH-NAT-000001").json()
    assert asset["properties"]["national_id"] == good

    def refused(national_id: str, code: str = "MH-NAT-000002") -> list[str]:
        answer = client.post(url, json=_manhole(national_id, spot.lon, spot.lat, code))
        assert answer.status_code == 422, answer.text
        return [e["code"] for e in answer.json()["errors"]]

    assert refused("3205080101000001") == ["national_id_district_mismatch"]  # Suzhou's
    assert refused("41019901010000001") == ["bad_national_id"]  # 17 digits in the 2007 edition
    _use(monkeypatch, ROADCHIEF_NATIONAL_EDITION="gbt-30428.2-2013")
    try:
        assert refused("4101990101000001") == ["bad_national_id"]  # 16 digits in 2013's
        ok = client.post(url, json=_manhole("41019901001000002", spot.lon, spot.lat, "MH-NAT-3"))
        assert ok.status_code == 200, ok.text
    finally:
        monkeypatch.delenv("ROADCHIEF_NATIONAL_EDITION")
        _use(monkeypatch)
    assert (
        session.scalar(select(func.count()).select_from(Asset).where(Asset.code == "MH-NAT-000002"))
        == 0
    )


def test_a_platform_table_checks_the_class_of_an_identifier(
    client: TestClient, spot: Spot, platform_table: Path
) -> None:
    url = "/api/v1/admin/territory/assets/import"
    answer = client.post(url, json=_manhole("4101990101000009", spot.lon, spot.lat, "MH-NAT-4"))
    assert [e["code"] for e in answer.json()["errors"]] == ["unknown_national_class"]
    known = client.post(url, json=_manhole("4101999195000009", spot.lon, spot.lat, "MH-NAT-4"))
    assert known.status_code == 200, known.text


# --- the exchange with the city's platform ---------------------------------------------------


def test_export_since_a_cursor_sends_each_change_once(
    client: TestClient,
    settings: Settings,
    anonymous: TestClient,
    spot: Spot,
    make_key: Callable[..., str],
    session: Session,
    as_user: Callable[[str], dict[str, str]],
) -> None:
    first = client.get("/api/v1/exchange/cases", params={"limit": 200})
    assert first.status_code == 200
    cursor = first.json()["next_cursor"]
    while cursor is not None:  # catch up with the demo's history
        page = client.get("/api/v1/exchange/cases", params={"since": cursor, "limit": 200}).json()
        if not page["cases"]:
            break
        cursor = page["next_cursor"]
    number = post_request(anonymous, make_key(), spot).json()[0]["service_request_id"]
    since = {"since": cursor} if cursor else {}
    page = client.get("/api/v1/exchange/cases", params=since).json()
    [case] = page["cases"]
    assert case["number"] == number
    assert case["stage"] == "待立案"
    assert case["photo_urls"] == ["https://civic.example.org/photos/1.jpg"]
    assert [e["kind"] for e in case["history"]] == ["reported"]
    cursor = page["next_cursor"]
    assert client.get("/api/v1/exchange/cases", params={"since": cursor}).json()["cases"] == []
    row = session.scalar(select(Case).where(Case.number == number))
    assert row is not None
    client.post(
        f"/api/v1/cases/{number}/actions/register",
        headers={**as_user("demo-dispatcher"), "If-Match": f'"{row.version}"'}, json={},
    )  # fmt: skip
    again = client.get("/api/v1/exchange/cases", params={"since": cursor}).json()["cases"]
    assert [c["number"] for c in again] == [number]
    assert [e["kind"] for e in again[0]["history"]] == ["reported", "registered"]
    assert anonymous.get("/api/v1/exchange/cases").status_code == 401
    # A reader of another street never sees the case.
    other_street = next(c for c in ("410199001", "410199002") if c != spot.street_code)
    create_user(
        session, settings, None,
        UserCreate(username="supervisor-elsewhere", display_name="别处的监督员",
                   password="Supervise@2026-long", roles=[Role.SUPERVISOR],
                   jurisdiction_codes=[other_street]),
    )  # fmt: skip
    seen = client.get("/api/v1/exchange/cases", headers=as_user("supervisor-elsewhere"))
    assert seen.status_code == 200
    assert number not in {c["number"] for c in seen.json()["cases"]}


def test_import_keeps_the_platform_number_and_never_doubles(
    client: TestClient, anonymous: TestClient, session: Session, spot: Spot,
    as_user: Callable[[str], dict[str, str]],
) -> None:  # fmt: skip
    item = {
        "platform_number": "JH2026111800123",
        "category_code": "roads.manhole",
        "description": "平台转来：井盖破损",
        "lon": spot.lon,
        "lat": spot.lat,
        "reported_at": "2026-11-18T09:00:00+08:00",
        "photo_urls": ["https://platform.example.gov.cn/p/123.jpg"],
    }
    bad = {**item, "platform_number": "JH-BAD-1", "national_code": "event:0000",
           "category_code": None}  # fmt: skip
    headers = as_user("demo-dispatcher")
    first = anonymous.post("/api/v1/exchange/cases", json={"cases": [item, bad]}, headers=headers)
    assert first.status_code == 200, first.text
    done, refused = first.json()["items"]
    assert done["status"] == 201
    assert refused["status"] == 422
    assert refused["problem"]["code"] == "unknown_category"
    again = anonymous.post("/api/v1/exchange/cases", json={"cases": [item]}, headers=headers)
    assert again.json()["items"][0] == {**done, "status": 200, "duplicate": False}
    links = session.scalars(
        select(PlatformCase).where(PlatformCase.platform_number == "JH2026111800123")
    ).all()
    assert len(links) == 1
    case = session.get(Case, links[0].case_id)
    assert case is not None
    assert case.source is CaseSource.PLATFORM
    exported = client.get("/api/v1/exchange/cases").json()["cases"]
    assert "JH2026111800123" in {c["platform_number"] for c in exported}
    chief = anonymous.post(
        "/api/v1/exchange/cases", json={"cases": [item]}, headers=as_user("demo-chief-3")
    )
    assert chief.status_code == 403
    assert anonymous.post("/api/v1/exchange/cases", json={"cases": [item]},
                          headers={"Authorization": ""}).status_code == 401  # fmt: skip


def test_an_import_is_checked_like_a_report_before_anything_is_filed(
    anonymous: TestClient, session: Session, spot: Spot,
    as_user: Callable[[str], dict[str, str]],
) -> None:  # fmt: skip
    """Found by the fuzz test: a category that is no code reached the report's own
    checks and answered 500. Now such a batch is refused whole, field by field, and
    nothing is filed; a point off the earth refuses only its own case."""
    item = {
        "platform_number": "JH2026111800999",
        "category_code": "roads.manhole",
        "description": "平台转来：井盖破损",
        "lon": spot.lon,
        "lat": spot.lat,
        "reported_at": "2026-11-18T09:00:00+08:00",
        "photo_urls": ["https://platform.example.gov.cn/p/999.jpg"],
    }
    headers = as_user("demo-dispatcher")
    before = session.scalar(select(func.count()).select_from(Case))
    answer = anonymous.post(
        "/api/v1/exchange/cases",
        json={"cases": [item, {**item, "platform_number": "JH-2", "category_code": "0"}]},
        headers=headers,
    )
    assert answer.status_code == 422, answer.text
    problem = answer.json()
    assert problem["code"] == "validation_failed"
    assert [e["loc"][-1] for e in problem["errors"]] == ["category_code"]
    assert session.scalar(select(func.count()).select_from(Case)) == before

    answer = anonymous.post(
        "/api/v1/exchange/cases",
        json={"cases": [{**item, "platform_number": "JH-3", "lat": 95.0}, item]},
        headers=headers,
    )
    off_earth, filed = answer.json()["items"]
    assert (off_earth["status"], off_earth["problem"]["code"]) == (422, "invalid_location")
    assert filed["status"] == 201
    numbers = session.scalars(select(PlatformCase.platform_number)).all()
    assert numbers == ["JH2026111800999"]
