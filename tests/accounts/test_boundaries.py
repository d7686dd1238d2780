"""Everyone sees and does only what is theirs: scope and role boundaries, by the API."""

from __future__ import annotations

import re

import pytest
import shapely
from fastapi.testclient import TestClient
from shapely.geometry import shape

from app.access.rules import Forbidden, Principal
from app.accounts.models import Role
from app.core.errors import NotFound
from tests.support import Headers
from tests.support.actors import PUBLIC
from tests.support.territory import by_code


def codes(response: object) -> list[str]:
    assert response.status_code == 200, response.text  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    return (
        [f["id"] for f in body["features"]]
        if "features" in body
        else [i["code"] for i in body["items"]]
    )


def test_every_route_but_sign_in_and_probes_needs_credentials(anonymous: TestClient) -> None:
    document = anonymous.get("/openapi.json").json()
    checked = 0
    for path, operations in document["paths"].items():
        for method in operations:
            if (method.upper(), path) in PUBLIC:
                continue
            url = path.replace("{layer}", "assets").replace("{code}", "x")
            url = url.replace("{user_id}", "1").replace("{key_id}", "1")
            response = anonymous.request(method.upper(), url)
            assert response.status_code == 401, f"{method.upper()} {path}: {response.status_code}"
            assert response.json()["code"] == "not_authenticated"
            checked += 1
    assert checked >= 20


def test_a_streets_chief_sees_that_street_not_the_next(
    client: TestClient, as_user: Headers
) -> None:
    chief = as_user("demo-chief-2")  # 文博路街道 (410199001)
    segments = client.get(
        "/api/v1/territory/road-segments", params={"limit": 1000}, headers=chief
    ).json()["features"]
    assert segments
    assert {f["properties"]["street_code"] for f in segments} == {"410199001"}

    everyone = codes(client.get("/api/v1/territory/road-segments", params={"limit": 1000}))
    other = next(c for c in everyone if c not in {f["id"] for f in segments})
    hidden = client.get(f"/api/v1/territory/road-segments/{other}", headers=chief)
    assert (hidden.status_code, hidden.json()["code"]) == (404, "not_found")  # no leak

    jurisdictions = codes(client.get("/api/v1/territory/jurisdictions", headers=chief))
    # The street, its communities, and the district it belongs to; no other street.
    assert "410199" in jurisdictions
    assert "410199001" in jurisdictions
    assert "410199001001" in jurisdictions
    assert "410199002" not in jurisdictions
    assert "410199002001" not in jurisdictions
    other_street = client.get("/api/v1/territory/jurisdictions/410199002", headers=chief)
    assert other_street.status_code == 404


def test_a_community_chief_sees_only_that_communitys_cells(
    client: TestClient, as_user: Headers
) -> None:
    chief = as_user("demo-chief-3")  # 文博社区 (410199001001)
    cells = client.get(
        "/api/v1/territory/grid-cells", params={"limit": 1000}, headers=chief
    ).json()["features"]
    assert cells
    assert {f["properties"]["community_code"] for f in cells} == {"410199001001"}


def test_assets_are_seen_where_they_lie(client: TestClient, as_user: Headers) -> None:
    street = shape(by_code("jurisdictions", "410199001")["geometry"])
    page = client.get(
        "/api/v1/territory/assets", params={"limit": 1000}, headers=as_user("demo-patroller")
    ).json()["features"]
    assert page
    assert all(
        street.buffer(1e-7).covers(shapely.Point(f["geometry"]["coordinates"])) for f in page
    )
    outside = client.get(
        "/api/v1/territory/assets",
        params={
            "limit": 50,
            "bbox": ",".join(
                map(str, shape(by_code("jurisdictions", "410199003")["geometry"]).bounds)
            ),
        },
    ).json()["features"]
    far = next(
        f["id"]
        for f in outside
        if not street.buffer(0.001).covers(shapely.Point(f["geometry"]["coordinates"]))
    )
    response = client.get(f"/api/v1/territory/assets/{far}", headers=as_user("demo-patroller"))
    assert response.status_code == 404


def test_street_offices_are_seen_by_their_street_departments_by_everyone(
    client: TestClient, as_user: Headers
) -> None:
    units = codes(
        client.get(
            "/api/v1/territory/units", params={"limit": 1000}, headers=as_user("demo-chief-2")
        )
    )
    assert "street-410199001" in units
    assert "street-410199002" not in units
    assert "urban-management" in units
    assert "water-company" in units


@pytest.mark.parametrize(
    "username", ["demo-assessor", "demo-chief-1", "demo-dispatcher", "demo-staff"]
)
def test_only_admins_manage_users_territory_and_keys(
    client: TestClient, as_user: Headers, username: str
) -> None:
    headers = as_user(username)
    attempts = [
        client.post(
            "/api/v1/admin/territory/assets/import",
            headers=headers,
            json={"type": "FeatureCollection", "features": []},
        ),
        client.post(
            "/api/v1/admin/users",
            headers=headers,
            json={
                "username": "sneaky",
                "display_name": "x",
                "password": "Sneaky#Pass2026",
                "roles": ["admin"],
            },
        ),
        client.patch("/api/v1/admin/users/1", headers=headers, json={"is_active": False}),
        client.post(
            "/api/v1/admin/api-keys",
            headers=headers,
            json={"name": "k", "jurisdiction_codes": ["410199"]},
        ),
        client.get("/api/v1/admin/audit-events", headers=headers),
    ]
    for response in attempts:
        assert response.status_code == 403, response.text
        assert response.json()["code"] == "forbidden"
    # Nothing was created on the way.
    assert "sneaky" not in [
        u["username"]
        for u in client.get("/api/v1/admin/users", params={"q": "sneaky"}).json()["items"]
    ]


def test_assessors_read_everything_in_their_scope(client: TestClient, as_user: Headers) -> None:
    assessor = as_user("demo-assessor")
    everyone = codes(client.get("/api/v1/territory/road-segments", params={"limit": 1000}))
    assert (
        codes(
            client.get("/api/v1/territory/road-segments", params={"limit": 1000}, headers=assessor)
        )
        == everyone
    )
    users = client.get("/api/v1/admin/users", headers=assessor)
    assert users.status_code == 200
    names = [u["username"] for u in users.json()["items"]]
    assert "demo-chief-3" in names
    assert "demo-admin" not in names  # admins are outside every scope


def test_dispatcher_reads_users_of_the_district_but_a_chief_reads_none(
    client: TestClient, as_user: Headers
) -> None:
    assert client.get("/api/v1/admin/users", headers=as_user("demo-dispatcher")).status_code == 200
    response = client.get("/api/v1/admin/users", headers=as_user("demo-chief-2"))
    assert response.status_code == 403


def test_department_staff_act_only_for_their_own_department() -> None:
    """The rule cases will call (issue #6): staff of one unit never act for another."""
    staff = Principal(
        kind="user",
        id=9,
        name="s",
        roles=frozenset({Role.DEPARTMENT_STAFF}),
        scope_paths=("/410199/",),
        unit_code="urban-management",
    )
    staff.require_unit("urban-management")
    with pytest.raises(Forbidden):
        staff.require_unit("water-company")
    chief = Principal(
        kind="user",
        id=8,
        name="c",
        roles=frozenset({Role.ROAD_CHIEF}),
        scope_paths=("/410199/410199001/",),
    )
    with pytest.raises(Forbidden):
        chief.require_unit("urban-management")
    with pytest.raises(NotFound):
        chief.require_path("/410199/410199002/")


SIGNED_IN_ONLY = "此操作只能由登录的用户执行，接口密钥不能执行"
#: What belongs to a person: no API key may act or read there, whatever its grants.
PERSONAL_ROUTES = {
    ("GET", "/api/v1/inbox"),
    ("POST", "/api/v1/inbox/{notification_id}/read"),
    ("POST", "/api/v1/inbox/read-all"),
    ("POST", "/api/v1/patrols"),
    ("GET", "/api/v1/patrols/mine"),
    ("POST", "/api/v1/workstations/{code}/check-in"),
    ("POST", "/api/v1/shops/{code}/visits"),
    ("POST", "/api/v1/assessment/inspections"),
}


def test_what_belongs_to_a_person_is_refused_to_api_keys_by_one_rule(
    client: TestClient, anonymous: TestClient
) -> None:
    """One typed dependency (`SignedInDep`) says "signed-in users only": of every operation,
    exactly these refuse an API key with its answer, before their own rules run."""
    made = client.post(
        "/api/v1/admin/api-keys",
        json={"name": "reader", "jurisdiction_codes": ["410199"]},
    )
    assert made.status_code == 201, made.text
    key = {"X-API-Key": made.json()["key"]}
    refused = set()
    for path, operations in anonymous.get("/openapi.json").json()["paths"].items():
        url = re.sub(r"\{[^}]+\}", "1", path)
        for method in operations:
            answer = anonymous.request(method.upper(), url, headers=key, json={})
            if answer.status_code == 403 and answer.json().get("detail") == SIGNED_IN_ONLY:
                refused.add((method.upper(), path))
    assert refused == PERSONAL_ROUTES
