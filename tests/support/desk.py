"""The closed loop driven through the API as its people drive it: chiefs report, the
centre registers and dispatches, departments act, supervisors verify. The department
stories and the property test of the assessment figures share it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from httpx import Response

from tests.support import Headers
from tests.support.places import Spot
from tests.support.reports import report_body, upload


class Desk:
    """Acts on cases as different people, sending the version last seen of each case."""

    def __init__(self, client: TestClient, as_user: Headers, jpeg: Callable[[], bytes]) -> None:
        self.client, self.as_user, self.jpeg = client, as_user, jpeg
        self.versions: dict[str, int] = {}
        #: Each case as last read or returned by a step (a step answers with the case).
        self.seen: dict[str, dict[str, Any]] = {}
        self.spots: dict[str, Spot] = {}
        self._photos: dict[str, int] = {}

    def photo(self, who: str) -> int:
        """One photo per person, uploaded once and attached to every step that needs one."""
        if who not in self._photos:
            self._photos[who] = upload(self.client, self.jpeg(), headers=self.as_user(who))["id"]
        return self._photos[who]

    def report(self, spot: Spot, category: str = "roads.surface", who: str = "demo-chief-1") -> str:
        """A report with a photo; the case it opened (or joined)."""
        body = report_body(spot, category_code=category, photos=[{"photo_id": self.photo(who)}])
        answer = self.client.post("/api/v1/reports", json=body, headers=self.as_user(who))
        assert answer.status_code == 201, answer.text
        number: str = answer.json()["case_number"]
        self.spots.setdefault(number, spot)
        self.read(number)
        return number

    def read(self, number: str) -> dict[str, Any]:
        answer = self.client.get(f"/api/v1/cases/{number}", headers=self.as_user("demo-admin"))
        assert answer.status_code == 200, answer.text
        case: dict[str, Any] = answer.json()
        self.versions[number], self.seen[number] = case["version"], case
        return case

    def act(self, number: str, who: str, action: str, **body: Any) -> Response:
        """One step; a photo is attached where `photo` is asked for, the case's place where
        `on_site` is. The version follows a step taken."""
        if body.pop("photo", False):
            body["photo_ids"] = [self.photo(who)]
        if body.pop("on_site", False):
            spot = self.spots[number]
            body.update(lon=spot.lon, lat=spot.lat)
        answer = self.client.post(
            f"/api/v1/cases/{number}/actions/{action}",
            json=body,
            headers={**self.as_user(who), "If-Match": f'"{self.versions[number]}"'},
        )
        assert answer.status_code < 500, answer.text
        if answer.status_code == 200:
            self.seen[number] = answer.json()
            self.versions[number] = self.seen[number]["version"]
        return answer

    def ok(self, number: str, who: str, action: str, **body: Any) -> dict[str, Any]:
        answer = self.act(number, who, action, **body)
        assert answer.status_code == 200, (action, answer.text)
        case: dict[str, Any] = answer.json()
        return case

    def dispatch(self, number: str, *units: str) -> dict[str, Any]:
        """Registered if need be, then dispatched to `units`, the first leading."""
        if self.read(number)["status"] == "pending_registration":
            self.ok(number, "demo-dispatcher", "register")
        return self.ok(number, "demo-dispatcher", "dispatch", units=list(units), reason="派遣")

    def handle(self, number: str, unit_staff: str) -> dict[str, Any]:
        """The unit signs for its task and feeds back with a photo."""
        self.ok(number, unit_staff, "sign_for")
        return self.ok(number, unit_staff, "feed_back", note="已处置", photo=True)

    def verify(self, number: str) -> dict[str, Any]:
        return self.ok(number, "demo-supervisor", "verify_pass", on_site=True)
