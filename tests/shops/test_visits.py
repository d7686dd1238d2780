"""A chief stops at a street-front shop and checks its frontage pledge (门前四包/五包): what
passes, what fails (photographed), and a failed item reported as a case in the same step."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.core.database import utcnow
from app.settings import Settings
from app.shops import pledges
from app.shops.models import ShopVisit, ShopVisitItem, ShopVisitPhoto
from app.territory.models import Pledge, Shop
from tests.support import Headers
from tests.support.reports import new_key, stored, upload
from tests.support.shops import ITEMS_OF, failing, shop_of, visit_body


def visits_stored(session: Session, settings: Settings) -> dict[str, Any]:
    counts = stored(session, settings)
    for model in (ShopVisit, ShopVisitItem, ShopVisitPhoto):
        counts[model.__tablename__] = session.scalar(select(func.count()).select_from(model))
    return counts


def test_a_failed_item_is_photographed_and_reported_as_a_case_in_one_step(
    client: TestClient, as_user: Headers, session: Session, good_jpeg: Callable[..., bytes]
) -> None:
    chief = as_user("demo-chief-2")
    shop = shop_of(session, "demo-chief-2")
    photo = upload(client, good_jpeg(), headers=chief)
    body = failing(visit_body(shop, note="店主配合整改"), "order", note="店外摆放货架",
                   photo_ids=[photo["id"]], open_case=True)  # fmt: skip
    key = {**chief, "Idempotency-Key": new_key()}

    made = client.post(f"/api/v1/shops/{shop.code}/visits", json=body, headers=key)
    assert made.status_code == 201, made.text
    visit = made.json()
    assert (visit["shop_code"], visit["username"], visit["pledge"]) == (
        shop.code, "demo-chief-2", "four",
    )  # fmt: skip
    assert 10 < visit["distance_m"] < 14
    assert (visit["passed"], visit["failed_count"]) == (False, 1)
    order, *others = visit["items"]
    assert (order["item_code"], order["name"], order["passed"]) == ("order", "包秩序", False)
    assert [p["id"] for p in order["photos"]] == [photo["id"]]
    assert order["case_number"]
    assert [o["item_code"] for o in others] == ["cleanliness", "greenery", "facade"]
    assert all(o["passed"] and o["case_number"] is None for o in others)

    case = client.get(f"/api/v1/cases/{order['case_number']}", headers=chief).json()
    assert case["category_code"] == "order.shop_overflow"
    assert shop.name in case["description"]
    assert "店外摆放货架" in case["description"]
    reported = case["history"][0]
    assert reported["kind"] == "reported"
    assert reported["photo_ids"] == [photo["id"]]

    retried = client.post(f"/api/v1/shops/{shop.code}/visits", json=body, headers=key)
    assert (retried.status_code, retried.json()["id"]) == (201, visit["id"])
    assert session.scalar(select(func.count()).select_from(ShopVisit)) == 1

    history = client.get(f"/api/v1/shops/{shop.code}/visits", headers=as_user("demo-assessor"))
    assert [v["id"] for v in history.json()["items"]] == [visit["id"]]
    one = client.get(f"/api/v1/shop-visits/{visit['id']}", headers=as_user("demo-dispatcher"))
    assert one.json() == visit


def test_a_five_item_pledge_is_checked_on_five_items(
    client: TestClient, as_user: Headers, session: Session
) -> None:
    shop = shop_of(session, "demo-chief-2", Pledge.FIVE)
    body = visit_body(shop)
    made = client.post(f"/api/v1/shops/{shop.code}/visits", json=body,
                       headers=as_user("demo-chief-2"))  # fmt: skip
    assert made.status_code == 201, made.text
    assert [i["item_code"] for i in made.json()["items"]] == ITEMS_OF[Pledge.FIVE]
    assert made.json()["passed"] is True
    body["items"] = body["items"][:4]
    short = client.post(f"/api/v1/shops/{shop.code}/visits", json=body,
                        headers=as_user("demo-chief-2"))  # fmt: skip
    assert (short.status_code, short.json()["code"]) == (422, "pledge_items_incomplete")
    assert short.json()["missing"] == ["reporting"]


def bad_visits(shop: Shop, photo_id: int, others_photo_id: int) -> list[tuple[Any, str]]:
    """(body, the problem code) pairs: each refused, none leaves a trace."""
    now = utcnow()
    return [
        (visit_body(shop, metres_east=400), "too_far_from_shop"),
        (visit_body(shop, visited_at=(now - timedelta(hours=30)).isoformat()), "visit_too_old"),
        (visit_body(shop, visited_at=(now + timedelta(hours=2)).isoformat()),
         "device_time_in_future"),
        (visit_body(shop, accuracy_m=900), "location_too_inaccurate"),
        (visit_body(shop, lon=10.0, lat=10.0), "outside_service_area"),
        ({**visit_body(shop), "items": [{"item_code": "order", "passed": True}]},
         "pledge_items_incomplete"),
        ({**visit_body(shop), "items": [*visit_body(shop)["items"],
                                        {"item_code": "order", "passed": True}]},
         "pledge_items_incomplete"),
        ({**visit_body(shop), "items": [*visit_body(shop)["items"][:3],
                                        {"item_code": "reporting", "passed": True}]},
         "unknown_pledge_item"),
        ({**visit_body(shop), "items": [*visit_body(shop)["items"][:3],
                                        {"item_code": "no-such-item", "passed": True}]},
         "unknown_pledge_item"),
        (failing(visit_body(shop), "facade", open_case=True), "fail_photo_required"),
        ({**visit_body(shop), "items": [{**i, "open_case": True}
                                        for i in visit_body(shop)["items"]]},
         "open_case_needs_fail"),
        (failing(visit_body(shop), "facade", photo_ids=[others_photo_id]), "unknown_photo"),
        (failing(visit_body(shop, patrol_id=999_999), "facade", photo_ids=[photo_id]),
         "patrol_mismatch"),
    ]  # fmt: skip


def test_bad_visits_are_refused_with_their_reason_and_store_nothing(
    client: TestClient, as_user: Headers, session: Session, settings: Settings,
    good_jpeg: Callable[..., bytes],
) -> None:  # fmt: skip
    chief = as_user("demo-chief-2")
    shop = shop_of(session, "demo-chief-2")
    mine = upload(client, good_jpeg(), headers=chief)["id"]
    theirs = upload(client, good_jpeg(), headers=as_user("demo-chief-1"))["id"]
    before = visits_stored(session, settings)
    for body, code in bad_visits(shop, mine, theirs):
        answer = client.post(f"/api/v1/shops/{shop.code}/visits", json=body,
                             headers={**chief, "Idempotency-Key": new_key()})  # fmt: skip
        assert (answer.status_code, answer.json()["code"]) == (422, code), body
        assert answer.json()["detail"]
        assert visits_stored(session, settings) == before, code
    unknown = client.post("/api/v1/shops/SH-NOPE/visits", json=visit_body(shop), headers=chief)
    assert (unknown.status_code, unknown.json()["code"]) == (404, "not_found")
    # Department staff handle cases; they do not visit shops.
    staff = client.post(f"/api/v1/shops/{shop.code}/visits", json=visit_body(shop),
                        headers=as_user("demo-staff"))  # fmt: skip
    assert (staff.status_code, staff.json()["code"]) == (403, "forbidden")
    assert visits_stored(session, settings) == before


def test_a_report_that_fails_leaves_no_visit_behind(
    client: TestClient, as_user: Headers, session: Session, settings: Settings,
    good_jpeg: Callable[..., bytes], monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """The city dropped the category a pledge item reports to: the report is refused, and
    with it the whole visit (the visit and its items were already flushed)."""
    dropped = pledges.PledgeItem("order", "包秩序", "…", "order.no_longer_there",
                                 frozenset({Pledge.FOUR, Pledge.FIVE}))  # fmt: skip
    items = tuple(dropped if i.code == "order" else i for i in pledges.PLEDGE_ITEMS)
    monkeypatch.setattr(pledges, "PLEDGE_ITEMS", items)
    monkeypatch.setitem(pledges.BY_CODE, "order", dropped)
    chief = as_user("demo-chief-2")
    shop = shop_of(session, "demo-chief-2")
    photo = upload(client, good_jpeg(), headers=chief)["id"]
    before = visits_stored(session, settings)
    body = failing(visit_body(shop), "order", photo_ids=[photo], open_case=True)
    answer = client.post(f"/api/v1/shops/{shop.code}/visits", json=body, headers=chief)
    assert answer.status_code == 422, answer.text
    assert visits_stored(session, settings) == before


def test_the_pledge_items_are_published(client: TestClient, as_user: Headers) -> None:
    items = client.get("/api/v1/shops/pledge-items", headers=as_user("demo-chief-2")).json()
    assert [i["code"] for i in items] == ITEMS_OF[Pledge.FIVE]
    assert items[-1]["pledges"] == ["five"]
    assert all(i["category_code"] for i in items)
