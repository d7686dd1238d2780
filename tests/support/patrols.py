"""Patrol steps: start a patrol, walk a segment (the fixes a phone records), and a whole
patrol dated back to a chosen day, with the week the compliance stories judge."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from fastapi.testclient import TestClient
from geoalchemy2.shape import to_shape
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.core.database import utcnow
from app.core.geo import geodesic_length_m
from app.patrols.models import Patrol
from app.settings import Settings
from app.territory.models import RoadSegment


def walk(session: Session, segment_code: str, start: datetime) -> list[dict[str, Any]]:
    """Fixes every 10 m along the segment, 5 s apart (a brisk walk)."""
    line = to_shape(
        session.scalar(select(RoadSegment.geom).where(RoadSegment.code == segment_code))
    )
    length = geodesic_length_m(line)
    steps = max(2, int(length // 10))
    fixes = []
    for i in range(steps + 1):
        point = line.interpolate(i / steps, normalized=True)
        fixes.append({
            "recorded_at": (start + timedelta(seconds=5 * i)).isoformat(),
            "lon": point.x, "lat": point.y, "accuracy_m": 6,
        })  # fmt: skip
    return fixes


def start(client: TestClient, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    response = client.post("/api/v1/patrols", json=body, headers=headers)
    assert response.status_code == 201, response.text
    patrol: dict[str, Any] = response.json()
    return patrol


MONDAY, SUNDAY = date(2026, 11, 9), date(2026, 11, 15)


#: The Friday after that week: the week has ended and is judged.
AFTER_THAT_WEEK = "2026-11-20T10:00:00+08:00"


def patrol_on(
    client: TestClient, headers: dict[str, str], session: Session, settings: Settings,
    segment_code: str, day: date,
) -> None:  # fmt: skip
    began = utcnow() - timedelta(hours=1)
    patrol = start(client, headers, started_at=began.isoformat())
    fixes = walk(session, segment_code, began)
    client.post(f"/api/v1/patrols/{patrol['id']}/fixes", json={"fixes": fixes}, headers=headers)
    ended = client.post(f"/api/v1/patrols/{patrol['id']}/end", headers=headers).json()
    assert any(s["segment_code"] == segment_code and s["complete"] for s in ended["segments"])
    # As if walked that day (the API refuses to date a patrol back so far).
    that_morning = datetime.combine(day, time(9, 0), settings.zone)
    session.execute(
        update(Patrol).where(Patrol.id == patrol["id"])
        .values(started_at=that_morning, ended_at=that_morning + timedelta(hours=1))
    )  # fmt: skip
