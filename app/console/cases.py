"""One case's page (案件详情): its history, photos and places, and the workflow steps
open to the person, taken through `steps.perform` as the API takes them."""

from __future__ import annotations

import math
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import File, Form, Request, UploadFile
from fastapi.responses import Response
from pydantic import ValidationError

from app.access.rules import Permission, Principal
from app.cases.errors import VersionConflict
from app.cases.schemas import ActionIn
from app.cases.steps import perform
from app.cases.view import get_case
from app.cases.workflow import Action
from app.console.deps import CsrfField, Me, console_router, redirect_back, safe_next
from app.console.pages import event_zh, on_tiles, open_steps, render
from app.console.session import PREFIX, check_csrf
from app.core.bodies import MULTIPART_FRAMING_BYTES, body_limit
from app.core.deps import SessionDep, SettingsDep
from app.core.errors import Problem
from app.core.geo import metres_per_degree
from app.core.inputs import DatabaseId
from app.media import service as media
from app.media.router import photo_response
from app.routing.service import routing_context

if TYPE_CHECKING:
    from app.settings import Settings

router = console_router()


#: Photos one console step may upload from the PC.
MAX_STEP_PHOTOS = 4


@router.get("/cases/{number}")
def case_page(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    me: Me,
    number: str,
) -> Response:
    return _case_page(request, session, settings, me, number)


def _case_page(
    request: Request,
    session: Any,
    settings: Settings,
    me: Principal,
    number: str,
    *,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    case = get_case(session, settings, me, number)
    steps = open_steps(me, case)
    return render(
        request, settings, "case.html", me, status_code=status_code, case=case, steps=steps,
        categories=routing_context(session).taxonomy,
        error=error, place=on_tiles(settings, case.lon, case.lat),
        photo_places=_photo_places(session, settings, me, case),
    )  # fmt: skip


def _photo_places(
    session: Any, settings: Settings, me: Principal, case: Any
) -> list[dict[str, Any]]:
    """Where each of the case's photos was taken, by its EXIF (拍摄位置), and how far that
    is from the case: evidence the desk can weigh. A photo the media service would not
    show this person is left out."""
    places: list[dict[str, Any]] = []
    seen: set[int] = set()
    for event in case.history:
        for photo_id in event.photo_ids:
            if photo_id in seen:
                continue
            seen.add(photo_id)
            try:
                photo = media.visible_photo(session, me, photo_id)
            except Problem:
                continue
            if photo.exif_lon is None or photo.exif_lat is None:
                continue
            per_lon, per_lat = metres_per_degree(case.lat)
            metres = math.hypot(
                (photo.exif_lon - case.lon) * per_lon, (photo.exif_lat - case.lat) * per_lat
            )
            lon, lat = on_tiles(settings, photo.exif_lon, photo.exif_lat)
            places.append({
                "id": photo_id, "lon": lon, "lat": lat, "metres": round(metres),
                "label": f"照片 {photo_id}（{event_zh(event.kind.value)}）拍摄位置，"
                         f"距案件约 {round(metres)} 米",
            })  # fmt: skip
    return places


def _deadline(value: str | None, settings: Settings) -> datetime | None:
    """A `datetime-local` field, read in the service's zone."""
    if not value:
        return None
    return datetime.fromisoformat(value).replace(tzinfo=settings.zone)


@router.post("/cases/{number}/actions/{action}")
@body_limit(lambda s: MAX_STEP_PHOTOS * s.photo_max_bytes + MULTIPART_FRAMING_BYTES)
def take_step(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    me: Me,
    number: str,
    action: Action,
    version: Annotated[int, Form()],
    csrf: CsrfField = None,
    note: Annotated[str | None, Form(max_length=2000)] = None,
    reason: Annotated[str | None, Form(max_length=500)] = None,
    unit_code: Annotated[str | None, Form(max_length=64)] = None,
    units: Annotated[str | None, Form(max_length=1000)] = None,
    approved: Annotated[str | None, Form(max_length=5)] = None,
    new_due_at: Annotated[str | None, Form(max_length=30)] = None,
    back: Annotated[str | None, Form(max_length=500)] = None,
    photos: Annotated[list[UploadFile] | None, File()] = None,
) -> Response:
    """One step, through `steps.perform` as the API takes it. Refused (a stale version
    included), the case page comes back with the service's message."""
    check_csrf(request, settings, csrf)
    try:
        photo_ids = []
        for upload in [p for p in photos or [] if p.filename][:MAX_STEP_PHOTOS]:
            me.require(Permission.PHOTOS_UPLOAD)
            photo_ids.append(media.upload_photo(session, settings, me, upload.file).id)
        body = ActionIn(
            version=version,
            note=note or None,
            reason=reason or None,
            unit_code=unit_code or None,
            units=[u.strip() for u in units.split(",") if u.strip()] if units else None,
            approved={"true": True, "false": False}.get(approved or ""),
            new_due_at=_deadline(new_due_at, settings),
            photo_ids=photo_ids,
        )
        perform(session, settings, me, number, action, body, None)
    except VersionConflict:
        return _case_page(
            request, session, settings, me, number, status_code=409,
            error="案件已被他人更新（版本冲突）：下面是最新的案件，请核对后重新操作",
        )  # fmt: skip
    except Problem as problem:
        if problem.status == 404:
            raise
        return _case_page(
            request, session, settings, me, number, status_code=problem.status,
            error=problem.detail or problem.title,
        )  # fmt: skip
    except ValidationError as invalid:
        return _case_page(
            request, session, settings, me, number, status_code=422,
            error="；".join(str(e["msg"]) for e in invalid.errors()),
        )  # fmt: skip
    return redirect_back(safe_next(back) or f"{PREFIX}/cases/{number}", "done")


@router.get("/photos/{photo_id}/{variant}")
def photo(
    session: SessionDep,
    settings: SettingsDep,
    me: Me,
    photo_id: DatabaseId,
    variant: media.Variant,
) -> Response:
    """A photo the person may see (the media service decides), for the case page."""
    return photo_response(media.photo_file(session, settings, me, photo_id, variant), settings)
