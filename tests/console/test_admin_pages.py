"""Admins at the console: webhooks added and stopped, routing tables checked, uploaded,
tried on a point, activated and rolled back, a road chief's segments reassigned; each
POST carries the CSRF token, and each goes through the admin API's services."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.accounts.service import user_by_username
from app.routing.shipped import SHIPPED_RULE_SETS
from app.territory.models import RoadGrade
from tests.support import Headers
from tests.support.console import Browser
from tests.support.places import on_segment


def test_admin_adds_a_webhook_sees_its_secret_once_and_stops_it(
    browser: Callable[[], Browser], client: TestClient, as_user: Headers
) -> None:
    admin = browser()
    admin.sign_in("demo-admin")
    assert admin.get("/console/admin/webhooks").status_code == 200
    added = admin.post(
        "/console/admin/webhooks",
        {"name": "城市运行中心", "url": "https://hooks.roadchief.invalid/in",
         "event_type": ["case.overdue", "whistle.blown"]},
    )  # fmt: skip
    assert added.status_code == 200, added.text
    secret = added.text.split('id="webhook-secret">')[1].split("<")[0]
    assert secret.startswith("whsec_")
    [hook] = client.get("/api/v1/admin/webhooks", headers=as_user("demo-admin")).json()
    assert (hook["name"], hook["event_types"], hook["active"]) == (
        "城市运行中心", ["case.overdue", "whistle.blown"], True,
    )  # fmt: skip
    assert secret not in admin.get("/console/admin/webhooks").text  # shown once

    inside = admin.post("/console/admin/webhooks", {"name": "x", "url": "http://127.0.0.1:1/"})
    assert inside.status_code == 422
    assert "内部或保留地址" in inside.text
    unknown = admin.post(
        "/console/admin/webhooks",
        {"name": "x", "url": "https://a.roadchief.invalid/", "event_type": "case.nothing"},
    )
    assert unknown.status_code == 422
    assert len(client.get("/api/v1/admin/webhooks", headers=as_user("demo-admin")).json()) == 1

    no_token = admin.client.post(f"/console/admin/webhooks/{hook['id']}/remove", data={})
    assert no_token.status_code == 403
    staff = browser()
    staff.sign_in("demo-staff")
    assert staff.get("/console/admin/webhooks").status_code == 403
    assert staff.post(f"/console/admin/webhooks/{hook['id']}/remove").status_code == 403
    removed = admin.post(f"/console/admin/webhooks/{hook['id']}/remove")
    assert removed.headers["location"] == "/console/admin/webhooks?flash=done"
    [hook] = client.get("/api/v1/admin/webhooks", headers=as_user("demo-admin")).json()
    assert hook["active"] is False
    assert browser().get("/console/admin/webhooks").status_code == 303


def versions(client: TestClient, as_user: Headers) -> dict[int, str]:
    listed = client.get("/api/v1/routing/rule-sets", headers=as_user("demo-admin")).json()
    return {r["version"]: r["status"] for r in listed}


def test_admin_checks_uploads_tries_activates_and_rolls_back_routing_tables(
    browser: Callable[[], Browser], client: TestClient, as_user: Headers, session: Session
) -> None:
    admin = browser()
    admin.sign_in("demo-admin")
    page = admin.get("/console/admin/routing")
    assert page.status_code == 200
    assert 'id="v1"' in page.text
    assert 'id="activate-2"' in page.text
    before = versions(client, as_user)
    assert before == {1: "active", 2: "draft"}

    shipped = Path(SHIPPED_RULE_SETS[1]).read_bytes()
    files = {"document": ("dengfeng.yaml", shipped, "application/yaml")}
    checked = admin.post("/console/admin/routing/upload", {"mode": "validate"}, files=files)
    assert checked.status_code == 200, checked.text
    assert "校验通过" in checked.text
    assert versions(client, as_user) == before  # checked only

    broken = shipped.replace(b"health", b"no-such-unit")
    bad_files = {"document": ("bad.yaml", broken, "application/yaml")}
    refused = admin.post("/console/admin/routing/upload", {"mode": "upload"}, files=bad_files)
    assert refused.status_code == 422
    assert 'id="rule-errors"' in refused.text
    assert versions(client, as_user) == before  # refused whole
    garbage = {"document": ("x.yaml", b"rules: [unclosed", "application/yaml")}
    assert admin.post("/console/admin/routing/upload", {}, files=garbage).status_code == 422

    stored = admin.post("/console/admin/routing/upload", {"mode": "upload"}, files=files)
    assert stored.headers["location"] == "/console/admin/routing?stored=3&flash=done"
    assert versions(client, as_user) == {**before, 3: "draft"}

    spot = on_segment(session, grade=RoadGrade.SECONDARY)
    point = {"category_code": "clean.dead_corner", "lon": spot.lon, "lat": spot.lat}
    tried = admin.post("/console/admin/routing/dry-run", {**point, "version": 2})
    assert tried.status_code == 200, tried.text
    result = tried.text.split('id="dry-run-result"')[1]
    assert "（health）" in result.split("</p>")[1]
    api = client.post(
        "/api/v1/routing/dry-run", json={**point, "rule_set_version": 2},
        headers=as_user("demo-admin"),
    ).json()  # fmt: skip
    assert all(f"（{u['code']}）" in result for u in api["lead_units"])
    current = admin.post("/console/admin/routing/dry-run", point)
    assert "（urban-management）" in current.text.split('id="dry-run-result"')[1]
    nowhere = admin.post("/console/admin/routing/dry-run", {**point, "category_code": "x.y"})
    assert nowhere.status_code in (404, 422)

    activated = admin.post("/console/admin/routing/3/activate", {"reason": "改用登封分工"})
    assert activated.headers["location"] == "/console/admin/routing?flash=done"
    assert versions(client, as_user)[3] == "active"
    again = admin.post("/console/admin/routing/3/activate", {})
    assert again.status_code == 409
    rolled = admin.post("/console/admin/routing/rollback", {"reason": "不适用"})
    assert rolled.status_code == 303
    assert versions(client, as_user) == {1: "active", 2: "draft", 3: "retired"}

    staff = browser()
    staff.sign_in("demo-staff")
    assert staff.get("/console/admin/routing").status_code == 403
    assert staff.post("/console/admin/routing/2/activate", {}).status_code == 403
    assert staff.post("/console/admin/routing/rollback", {}).status_code == 403
    assert staff.post("/console/admin/routing/upload", {}, files=files).status_code == 403
    assert versions(client, as_user)[1] == "active"
    assert browser().get("/console/admin/routing").status_code == 303


def test_admin_reassigns_a_chiefs_segments(
    browser: Callable[[], Browser], client: TestClient, as_user: Headers, session: Session
) -> None:
    chief = user_by_username(session, "demo-chief-3")
    assert chief is not None
    url = f"/console/admin/users/{chief.id}/segments"
    api = f"/api/v1/admin/users/{chief.id}/segments"
    owned = [s["code"] for s in client.get(api, headers=as_user("demo-admin")).json()]
    assert owned

    admin = browser()
    admin.sign_in("demo-admin")
    listing = admin.get("/console/admin/users?role=road_chief")
    assert f'href="{url}"' in listing.text
    page = admin.get(url)
    assert all(f'id="segment-{code}"' in page.text for code in owned)

    kept = owned[:-1]
    saved = admin.post(url, {"segment_codes": "\n".join(kept)})
    assert saved.headers["location"] == f"{url}?flash=done"
    assert [s["code"] for s in client.get(api, headers=as_user("demo-admin")).json()] == kept

    wrong = admin.post(url, {"segment_codes": "\n".join([*kept, "RS-NOPE-99"])})
    assert wrong.status_code == 422
    assert "路段 RS-NOPE-99 不存在" in wrong.text
    assert [s["code"] for s in client.get(api, headers=as_user("demo-admin")).json()] == kept

    staff = browser()
    staff.sign_in("demo-staff")
    assert staff.post(url, {"segment_codes": ""}).status_code == 403
    assert staff.get(url).status_code == 403
    assert [s["code"] for s in client.get(api, headers=as_user("demo-admin")).json()] == kept
    assert admin.get("/console/admin/users/999999/segments").status_code == 404
    assert browser().get(url).status_code == 303
