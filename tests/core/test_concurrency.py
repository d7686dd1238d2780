"""Many people at once on one database, through a real server: phones sending reports and
patrol fixes, people signing in, machine clients reading, the service's own jobs. On
SQLite writers wait their turn; nobody is answered with a server error."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import httpx

from app.core.database import Database, utcnow
from app.demo.users import DEMO_PASSWORD
from app.main import create_app
from app.settings import Settings
from tests.support.live import serve, signed_in
from tests.support.places import Spot, on_segment

ROUNDS = 3
PHONES = ("demo-chief-1", "demo-chief-2", "demo-chief-3", "demo-patroller")


def fixes(spot: Spot, first: Any, n: int = 50) -> dict[str, Any]:
    """`n` fixes one second apart from `first`, walking east from `spot`."""
    return {"fixes": [
        {"recorded_at": (first + timedelta(seconds=i)).isoformat(),
         "lon": spot.moved(i)[0], "lat": spot.lat, "accuracy_m": 5}
        for i in range(n)
    ]}  # fmt: skip


#: One request: what it is (for the answer's check), method, path, httpx arguments.
Call = tuple[str, str, str, dict[str, Any]]


def all_at_once(base_url: str, calls: list[Call]) -> list[tuple[str, int, str]]:
    """Send the calls from as many threads, released together: what each answered."""
    start = threading.Barrier(len(calls))
    answers: list[tuple[str, int, str]] = []

    def send(name: str, method: str, path: str, arguments: dict[str, Any]) -> None:
        with httpx.Client(base_url=base_url, timeout=60) as client:
            start.wait()
            answer = client.request(method, path, **arguments)
        answers.append((name, answer.status_code, answer.text[:200]))

    threads = [threading.Thread(target=send, args=call) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def test_concurrent_writers_never_see_a_server_error(
    live_database: Database, settings: Settings
) -> None:
    with live_database.sessions() as db:
        spots = [on_segment(db, skip=40 + i) for i in range(ROUNDS * 6 + 1)]
    # The service's own jobs write beside the users too.
    running = settings.model_copy(update={"background_interval_seconds": 0.3})
    with serve(create_app(running, live_database)) as base, httpx.Client(base_url=base) as c:
        phone = {who: signed_in(base, who) for who in PHONES}
        admin = signed_in(base, "demo-admin")
        keys = [
            c.post("/api/v1/admin/api-keys", headers=admin,
                   json={"name": f"夜间同步 {i}", "jurisdiction_codes": ["410199"]}).json()["key"]
            for i in range(2)
        ]  # fmt: skip
        began = utcnow() - timedelta(minutes=20)
        # An ended patrol, whose late fixes come in with the rest.
        chief_2 = phone["demo-chief-2"]
        ended = c.post(
            "/api/v1/patrols",
            headers=chief_2,
            json={"started_at": (began - timedelta(minutes=5)).isoformat()},
        ).json()
        late_url = f"/api/v1/patrols/{ended['id']}/fixes"
        c.post(late_url, headers=chief_2, json=fixes(spots[-1], began - timedelta(minutes=4)))
        assert c.post(f"/api/v1/patrols/{ended['id']}/end", headers=chief_2).status_code == 200
        patrols = {
            who: c.post("/api/v1/patrols", headers=phone[who],
                        json={"started_at": began.isoformat()}).json()["id"]
            for who in PHONES
        }  # fmt: skip

        answers = []
        for round_ in range(ROUNDS):
            reporters = (*PHONES, "demo-chief-3", "demo-chief-2")
            calls: list[Call] = [
                ("report", "POST", "/api/v1/reports", {"headers": phone[who], "json": {
                    "category_code": "civility.public_behaviour", "description": "乱扔垃圾",
                    "lon": spot.lon, "lat": spot.lat, "device_time": utcnow().isoformat()}})
                for who, spot in zip(reporters, spots[round_ * 6:], strict=False)
            ]  # fmt: skip
            calls += [
                ("sign-in", "POST", "/api/v1/auth/token", {"data": {
                    "grant_type": "password", "username": who, "password": DEMO_PASSWORD}})
                for who in ("demo-assessor", "demo-staff", "demo-dispatcher")
            ]  # fmt: skip
            at = began + timedelta(minutes=round_)
            calls += [
                ("fixes", "POST", f"/api/v1/patrols/{patrols[who]}/fixes",
                 {"headers": phone[who], "json": fixes(spots[i], at)})
                for i, who in enumerate(PHONES)
            ]  # fmt: skip
            late = began - timedelta(minutes=3) + timedelta(seconds=round_)
            calls.append(("late fixes", "POST", late_url,
                          {"headers": chief_2, "json": fixes(spots[-1], late)}))  # fmt: skip
            calls += [
                ("machine read", "GET", "/api/v1/territory/road-segments?limit=20",
                 {"headers": {"X-API-Key": key}})
                for key in keys
            ]  # fmt: skip
            answers += all_at_once(base, calls)

    assert [a for a in answers if a[1] >= 500] == []
    assert len(answers) == ROUNDS * 16
    assert {(name, status) for name, status, _ in answers} == {
        ("report", 201), ("sign-in", 200), ("fixes", 200), ("late fixes", 200),
        ("machine read", 200),
    }  # fmt: skip
