"""Report intake steps: a report's body, a photo upload, the multipart report, and "what
was stored" (row counts and media files) to check that bad input changed nothing."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.cases.models import Case, CaseEvent
from app.core.database import utcnow
from app.core.idempotency import IdempotencyRecord
from app.media.models import Photo, PhotoUse
from app.reports.models import Report, ReportPhoto
from app.routing.models import RoutingDecision
from app.settings import Settings
from tests.support.places import Spot


def report_body(spot: Spot, **more: Any) -> dict[str, Any]:
    return {
        "category_code": "roads.surface",
        "description": "路面坑洼，雨天积水",
        "lon": spot.lon,
        "lat": spot.lat,
        "accuracy_m": 8,
        "device_time": utcnow().isoformat(),
        **more,
    }


def new_key() -> str:
    return str(uuid.uuid4())


def upload(
    client: TestClient, data: bytes, name: str = "p.jpg", headers: dict[str, str] | None = None
) -> dict[str, Any]:
    response = client.post(
        "/api/v1/photos", files={"file": (name, data, "image/jpeg")}, headers=headers or {}
    )
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def multipart(
    client: TestClient,
    body: dict[str, Any],
    photos: list[bytes],
    after: list[bytes] | None = None,
    key: str | None = None,
) -> Any:
    files = [("photos", (f"p{i}.jpg", p, "image/jpeg")) for i, p in enumerate(photos)]
    files += [("after_photos", (f"a{i}.jpg", p, "image/jpeg")) for i, p in enumerate(after or [])]
    return client.post(
        "/api/v1/reports/multipart",
        data={"report": json.dumps(body, ensure_ascii=False)},
        files=files,
        headers={"Idempotency-Key": key} if key else {},
    )


STORED = (Report, ReportPhoto, Case, CaseEvent, Photo, PhotoUse, RoutingDecision, IdempotencyRecord)


def stored(session: Session, settings: Settings) -> dict[str, Any]:
    """Row counts of everything intake writes, and the files under the media directory."""
    counts: dict[str, Any] = {
        m.__tablename__: session.scalar(select(func.count()).select_from(m)) for m in STORED
    }
    media: Path = settings.media_dir
    counts["files"] = sorted(
        str(p.relative_to(media))
        for p in media.rglob("*")
        if p.is_file() and "tmp" not in p.relative_to(media).parts
    )
    counts["tmp"] = sorted(p.name for p in (media / "tmp").glob("*")) if media.exists() else []
    return counts
