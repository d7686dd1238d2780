"""The multipart report as typed form fields (the photos as files), the JSON-in-a-string
`report` field kept for older phones and marked deprecated."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.settings import Settings
from tests.support.places import Spot
from tests.support.reports import new_key, report_body, stored

Jpeg = Callable[..., bytes]
URL = "/api/v1/reports/multipart"


def _form(body: dict[str, Any]) -> dict[str, str]:
    return {name: str(value) for name, value in body.items()}


def test_a_report_sent_field_by_field_is_taken_like_its_json(
    phone: Callable[[str], TestClient], spot: Spot, good_jpeg: Jpeg
) -> None:
    client = phone("demo-chief-3")
    files = [("photos", ("p.jpg", good_jpeg(), "image/jpeg"))]
    body = report_body(spot, coordinate_system="wgs84", urgency="normal")

    response = client.post(
        URL, data=_form(body), files=files, headers={"Idempotency-Key": (key := new_key())}
    )

    assert response.status_code == 201, response.text
    receipt = response.json()
    assert receipt["case_status"] == "pending_registration"
    assert [p["role"] for p in receipt["photos"]] == ["before"]
    assert (receipt["lon"], receipt["lat"]) == (spot.lon, spot.lat)
    again = client.post(URL, data=_form(body), files=files, headers={"Idempotency-Key": key})
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.content == response.content


def test_a_bad_form_field_or_both_shapes_at_once_are_refused(
    phone: Callable[[str], TestClient],
    spot: Spot,
    good_jpeg: Jpeg,
    session: Session,
    settings: Settings,
) -> None:
    client = phone("demo-chief-3")
    files = [("photos", ("p.jpg", good_jpeg(), "image/jpeg"))]
    before = stored(session, settings)
    cases: list[tuple[dict[str, str], list[str]]] = [
        (_form(report_body(spot, lon="东经113度")), ["body", "lon"]),
        ({k: v for k, v in _form(report_body(spot)).items() if k != "description"},
         ["body", "description"]),
        ({**_form(report_body(spot)), "report": "{}"}, ["body", "accuracy_m"]),
    ]  # fmt: skip
    for data, loc in cases:
        response = client.post(URL, data=data, files=files)
        assert (response.status_code, response.json()["code"]) == (422, "validation_failed")
        assert loc in [e["loc"] for e in response.json()["errors"]], response.json()
    assert stored(session, settings) == before


def test_the_form_is_documented_field_by_field_with_binary_photos(app: FastAPI) -> None:
    document = app.openapi()
    body = document["paths"][URL]["post"]["requestBody"]["content"]["multipart/form-data"]
    form = document["components"]["schemas"][body["schema"]["$ref"].rsplit("/", 1)[-1]]
    fields = form["properties"]
    assert {"category_code", "description", "lon", "lat", "device_time"} <= fields.keys()
    assert "photos" not in form.get("required", [])
    assert fields["photos"]["items"]["format"] == "binary"
    assert fields["after_photos"]["items"]["format"] == "binary"
    assert fields["report"]["deprecated"] is True
