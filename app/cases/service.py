"""Cases: numbering, finding open cases near a point, the history (a new case is opened by
`app.cases.opening.open_case`)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import tzinfo
from typing import TYPE_CHECKING, Any

import shapely
from geoalchemy2.shape import to_shape
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from app.access.rules import Principal
from app.accounts.models import User
from app.cases.facts import keep as keep_facts
from app.cases.models import (
    FINISHED_STATUSES,
    Case,
    CaseEvent,
    CaseEventKind,
)
from app.cases.relations import visible_cases
from app.cases.schemas import CaseEventOut, NearbyCase
from app.core.database import bbox_intersects
from app.core.geo import LocalFrame, bbox_around
from app.routing.schemas import UnitBrief
from app.territory.models import Unit

if TYPE_CHECKING:
    from app.settings import Settings


def assign_number(case: Case, zone: tzinfo) -> None:
    """案件编号: the local date of the report and the case's serial (after flush)."""
    case.number = f"{case.reported_at.astimezone(zone):%Y%m%d}{case.id:06d}"


def count_joined_report(session: Session, case: Case) -> None:
    """One more report of the case's problem (并案). A core UPDATE: the case's version
    stays, so a join never makes a department's or dispatcher's step on it fail."""
    session.execute(
        update(Case).where(Case.id == case.id).values(report_count=Case.report_count + 1)
    )
    set_committed_value(case, "report_count", case.report_count + 1)


def open_cases_near(
    session: Session,
    category_code: str,
    lon: float,
    lat: float,
    radius_m: float,
    principal: Principal,
) -> list[tuple[float, Case]]:
    """Unfinished cases of the category within `radius_m` that `principal` may see,
    nearest first."""
    box = bbox_around(lon, lat, radius_m)
    candidates = session.execute(
        select(Case.id, func.ST_AsBinary(Case.geom, type_=None)).where(
            Case.category_code == category_code,
            Case.status.not_in(FINISHED_STATUSES),
            bbox_intersects(Case.geom, *box),
            visible_cases(principal),
        )
    ).all()
    if not candidates:  # the usual answer: nothing to load
        return []
    distances = LocalFrame(lon, lat).distances_m(
        shapely.from_wkb([bytes(w) for _, w in candidates])
    )
    hits = sorted(
        (round(d, 2), case_id)
        for d, (case_id, _) in zip(distances, candidates, strict=True)
        if d <= radius_m
    )
    cases = {
        c.id: c for c in session.scalars(select(Case).where(Case.id.in_([i for _, i in hits])))
    }
    return [(d, cases[i]) for d, i in hits]


def nearby_cases(
    settings: Settings,
    near: list[tuple[float, Case]],
    thumbnails: dict[int, str],
) -> list[NearbyCase]:
    """What a reporter should look at before submitting: maybe it is already reported.

    Only cases the reporter may see (`open_cases_near` filters them): a case number is not
    a key to another street's case. The caller checked `cases:read`.
    """
    return [
        NearbyCase(
            number=case.number or "",
            status=case.status,
            category_code=case.category_code,
            urgency=case.urgency,
            description=case.description,
            reported_at=case.reported_at,
            report_count=case.report_count,
            distance_m=distance,
            thumbnail_url=thumbnails.get(case.id),
        )
        for distance, case in near
    ]


#: Who else must hear of each event, in its transaction: `app.wiring` registers the
#: notifications here, so they depend on cases and cases on nothing of theirs.
EventListener = Callable[[Session, "Settings", Case, CaseEvent], None]
_EVENT_LISTENERS: list[EventListener] = []


def on_case_event(listener: EventListener) -> None:
    """Call `listener` after each event is written (once, however often registered)."""
    if listener not in _EVENT_LISTENERS:
        _EVENT_LISTENERS.append(listener)


def record_event(
    session: Session, settings: Settings, case: Case, kind: CaseEventKind, **fields: Any
) -> CaseEvent:
    """Append an event to the case's history, keep the KPI facts it changes and tell the
    people it concerns (its listeners, in the caller's transaction). The one place events
    are written: steps, openings, reports, whistles, the sweep."""
    if not _EVENT_LISTENERS:  # an event nobody was told of would be lost for good
        raise RuntimeError("case events have no listeners: import app.wiring first")
    event = CaseEvent(case_id=case.id, kind=kind, **{"photo_ids": [], "detail": {}, **fields})
    session.add(event)
    session.flush()
    keep_facts(session, case, event)
    for listener in _EVENT_LISTENERS:
        listener(session, settings, case, event)
    return event


#: A case's events as rows, with each actor's name: every step's answer shows them, so no
#: ORM objects are built for them.
_HISTORY = (
    select(CaseEvent.occurred_at, CaseEvent.kind, CaseEvent.actor_role, CaseEvent.from_status,
           CaseEvent.to_status, CaseEvent.note, CaseEvent.photo_ids, CaseEvent.geom,
           CaseEvent.detail, User.display_name)
    .outerjoin(User, CaseEvent.actor_user_id == User.id)
    .where(CaseEvent.case_id == bindparam("case_id"))
    .order_by(CaseEvent.id)
)  # fmt: skip


def history(session: Session, case_id: int) -> list[CaseEventOut]:
    """The case's events in order, each with its actor's name and the unit it concerns
    (its `unit_id`): eleven releases name eleven units."""
    rows = session.execute(_HISTORY, {"case_id": case_id}).all()
    unit_ids = {e.detail.get("unit_id") for e in rows} - {None}
    # Units the session already holds (a step's tasks') are not read again.
    held = {i: session.identity_map.get(identity_key(Unit, i)) for i in unit_ids}
    missing = [i for i, unit in held.items() if unit is None]
    if missing:
        held.update((u.id, u) for u in session.scalars(select(Unit).where(Unit.id.in_(missing))))
    units = {i: UnitBrief.model_validate(u) for i, u in held.items() if u is not None}
    out = []
    for event in rows:
        point = to_shape(event.geom) if event.geom is not None else None
        out.append(
            CaseEventOut(
                occurred_at=event.occurred_at,
                kind=event.kind,
                actor=event.display_name,
                actor_role=event.actor_role,
                from_status=event.from_status,
                to_status=event.to_status,
                note=event.note,
                photo_ids=event.photo_ids,
                lon=point.x if point else None,
                lat=point.y if point else None,
                unit=units.get(event.detail.get("unit_id", 0)),  # ids start at 1
            )
        )
    return out
