"""Open311 GeoReport v2 under /open311/v2: both formats, the intake behind it, the errors."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import datetime
from typing import Any

import jsonschema_rs
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.cases.models import Case, CaseEvent, CaseEventKind
from app.open311.models import Open311Request
from app.reports.models import Report
from app.territory.models import Jurisdiction, JurisdictionLevel
from tests.support.open311 import BASE, NOW, PHOTO, assert_valid, post_request
from tests.support.places import Spot, on_segment

pytestmark = pytest.mark.time_machine(NOW)
Schemas = dict[str, jsonschema_rs.Validator]


def xml_of(response: Any, root: str) -> ET.Element:
    assert response.headers["content-type"] == "text/xml; charset=utf-8"
    assert response.content.startswith(b"<?xml version='1.0' encoding='utf-8'?>")
    element = ET.fromstring(response.content)
    assert element.tag == root
    return element


def test_discovery_in_both_formats(anonymous: TestClient) -> None:
    body = anonymous.get(f"{BASE}/discovery.json").json()
    endpoint = body["endpoints"][0]
    assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
    assert endpoint["url"].endswith("/open311/v2")
    assert endpoint["formats"] == ["text/xml", "application/json"]
    root = xml_of(anonymous.get(f"{BASE}/discovery.xml"), "discovery")
    formats = root.findall("./endpoints/endpoint/formats/format")
    assert [f.text for f in formats] == ["text/xml", "application/json"]
    assert root.findtext("contact")


def test_services_are_the_taxonomy_leaves(
    anonymous: TestClient, georeport_schemas: Schemas
) -> None:
    response = anonymous.get(f"{BASE}/services.json")
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    services = response.json()
    assert_valid(georeport_schemas["services"], services)
    by_code = {s["service_code"]: s for s in services}
    assert "roads" not in by_code  # groups are not services: they are `group`
    manhole = by_code["roads.manhole"]
    assert manhole["service_name"] == "窨井盖缺失、破损、移位"
    assert manhole["group"] == "道路与市政设施"
    assert manhole["metadata"] is True
    assert manhole["type"] == "realtime"
    root = xml_of(anonymous.get(f"{BASE}/services.xml"), "services")
    codes = [s.findtext("service_code") for s in root.findall("service")]
    assert codes == [s["service_code"] for s in services]
    # Every field is an element, empty when it has no value.
    assert [c.tag for c in root.find("service")] == [  # type: ignore[union-attr]
        "service_code", "service_name", "description", "metadata", "type", "keywords", "group",
    ]  # fmt: skip


def test_service_definition_carries_what_the_category_needs(
    anonymous: TestClient, georeport_schemas: Schemas
) -> None:
    body = anonymous.get(f"{BASE}/services/roads.manhole.json").json()
    assert_valid(georeport_schemas["service-definition"], body)
    attributes = {a["code"]: a for a in body["attributes"]}
    assert attributes["media_url"]["required"] is True  # photo required
    assert attributes["asset_code"]["required"] is False  # the manhole's owner leads
    assert {v["key"] for v in attributes["urgency"]["values"]} == {"critical", "urgent", "normal"}
    assert "特急" in attributes["time_limit"]["description"]  # manholes default to critical
    root = xml_of(anonymous.get(f"{BASE}/services/roads.manhole.xml"), "service_definition")
    assert root.findtext("service_code") == "roads.manhole"
    values = root.findall("./attributes/attribute[code='urgency']/values/value/key")
    assert [v.text for v in values] == ["critical", "urgent", "normal"]
    # A category without a photo rule has no required attribute.
    unclassified = anonymous.get(f"{BASE}/services/other.unclassified.json").json()
    assert not [a for a in unclassified["attributes"] if a["required"]]


def test_a_request_becomes_a_case_through_the_intake(
    anonymous: TestClient,
    session: Session,
    spot: Spot,
    make_key: Callable[..., str],
    georeport_schemas: Schemas,
) -> None:
    key = make_key()
    response = post_request(anonymous, key, spot, email="citizen@example.org")
    assert response.status_code == 200, response.text
    [receipt] = response.json()
    number = receipt["service_request_id"]
    assert receipt["token"]
    assert "牵头处置" in receipt["service_notice"]
    case = session.scalar(select(Case).where(Case.number == number))
    assert case is not None
    assert case.routing_decision_id is not None
    report = session.scalar(select(Report).where(Report.case_id == case.id))
    assert report is not None
    assert report.reporter_user_id is None
    assert report.media_urls == [PHOTO]
    stored = session.scalar(select(Open311Request).where(Open311Request.case_id == case.id))
    assert stored is not None
    assert stored.client_fields == {"email": "citizen@example.org"}

    body = anonymous.get(f"{BASE}/requests/{number}.json").json()
    assert_valid(georeport_schemas["requests"], body)
    [request] = body
    assert request["status"] == "open"
    assert request["status_notes"] == "待立案"
    assert request["service_code"] == "roads.manhole"
    assert request["agency_responsible"]  # the lead unit the routing chose
    assert case.handle_due_at is not None
    assert datetime.fromisoformat(request["expected_datetime"]) == case.handle_due_at
    assert request["expected_datetime"].endswith("+08:00")
    assert request["media_url"] == PHOTO
    root = xml_of(anonymous.get(f"{BASE}/requests/{number}.xml"), "service_requests")
    element = root.find("request")
    assert element is not None
    assert element.findtext("service_request_id") == number
    assert element.find("zipcode") is not None
    assert element.findtext("zipcode") == ""

    for fmt in ("json", "xml"):
        token = anonymous.get(f"{BASE}/tokens/{receipt['token']}.{fmt}")
        assert token.status_code == 200
    assert anonymous.get(f"{BASE}/tokens/{receipt['token']}.json").json() == [
        {"service_request_id": number, "token": receipt["token"]}
    ]
    xml_receipt = xml_of(post_request(anonymous, key, spot, fmt="xml"), "service_requests")
    assert xml_receipt.findtext("request/service_request_id") == number  # joined: duplicate
    assert xml_receipt.find("request/account_id") is not None


def test_same_place_joins_and_a_retry_is_not_doubled(
    anonymous: TestClient, session: Session, spot: Spot, make_key: Callable[..., str]
) -> None:
    key = make_key()
    headers = {"Idempotency-Key": "open311-retry-0001"}
    form = {"api_key": key, "service_code": "roads.manhole", "lat": str(spot.lat),
            "long": str(spot.lon), "media_url": PHOTO}  # fmt: skip
    first = anonymous.post(f"{BASE}/requests.json", data=form, headers=headers).json()
    again = anonymous.post(f"{BASE}/requests.json", data=form, headers=headers).json()
    assert again == first
    case = session.scalar(select(Case).where(Case.number == first[0]["service_request_id"]))
    assert case is not None
    assert case.report_count == 1
    near = post_request(anonymous, key, spot).json()  # another citizen, same manhole
    assert near[0]["service_request_id"] == first[0]["service_request_id"]
    assert "重复上报" in near[0]["service_notice"]
    session.refresh(case)
    assert case.report_count == 2


def test_reading_requests_with_every_filter(
    anonymous: TestClient,
    session: Session,
    spot: Spot,
    make_key: Callable[..., str],
    georeport_schemas: Schemas,
) -> None:
    key = make_key()
    manhole = post_request(anonymous, key, spot).json()[0]["service_request_id"]
    other = post_request(
        anonymous, key, spot, service_code="other.unclassified", media_url=None
    ).json()[0]["service_request_id"]
    listed = anonymous.get(f"{BASE}/requests.json").json()
    assert_valid(georeport_schemas["requests"], listed)
    assert {manhole, other} <= {r["service_request_id"] for r in listed}
    # service_request_id overrides every other filter.
    only = anonymous.get(
        f"{BASE}/requests.json",
        params={"service_request_id": f"{manhole},{other}", "status": "closed",
                "service_code": "clean.flyers"},
    ).json()  # fmt: skip
    assert {r["service_request_id"] for r in only} == {manhole, other}
    by_code = anonymous.get(
        f"{BASE}/requests.json", params={"service_code": "roads.manhole,clean.flyers"}
    ).json()
    assert manhole in {r["service_request_id"] for r in by_code}
    assert other not in {r["service_request_id"] for r in by_code}
    closed = anonymous.get(f"{BASE}/requests.json", params={"status": "closed"}).json()
    assert manhole not in {r["service_request_id"] for r in closed}
    both = anonymous.get(f"{BASE}/requests.json", params={"status": "open,closed"}).json()
    assert manhole in {r["service_request_id"] for r in both}
    # The window: within 90 days; today's cases are outside last month's.
    old = anonymous.get(
        f"{BASE}/requests.json",
        params={"start_date": "2026-09-01T00:00:00+08:00", "end_date": "2026-10-01T00:00:00Z"},
    ).json()
    assert manhole not in {r["service_request_id"] for r in old}
    # An empty optional parameter is an absent one.
    empty = {"service_code": "", "status": "", "start_date": "", "end_date": "",
             "service_request_id": "", "jurisdiction_id": "", "api_key": ""}  # fmt: skip
    assert anonymous.get(f"{BASE}/requests.json", params=empty).json() == listed
    assert post_request(anonymous, key, spot, email="", phone="", address_id="").status_code == 200
    root = xml_of(anonymous.get(f"{BASE}/requests.xml"), "service_requests")
    assert len(root.findall("request")) == len(listed)


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_error_matrix(
    anonymous: TestClient, spot: Spot, make_key: Callable[..., str], fmt: str
) -> None:
    key, reader = make_key(), make_key("read")

    def error(response: Any) -> tuple[int, str]:
        if fmt == "json":
            [body] = response.json()
            assert set(body) == {"code", "description"}
            assert body["code"] == response.status_code
            return response.status_code, body["description"]
        root = xml_of(response, "errors")
        assert root.findtext("error/code") == str(response.status_code)
        return response.status_code, root.findtext("error/description") or ""

    get = anonymous.get
    cases: list[tuple[Any, int, str]] = [
        (post_request(anonymous, "", spot, fmt), 403, "api_key was not provided"),
        (post_request(anonymous, "rck_wrong_0123456789abcdef", spot, fmt), 403, "invalid"),
        (post_request(anonymous, reader, spot, fmt), 403, "may read but not submit"),
        (
            post_request(anonymous, key, spot, fmt, service_code="roads.nothing"),
            404,
            "service_code",
        ),
        (post_request(anonymous, key, spot, fmt, service_code=""), 400, "service_code was not"),
        (post_request(anonymous, key, spot, fmt, jurisdiction_id="999999"), 404, "jurisdiction_id"),
        (post_request(anonymous, key, spot, fmt, **{"attribute[urgency]": "soon"}), 400, "one of"),
        (post_request(anonymous, key, spot, fmt, media_url=None), 400, "required attribute"),
        (post_request(anonymous, key, spot, fmt, lat=None, long=None), 400, "location"),
        (get(f"{BASE}/services/roads.nothing.{fmt}"), 404, "service_code not found"),
        (get(f"{BASE}/services.{fmt}", params={"jurisdiction_id": "999999"}), 404, "jurisdiction"),
        (get(f"{BASE}/requests/19990101000001.{fmt}"), 404, "service_request_id not found"),
        (get(f"{BASE}/tokens/0123456789abcdef.{fmt}"), 404, "token not found"),
        (get(f"{BASE}/requests.{fmt}", params={"status": "pending"}), 400, "open or closed"),
        (
            get(
                f"{BASE}/requests.{fmt}",
                params={"start_date": "2026-01-01T00:00:00Z", "end_date": "2026-06-01T00:00:00Z"},
            ),
            400,
            "90 days",
        ),
        (get(f"{BASE}/requests.{fmt}", params={"api_key": "rck_wrong"}), 403, "api_key"),
        (get(f"{BASE}/nowhere.{fmt}"), 404, "no such Open311 resource"),
    ]
    for response, status, words in cases:
        got_status, description = error(response)
        assert (got_status, words in description) == (status, True), (status, description)


def test_refusals_change_nothing(
    anonymous: TestClient, session: Session, spot: Spot, make_key: Callable[..., str]
) -> None:
    key = make_key()
    before = session.scalar(select(func.count()).select_from(Report))
    assert post_request(anonymous, key, spot, media_url=None).status_code == 400
    assert post_request(anonymous, key, spot, lat="0", long="0").status_code == 400
    assert session.scalar(select(func.count()).select_from(Report)) == before


def test_problem_details_stay_outside_open311(client: TestClient) -> None:
    response = client.get("/api/v1/nowhere")
    assert response.headers["content-type"].startswith("application/problem+json")


def test_a_key_reports_and_reads_only_in_its_jurisdictions(
    anonymous: TestClient, session: Session, spot: Spot, make_key: Callable[..., str]
) -> None:
    streets = session.scalars(
        select(Jurisdiction.code).where(Jurisdiction.level == JurisdictionLevel.STREET)
    ).all()
    other_street = next(code for code in streets if code != spot.street_code)
    elsewhere = on_segment(session, street=other_street)
    mine = make_key(codes=[spot.street_code])
    theirs = make_key(codes=[other_street])
    assert post_request(anonymous, theirs, spot).status_code == 403
    number = post_request(anonymous, mine, spot).json()[0]["service_request_id"]
    their_number = post_request(anonymous, theirs, elsewhere).json()[0]["service_request_id"]
    seen = anonymous.get(f"{BASE}/requests.json", params={"api_key": theirs}).json()
    assert their_number in {r["service_request_id"] for r in seen}
    assert number not in {r["service_request_id"] for r in seen}
    hidden = anonymous.get(f"{BASE}/requests/{number}.json", params={"api_key": theirs})
    assert hidden.status_code == 404
    # Keys still read nothing but Open311: the REST API stays read-only for them.
    rest = anonymous.post(
        "/api/v1/reports", headers={"X-API-Key": mine},
        json={"category_code": "other.unclassified", "description": "x", "lon": spot.lon,
              "lat": spot.lat, "device_time": NOW},
    )  # fmt: skip
    assert rest.status_code == 403


def test_requests_are_throttled_per_key(
    anonymous: TestClient, spot: Spot, make_key: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.open311.settings import open311_settings

    monkeypatch.setenv("ROADCHIEF_OPEN311_RATE_PER_MINUTE", "2")
    open311_settings.cache_clear()
    try:
        key = make_key()
        for _ in range(2):
            assert post_request(anonymous, key, spot).status_code == 200
        third = post_request(anonymous, key, spot)
        assert third.status_code == 429
        assert third.headers["Retry-After"] == "60"
        assert post_request(anonymous, make_key(), spot).status_code == 200  # per key
    finally:
        open311_settings.cache_clear()


def test_reads_may_require_a_key(
    anonymous: TestClient, make_key: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.open311.settings import open311_settings

    monkeypatch.setenv("ROADCHIEF_OPEN311_READ_REQUIRES_KEY", "true")
    open311_settings.cache_clear()
    try:
        assert anonymous.get(f"{BASE}/requests.json").status_code == 403
        assert anonymous.get(f"{BASE}/servicerequestupdates.json").status_code == 403
        reader = make_key("read")
        assert anonymous.get(f"{BASE}/requests.json", params={"api_key": reader}).status_code == 200
    finally:
        open311_settings.cache_clear()


def test_updates_follow_the_workflow(
    anonymous: TestClient,
    session: Session,
    spot: Spot,
    make_key: Callable[..., str],
    as_user: Callable[[str], dict[str, str]],
) -> None:
    key = make_key()
    number = post_request(anonymous, key, spot).json()[0]["service_request_id"]
    case = session.scalar(select(Case).where(Case.number == number))
    assert case is not None
    registered = anonymous.post(
        f"/api/v1/cases/{number}/actions/register",
        headers={**as_user("demo-dispatcher"), "If-Match": f'"{case.version}"'}, json={},
    )  # fmt: skip
    assert registered.status_code == 200, registered.text
    updates = anonymous.get(f"{BASE}/servicerequestupdates.json").json()
    mine = [u for u in updates if u["service_request_id"] == number]
    assert [u["status"] for u in mine] == ["open", "investigating"]
    assert set(mine[0]) == {"update_id", "service_request_id", "status", "updated_datetime",
                            "description", "media_url"}  # fmt: skip
    root = xml_of(anonymous.get(f"{BASE}/servicerequestupdates.xml"), "service_request_updates")
    assert root.find("request_update/update_id") is not None

    def post(status: str, update_id: str) -> Any:
        return anonymous.post(
            f"{BASE}/servicerequestupdates.json",
            data={"api_key": key, "service_request_id": number, "update_id": update_id,
                  "status": status, "description": "市民补充：井口已用锥桶围挡",
                  "updated_datetime": "2026-11-18T09:55:00+08:00"},
        )  # fmt: skip

    fits = post("INVESTIGATING", "fms-1")
    assert fits.status_code == 200, fits.text
    again = post("INVESTIGATING", "fms-1")
    assert again.json() == fits.json()  # resent: answered, not recorded twice
    assert post("open", "fms-2").status_code == 200  # the basic status of an open case
    refused = post("fixed", "fms-3")  # would close it: a step for the units, with evidence
    assert refused.status_code == 400
    assert "does not fit" in refused.json()[0]["description"]
    assert post("resolved", "fms-4").status_code == 400  # not an extended status
    notes = session.scalars(
        select(CaseEvent.note).where(
            CaseEvent.case_id == case.id, CaseEvent.kind == CaseEventKind.EXTERNAL_UPDATE
        )
    ).all()
    assert notes == ["市民补充：井口已用锥桶围挡"] * 2
    reader = make_key("read")
    forbidden = anonymous.post(
        f"{BASE}/servicerequestupdates.json",
        data={"api_key": reader, "service_request_id": number, "update_id": "r-1",
              "status": "open"},
    )  # fmt: skip
    assert forbidden.status_code == 403


def test_a_raw_utf8_form_is_read_as_utf8(
    anonymous: TestClient, spot: Spot, make_key: Callable[..., str]
) -> None:
    """`curl -d description=井盖缺失` sends the bytes unescaped; the spec says UTF-8."""
    body = (
        f"api_key={make_key()}&service_code=other.unclassified&lat={spot.lat}&long={spot.lon}"
        "&description=井盖缺失&attribute[urgency]=urgent"
    ).encode()
    response = anonymous.post(
        f"{BASE}/requests.json",
        content=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200, response.text
    number = response.json()[0]["service_request_id"]
    [request] = anonymous.get(f"{BASE}/requests/{number}.json").json()
    assert request["description"] == "井盖缺失"


def test_another_streets_key_cannot_touch_a_case(
    anonymous: TestClient, session: Session, spot: Spot, make_key: Callable[..., str]
) -> None:
    streets = session.scalars(
        select(Jurisdiction.code).where(Jurisdiction.level == JurisdictionLevel.STREET)
    ).all()
    other_street = next(code for code in streets if code != spot.street_code)
    number = post_request(anonymous, make_key(), spot).json()[0]["service_request_id"]
    theirs = make_key(codes=[other_street])
    update = anonymous.post(
        f"{BASE}/servicerequestupdates.xml",
        data={"api_key": theirs, "service_request_id": number, "update_id": "x-1",
              "status": "open"},
    )  # fmt: skip
    assert update.status_code == 404
    updates = anonymous.get(f"{BASE}/servicerequestupdates.json", params={"api_key": theirs})
    assert number not in {u["service_request_id"] for u in updates.json()}
