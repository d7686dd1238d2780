"""Check-ins at road-chief workstations (路长工作站): in and out, standing near it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from geoalchemy2.shape import to_shape
from shapely.geometry import Point
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.access.rules import Permission, Principal, SignedIn
from app.accounts.models import User
from app.accounts.service import overseen_users
from app.core.coords import PointIn
from app.core.database import utcnow
from app.core.errors import Problem
from app.core.geo import LocalFrame
from app.core.idempotency import Idempotent, run_idempotent
from app.core.pagination import Keyset
from app.patrols.models import WorkstationCheckIn
from app.patrols.schemas import CheckInIn, CheckInOut, CheckOutIn
from app.territory.locator import wgs84_in_area
from app.territory.models import Workstation
from app.territory.service import in_sight

if TYPE_CHECKING:
    from app.settings import Settings

#: Check-ins newest first.
NEWEST_FIRST = Keyset(WorkstationCheckIn.id, descending=True)


class TooFarFromWorkstation(Problem):
    code = "too_far_from_workstation"
    status = 422
    title = "离工作站太远，请到站签到"


class AlreadyCheckedIn(Problem):
    code = "already_checked_in"
    status = 409
    title = "您已在一个工作站签到，请先签退"


class NotCheckedIn(Problem):
    code = "not_checked_in"
    status = 409
    title = "您没有在该工作站签到"


def _workstation(session: Session, principal: Principal, code: str) -> Workstation:
    return in_sight(session, principal, Workstation, code, "工作站")[0]


def _distance(settings: Settings, station: Workstation, point: PointIn) -> float:
    lon, lat = wgs84_in_area(settings, point)
    place = to_shape(station.geom)
    distance = round(LocalFrame(place.x, place.y).distance_m(Point(lon, lat)), 1)
    if distance > settings.workstation_radius_m:
        raise TooFarFromWorkstation(
            f"您距“{station.name}” {distance:.0f} 米，"
            f"须在 {settings.workstation_radius_m:.0f} 米以内",
            distance_m=distance,
        )
    return distance


def _out(session: Session, row: WorkstationCheckIn, code: str) -> CheckInOut:
    name = session.scalar(select(User.display_name).where(User.id == row.user_id)) or ""
    return CheckInOut(
        id=row.id,
        workstation_code=code,
        user_id=row.user_id,
        display_name=name,
        purpose=row.purpose,
        note=row.note,
        checked_in_at=row.checked_in_at,
        in_distance_m=row.in_distance_m,
        checked_out_at=row.checked_out_at,
        out_distance_m=row.out_distance_m,
        minutes=round((row.checked_out_at - row.checked_in_at).total_seconds() / 60, 1)
        if row.checked_out_at
        else None,
    )


def check_in(
    session: Session,
    settings: Settings,
    principal: SignedIn,
    code: str,
    body: CheckInIn,
    idempotency_key: str | None,
) -> Idempotent[CheckInOut]:
    """Check in near the workstation; one open check-in per person."""
    principal.require(Permission.PATROLS_RECORD)

    def create() -> CheckInOut:
        station = _workstation(session, principal, code)
        distance = _distance(settings, station, body)
        row = WorkstationCheckIn(
            workstation_id=station.id, user_id=principal.user_id, purpose=body.purpose,
            note=body.note, checked_in_at=utcnow(), in_distance_m=distance,
        )  # fmt: skip
        if session.scalar(
            select(WorkstationCheckIn.id).where(
                WorkstationCheckIn.user_id == principal.user_id,
                WorkstationCheckIn.checked_out_at.is_(None),
            )
        ):
            raise AlreadyCheckedIn("您已在一个工作站签到，请先签退")
        try:
            with session.begin_nested():  # two at once: the open-check-in index refuses one
                session.add(row)
                session.flush()
        except IntegrityError:
            raise AlreadyCheckedIn("您已在一个工作站签到，请先签退") from None
        return _out(session, row, station.code)

    return run_idempotent(
        session, principal.ref, f"workstations.{code}.check_in", idempotency_key, body, create
    )


def check_out(
    session: Session, settings: Settings, principal: Principal, code: str, body: CheckOutIn
) -> CheckInOut:
    principal.require(Permission.PATROLS_RECORD)
    station = _workstation(session, principal, code)
    row = session.scalar(
        select(WorkstationCheckIn)
        .where(
            WorkstationCheckIn.user_id == principal.user_id,
            WorkstationCheckIn.workstation_id == station.id,
            WorkstationCheckIn.checked_out_at.is_(None),
        )
        .with_for_update()
    )
    if row is None:
        raise NotCheckedIn(f"您没有在“{station.name}”签到")
    row.out_distance_m = _distance(settings, station, body)
    row.checked_out_at = utcnow()
    session.commit()
    return _out(session, row, station.code)


def check_ins(
    session: Session,
    settings: Settings,
    principal: Principal,
    code: str,
    *,
    limit: int,
    cursor: str | None,
) -> tuple[list[CheckInOut], str | None]:
    """Who was at the workstation, when, for what: newest first."""
    principal.require(Permission.PATROLS_READ)
    station = _workstation(session, principal, code)
    # A check-in is personal data: only those of people the caller oversees.
    query = (
        select(WorkstationCheckIn)
        .join(User, WorkstationCheckIn.user_id == User.id)
        .where(WorkstationCheckIn.workstation_id == station.id, overseen_users(principal))
    )
    rows, next_cursor = NEWEST_FIRST.scalars(session, query, limit=limit, cursor=cursor)
    return [_out(session, r, station.code) for r in rows], next_cursor
