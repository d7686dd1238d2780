"""The closed-loop fixtures, and a small month of cases the assessment stories read."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.cases.models import Case, CaseTask
from app.cases.sweep import sweep
from app.core.database import utcnow
from app.settings import Settings
from tests.support import Jpeg
from tests.support.cases import Loop, dispatched, loop  # noqa: F401
from tests.support.places import Spot
from tests.support.reports import multipart, report_body, upload


def another_case(first: Loop, spot: Spot, good_jpeg: Jpeg, category: str) -> Loop:
    body = report_body(spot, category_code=category, description="另一处问题")
    receipt = multipart(first.client, body, [good_jpeg()]).json()
    return Loop(first.client, first.as_user, receipt["case_number"])


@pytest.fixture
def month(
    dispatched: Loop,  # noqa: F811 - the fixture imported above
    spot: Spot,
    good_jpeg: Jpeg,
    session: Session,
    settings: Settings,
) -> dict[str, Loop]:
    """Case A closed on time; B dispatched and left overdue (the sweep marks it); C rejected."""
    a = dispatched
    ours = upload(a.client, good_jpeg(), headers=a.as_user("demo-staff"))["id"]
    photo = {"note": "已处置", "photo_ids": [ours]}
    a.ok("demo-staff", "sign_for")
    a.ok(a.transport, "sign_for")  # type: ignore[attr-defined]
    a.ok("demo-staff", "feed_back", **photo)
    transport: str = a.transport  # type: ignore[attr-defined]
    theirs = upload(a.client, good_jpeg(), headers=a.as_user(transport))["id"]
    a.ok(transport, "feed_back", note="已处置", photo_ids=[theirs])
    a.ok("demo-chief-3", "verify_pass", lon=spot.lon, lat=spot.lat)

    b = another_case(a, spot, good_jpeg, "clean.illegal_ads")
    b.ok("demo-dispatcher", "register")
    b.ok("demo-dispatcher", "dispatch", units=["urban-management"], reason="城管负责")
    # Its deadlines pass (as if the unit sat on it), and the sweep marks them.
    past = utcnow() - timedelta(minutes=5)
    case_id = session.scalar(select(Case.id).where(Case.number == b.number))
    deadlines = {"sign_for_due_at": past, "handle_due_at": past, "handle_warn_at": past,
                 "next_alarm_at": past}  # fmt: skip
    session.execute(update(CaseTask).where(CaseTask.case_id == case_id).values(**deadlines))
    assert sweep(session, settings).total >= 2

    c = another_case(a, spot, good_jpeg, "order.street_vending")
    c.ok("demo-dispatcher", "reject", note="无效上报", reason="invalid")
    return {"a": a, "b": b, "c": c}
