"""Cases: numbering, finding open cases near a point, the history."""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Any

import shapely
from geoalchemy2.shape import to_shape
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from app.accounts.access import Principal
from app.accounts.models import User
from app.cases.facts import keep as keep_facts
from app.cases.models import (
    FINISHED_STATUSES,
    Case,
    CaseEvent,
    CaseEventKind,
    CaseSource,
    CaseStatus,
)
from app.cases.relations import visible_cases
from app.cases.schemas import CaseEventOut, NearbyCase
from app.core.database import bbox_intersects
from app.core.geo import LocalFrame, bbox_around
from app.notifications.service import notify_case_event
from app.routing.models import Urgency
from app.routing.schemas import RoutingDecisionOut, UnitBrief
from app.territory.models import Unit

if TYPE_CHECKING:
    from app.settings import Settings


def assign_number(case: Case, zone: tzinfo) -> None:
    """案件编号: the local date of the report and the case's serial (after flush)."""
    case.number = f"{case.reported_at.astimezone(zone):%Y%m%d}{case.id:06d}"


def new_case(
    session: Session,
    settings: Settings,
    *,
    source: CaseSource,
    status: CaseStatus,
    category_code: str,
    urgency: Urgency,
    description: str,
    reporter_user_id: int | None,
    point: Any,
    decision: RoutingDecisionOut,
    jurisdiction_path: str,
    now: datetime,
    handle_due_at: datetime | None = None,
    verify_due_at: datetime | None = None,
    fixed_on_spot: bool = False,
    routing_decision_id: int | None = None,
) -> Case:
    """A case placed where its routing decision placed it, numbered (report or whistle):
    version 1, however many flushes its opening takes."""
    facts = decision.facts
    case = Case(
        status=status,
        source=source,
        category_code=category_code,
        urgency=urgency,
        description=description,
        reporter_user_id=reporter_user_id,
        reported_at=now,
        geom=point,
        jurisdiction_path=jurisdiction_path,
        street_code=facts.street.code if facts.street else None,
        community_code=facts.community.code if facts.community else None,
        grid_cell_code=facts.grid_cell_code,
        segment_code=facts.segment.code if facts.segment else None,
        handle_due_at=handle_due_at,
        verify_due_at=verify_due_at,
        fixed_on_spot=fixed_on_spot,
        report_count=1,
        routing_decision_id=routing_decision_id,
    )
    session.add(case)
    session.flush()
    assign_number(case, settings.zone)
    return case


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


def record_event(
    session: Session, settings: Settings, case: Case, kind: CaseEventKind, **fields: Any
) -> CaseEvent:
    """Append an event to the case's history, keep the KPI facts it changes and tell the
    people it concerns (in the caller's transaction). The one place events are written:
    steps, reports, whistles, the sweep."""
    event = CaseEvent(case_id=case.id, kind=kind, **{"photo_ids": [], "detail": {}, **fields})
    session.add(event)
    session.flush()
    keep_facts(session, case, event)
    notify_case_event(session, settings, case, event)
    return event


def history(session: Session, case_id: int) -> list[CaseEventOut]:
    """The case's events in order, each with its actor's name and the unit it concerns
    (its `unit_id`): eleven releases name eleven units."""
    rows = session.execute(
        select(CaseEvent, User.display_name)
        .outerjoin(User, CaseEvent.actor_user_id == User.id)
        .where(CaseEvent.case_id == case_id)
        .order_by(CaseEvent.id)
    ).all()
    unit_ids = {e.detail.get("unit_id") for e, _ in rows} - {None}
    # Units the session already holds (a step's tasks') are not read again.
    held = {i: session.identity_map.get(identity_key(Unit, i)) for i in unit_ids}
    missing = [i for i, unit in held.items() if unit is None]
    if missing:
        held.update((u.id, u) for u in session.scalars(select(Unit).where(Unit.id.in_(missing))))
    units = {i: UnitBrief.model_validate(u) for i, u in held.items() if u is not None}
    out = []
    for event, name in rows:
        point = to_shape(event.geom) if event.geom is not None else None
        out.append(
            CaseEventOut(
                occurred_at=event.occurred_at,
                kind=event.kind,
                actor=name,
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
