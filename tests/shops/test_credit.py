"""A shop's credit score moves with what the chiefs find and how the assessors rate it;
below 60 it is on the blacklist (黑榜), and every move says why."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.support import Headers, Jpeg
from tests.support.reports import new_key, upload
from tests.support.shops import failing, shop_of, visit_body


def test_visits_and_ratings_move_the_credit_down_to_the_blacklist(
    client: TestClient, as_user: Headers, session: Session, good_jpeg: Jpeg
) -> None:
    chief, assessor = as_user("demo-chief-2"), as_user("demo-assessor")
    shop = shop_of(session, "demo-chief-2")
    photo = upload(client, good_jpeg(), headers=chief)["id"]
    url = f"/api/v1/shops/{shop.code}"

    body = failing(failing(visit_body(shop), "order", photo_ids=[photo]), "facade",
                   photo_ids=[photo])  # fmt: skip
    assert client.post(f"{url}/visits", json=body, headers=chief).status_code == 201
    fine = client.post(f"{url}/visits", json=visit_body(shop), headers=chief)
    assert fine.status_code == 201
    again = client.post(f"{url}/visits", json=visit_body(shop), headers=chief)
    assert again.status_code == 201  # a second clean visit this week moves nothing
    credit = client.get(f"{url}/credit", headers=assessor).json()
    assert credit["credit"] == 97.0  # 100 - 2 × 2 + 1
    assert [(h["reason"], h["delta"], h["balance"]) for h in credit["history"]] == [
        ("visit_passed", 1.0, 97.0), ("visit_failed_item", -4.0, 96.0),
    ]  # fmt: skip
    assert credit["history"][0]["visit_id"] == fine.json()["id"]

    key = {**assessor, "Idempotency-Key": new_key()}
    rated = client.post(f"{url}/ratings", json={"flag": "black", "stars": 1, "note": "屡教不改"},
                        headers=key)  # fmt: skip
    assert rated.status_code == 201, rated.text
    assert (rated.json()["credit"], rated.json()["flag"], rated.json()["stars"]) == (
        87.0,
        "black",
        1,
    )
    again = client.post(f"{url}/ratings", json={"flag": "black", "stars": 1, "note": "屡教不改"},
                        headers=key)  # fmt: skip
    assert again.json()["credit"] == 87.0  # a retry is not a second black flag
    for _ in range(3):
        client.post(f"{url}/ratings", json={"flag": "black"}, headers=assessor)
    low = client.get(f"{url}/credit", headers=assessor).json()
    assert (low["credit"], low["blacklisted"]) == (57.0, True)
    listed = client.get("/api/v1/shops/blacklist", headers=as_user("demo-dispatcher")).json()
    assert [r["shop_code"] for r in listed] == [shop.code]

    red = client.post(f"{url}/ratings", json={"flag": "red", "stars": 4}, headers=assessor).json()
    assert (red["credit"], red["blacklisted"], red["stars"]) == (62.0, False, 4)
    stars = client.post(f"{url}/ratings", json={"stars": 5}, headers=assessor).json()
    assert (stars["flag"], stars["stars"], stars["credit"]) == ("red", 5, 62.0)
    assert client.get("/api/v1/shops/blacklist", headers=assessor).json() == []


def test_ratings_need_something_and_only_assessors_rate(
    client: TestClient, as_user: Headers, session: Session
) -> None:
    shop = shop_of(session, "demo-chief-2")
    url = f"/api/v1/shops/{shop.code}/ratings"
    empty = client.post(url, json={"note": "空评"}, headers=as_user("demo-assessor"))
    assert (empty.status_code, empty.json()["code"]) == (422, "validation_failed")
    chief = client.post(url, json={"flag": "red"}, headers=as_user("demo-chief-2"))
    assert (chief.status_code, chief.json()["code"]) == (403, "forbidden")
    stars = client.post(url, json={"stars": 6}, headers=as_user("demo-assessor"))
    assert stars.status_code == 422
    credit = client.get(f"/api/v1/shops/{shop.code}/credit", headers=as_user("demo-assessor"))
    assert credit.json()["history"] == []
