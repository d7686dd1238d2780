"""Whistles: who may blow one and where, who must report in, and the record of who came."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from geoalchemy2.shape import from_shape, to_shape
from shapely.geometry import Point
from sqlalchemy import exists, or_, select, update
from sqlalchemy.orm import Session, selectinload

from app.access.rules import Permission, Principal
from app.accounts.models import Role, SegmentChief, User
from app.cases.models import (
    FINISHED_STATUSES,
    Case,
    CaseEventKind,
    CaseSource,
)
from app.cases.opening import open_case, record_opening
from app.cases.service import record_event
from app.cases.view import find_case
from app.core.database import rows_changed, utcnow
from app.core.errors import NotFound, Problem
from app.core.geo import LocalFrame
from app.core.idempotency import Idempotent, run_idempotent
from app.core.moments import local_isoformat, to_local
from app.core.pagination import Keyset
from app.notifications.models import Notification
from app.notifications.schemas import WHISTLE_BLOWN
from app.notifications.service import active_users_with_role, enqueue
from app.routing.models import Urgency
from app.routing.schemas import UnitBrief
from app.routing.service import decide_on_facts, gather_facts, routing_context
from app.routing.taxonomy import require_leaf
from app.territory.locator import place_point, wgs84_in_area
from app.territory.models import Jurisdiction, JurisdictionLevel, RoadSegment, Unit, UnitKind
from app.territory.schemas import PlaceRef
from app.territory.service import UnknownUnit
from app.whistles.models import Whistle, WhistleCase, WhistleSummons
from app.whistles.schemas import (
    PersonRef,
    ReportInCreate,
    SummonsOut,
    SummonsStatus,
    WhistleCreate,
    WhistleOut,
)

if TYPE_CHECKING:
    from app.settings import Settings

#: Whistles newest first.
NEWEST_FIRST = Keyset(Whistle.id, descending=True)


class NotYourSegment(Problem):
    code = "not_your_segment"
    status = 403
    title = "只能在自己负责的路段吹哨"


class PlaceOffSegment(Problem):
    code = "place_off_segment"
    status = 422
    title = "吹哨位置不在该路段上"


class UnitNotSummonable(Problem):
    code = "unit_not_summonable"
    status = 422
    title = "该单位不能被召集"


class NotSummoned(Problem):
    code = "not_summoned"
    status = 403
    title = "本单位未被此次吹哨召集"


class AlreadyReportedIn(Problem):
    code = "already_reported_in"
    status = 409
    title = "本单位已报到"


class CaseFinished(Problem):
    code = "case_finished"
    status = 409
    title = "案件已结束"


class TooFarFromPlace(Problem):
    code = "too_far_from_place"
    status = 422
    title = "报到位置离吹哨地点太远"


def _own_segment(session: Session, principal: Principal, segment_code: str) -> RoadSegment:
    """The segment, if the caller is one of its road chiefs (any level) and it lies in
    their scope (a chief moved elsewhere blows no whistle on the old roads)."""
    row = session.execute(
        select(RoadSegment, Jurisdiction.path)
        .join(Jurisdiction, RoadSegment.street_id == Jurisdiction.id)
        .where(
            RoadSegment.code == segment_code,
            exists().where(
                SegmentChief.segment_id == RoadSegment.id,
                SegmentChief.user_id == principal.user_id,
            ),
        )
    ).one_or_none()
    if row is None or not principal.sees_path(row.path):
        raise NotYourSegment(f"您不是路段“{segment_code}”的路长", segment_code=segment_code)
    segment: RoadSegment = row.RoadSegment
    return segment


def _summoned_units(session: Session, codes: list[str]) -> list[Unit]:
    wanted = list(dict.fromkeys(codes))
    units = {u.code: u for u in session.scalars(select(Unit).where(Unit.code.in_(wanted)))}
    missing = [c for c in wanted if c not in units]
    if missing:
        raise UnknownUnit(f"单位不存在：{'、'.join(missing)}", unit_codes=missing)
    centres = [c for c in wanted if units[c].kind == UnitKind.COMMAND_CENTRE]
    if centres:
        raise UnitNotSummonable(
            "指挥中心负责调度，不能被吹哨召集；请召集职能部门、属地或产权单位", unit_codes=centres
        )
    return [units[c] for c in wanted]


def blow_whistle(
    session: Session,
    principal: Principal,
    settings: Settings,
    body: WhistleCreate,
    idempotency_key: str | None,
) -> Idempotent[WhistleOut]:
    """Record a whistle and summon its units; a retried request answers with the first."""
    principal.require(Permission.WHISTLES_BLOW)

    def create() -> WhistleOut:
        lon, lat = wgs84_in_area(settings, body)
        places = place_point(session, settings, lon, lat)
        segment = _own_segment(session, principal, body.segment_code)
        frame = LocalFrame(lon, lat)
        distance = frame.distance_m(to_shape(segment.geom))
        if distance > settings.whistle_place_max_distance_m:
            raise PlaceOffSegment(
                f"吹哨位置距路段“{segment.name}” {distance:.0f} 米，超过 "
                f"{settings.whistle_place_max_distance_m:.0f} 米",
                distance_m=round(distance, 2),
            )
        require_leaf(routing_context(session).taxonomy, body.category_code)
        units = _summoned_units(session, body.unit_codes)
        path = session.scalar(select(Jurisdiction.path).where(Jurisdiction.code == places[-1].code))
        now = utcnow()
        minutes = body.report_in_minutes or settings.whistle_report_in_minutes
        whistle = Whistle(
            blown_at=now,
            blown_by_user_id=principal.user_id,
            segment_id=segment.id,
            jurisdiction_path=path,
            geom=from_shape(Point(lon, lat), srid=4326),
            category_code=body.category_code,
            description=body.description,
            report_in_due_at=now + timedelta(minutes=minutes),
            summonses=[WhistleSummons(unit_id=u.id) for u in units],
        )
        session.add(whistle)
        session.flush()
        case = _case_for(session, settings, principal, body, whistle, units, now)
        if case is not None:
            session.add(WhistleCase(whistle_id=whistle.id, case_id=case.id))
        _notify_whistle(session, settings, whistle, units, case, segment)
        return _out(session, settings, whistle, now)

    return run_idempotent(session, principal.ref, "whistles.create", idempotency_key, body, create)


def _notify_whistle(
    session: Session,
    settings: Settings,
    whistle: Whistle,
    units: Sequence[Unit],
    case: Case | None,
    segment: RoadSegment,
) -> None:
    """Tell each summoned unit's staff to report in on site (路长吹哨、部门报到): an inbox
    message each, and `whistle.blown` for the webhooks; in the whistle's transaction."""
    due = to_local(whistle.report_in_due_at)
    when = (
        f"{due:%H:%M}"
        if due.date() == to_local(whistle.blown_at).date()
        else (f"{due:%m月%d日 %H:%M}")
    )
    title = f"路长吹哨：请于 {when} 前到“{segment.name}”现场报到"
    if case is not None:
        title += f"（案件 {case.number}）"
    staff = session.scalars(
        active_users_with_role(Role.DEPARTMENT_STAFF).where(User.unit_id.in_([u.id for u in units]))
    )
    for user_id in sorted(set(staff) - {whistle.blown_by_user_id}):
        session.add(
            Notification(
                user_id=user_id,
                created_at=whistle.blown_at,
                kind="whistle_summoned",
                case_id=case.id if case else None,
                case_number=case.number if case else None,
                whistle_id=whistle.id,
                title=title,
                body=whistle.description,
            )
        )
    point = to_shape(whistle.geom)
    enqueue(
        session,
        WHISTLE_BLOWN,
        {
            "whistle": {
                "id": whistle.id,
                "blown_at": local_isoformat(whistle.blown_at),
                "blown_by_user_id": whistle.blown_by_user_id,
                "segment_code": segment.code,
                "category_code": whistle.category_code,
                "description": whistle.description,
                "lon": point.x,
                "lat": point.y,
                "report_in_due_at": due.isoformat(),
                "units": [u.code for u in units],
                "case_number": case.number if case else None,
            }
        },
    )


def _case_for(
    session: Session,
    settings: Settings,
    principal: Principal,
    body: WhistleCreate,
    whistle: Whistle,
    units: list[Unit],
    now: datetime,
) -> Case | None:
    """The case the whistle opens (the workflow's `whistle` entry: dispatched to the
    summoned units) or joins; its history records the whistle."""
    detail = {"whistle_id": whistle.id, "units": [u.code for u in units]}
    if body.open_case:
        context = routing_context(session)
        category = require_leaf(context.taxonomy, body.category_code)
        place = to_shape(whistle.geom)  # WGS 84, whatever system the chief's phone sent
        facts = gather_facts(session, settings, context, category, place.x, place.y, None)
        case = open_case(
            session, settings, principal, source=CaseSource.WHISTLE, category=category,
            urgency=Urgency(category.default_urgency), description=body.description,
            point=whistle.geom, decision=decide_on_facts(session, context, facts, settings.zone),
            now=now, summoned=units,
        )  # fmt: skip
        record_opening(session, settings, principal, case, note=body.description,
                       geom=whistle.geom, detail=detail)  # fmt: skip
        return case
    if body.case_number is None:
        return None
    case = find_case(session, principal, body.case_number)
    if case.status in FINISHED_STATUSES:
        raise CaseFinished(f"案件“{case.number}”已结束，请开新案件（open_case）")
    record_event(
        session, settings, case, CaseEventKind.WHISTLE_BLOWN,
        occurred_at=now, actor_user_id=principal.user_id, actor_role=Role.ROAD_CHIEF.value,
        note=body.description, geom=whistle.geom, detail=detail,
    )  # fmt: skip
    return case


def _summons(unit_code: str) -> Any:
    """SQL: the whistle summons the unit `unit_code`."""
    return exists().where(
        WhistleSummons.whistle_id == Whistle.id,
        WhistleSummons.unit_id == Unit.id,
        Unit.code == unit_code,
    )


def _visible(principal: Principal) -> Any:
    """Whistles the caller may read: inside their scope, or summoning their unit."""
    clauses = [principal.path_filter(Whistle.jurisdiction_path)]
    if principal.has_role(Role.DEPARTMENT_STAFF) and principal.unit_code:
        clauses.append(_summons(principal.unit_code))
    return or_(*clauses)


def _load(session: Session, principal: Principal, whistle_id: int) -> Whistle:
    principal.require(Permission.WHISTLES_READ)
    whistle = session.scalar(
        select(Whistle)
        .where(Whistle.id == whistle_id, _visible(principal))
        .options(selectinload(Whistle.summonses))
    )
    if whistle is None:
        raise NotFound("吹哨记录不存在")
    return whistle


def status_of(summons: WhistleSummons, due_at: datetime, now: datetime) -> SummonsStatus:
    """待报到 until the deadline, 未报到 after it; a report-in is on time or late."""
    if summons.reported_at is None:
        return SummonsStatus.WAITING if now <= due_at else SummonsStatus.MISSED
    return SummonsStatus.ON_TIME if summons.reported_at <= due_at else SummonsStatus.LATE


def _out(session: Session, settings: Settings, whistle: Whistle, now: datetime) -> WhistleOut:
    user_ids = {whistle.blown_by_user_id} | {
        s.reported_by_user_id for s in whistle.summonses if s.reported_by_user_id
    }
    people = {
        uid: PersonRef(user_id=uid, display_name=name)
        for uid, name in session.execute(
            select(User.id, User.display_name).where(User.id.in_(user_ids))
        )
    }
    units = {
        u.id: UnitBrief.model_validate(u)
        for u in session.scalars(
            select(Unit).where(Unit.id.in_([s.unit_id for s in whistle.summonses]))
        )
    }
    segment = session.get(RoadSegment, whistle.segment_id)
    assert segment is not None
    street = session.get(Jurisdiction, segment.street_id)
    category = routing_context(session).taxonomy.get(whistle.category_code)
    point = to_shape(whistle.geom)
    summonses = []
    for s in whistle.summonses:
        status = status_of(s, whistle.report_in_due_at, now)
        summonses.append(
            SummonsOut(
                unit=units[s.unit_id],
                status=status,
                reported_at=s.reported_at,
                reported_by=people.get(s.reported_by_user_id) if s.reported_by_user_id else None,
                minutes_to_report=round((s.reported_at - whistle.blown_at).total_seconds() / 60, 1)
                if s.reported_at
                else None,
                distance_m=s.report_distance_m,
                note=s.report_note,
            )
        )
    counts = Counter(s.status for s in summonses)
    return WhistleOut(
        id=whistle.id,
        blown_at=whistle.blown_at,
        blown_by=people[whistle.blown_by_user_id],
        segment_code=segment.code,
        segment_name=segment.name,
        street=PlaceRef(code=street.code, name=street.name, level=JurisdictionLevel.STREET)
        if street
        else None,
        lon=point.x,
        lat=point.y,
        category_code=whistle.category_code,
        category_name=category.name if category else whistle.category_code,
        description=whistle.description,
        report_in_due_at=whistle.report_in_due_at,
        case_number=session.scalar(
            select(Case.number)
            .join(WhistleCase, WhistleCase.case_id == Case.id)
            .where(WhistleCase.whistle_id == whistle.id)
        ),
        summonses=summonses,
        counts={status: counts.get(status, 0) for status in SummonsStatus},
    )


def get_whistle(
    session: Session, principal: Principal, settings: Settings, whistle_id: int
) -> WhistleOut:
    return _out(session, settings, _load(session, principal, whistle_id), utcnow())


def list_whistles(
    session: Session,
    principal: Principal,
    settings: Settings,
    *,
    unit_code: str | None,
    segment_code: str | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[WhistleOut], str | None]:
    """Newest first, within the caller's sight; filter by a summoned unit or a segment."""
    principal.require(Permission.WHISTLES_READ)
    query = select(Whistle).where(_visible(principal)).options(selectinload(Whistle.summonses))
    if unit_code is not None:
        query = query.where(_summons(unit_code))
    if segment_code is not None:
        query = query.join(RoadSegment, Whistle.segment_id == RoadSegment.id).where(
            RoadSegment.code == segment_code
        )
    rows, next_cursor = NEWEST_FIRST.scalars(session, query, limit=limit, cursor=cursor)
    now = utcnow()
    return [_out(session, settings, w, now) for w in rows], next_cursor


def _already_reported(summons: WhistleSummons, settings: Settings) -> AlreadyReportedIn:
    assert summons.reported_at is not None
    return AlreadyReportedIn(f"已于 {to_local(summons.reported_at):%Y-%m-%d %H:%M} 报到")


def _record_report_in(
    session: Session,
    settings: Settings,
    principal: Principal,
    case_id: int,
    whistle: Whistle,
    summons: WhistleSummons,
    now: datetime,
) -> None:
    case = session.get(Case, case_id)
    assert case is not None
    record_event(
        session, settings, case, CaseEventKind.WHISTLE_REPORTED_IN,
        occurred_at=now, actor_user_id=principal.user_id,
        actor_role=Role.DEPARTMENT_STAFF.value, note=summons.report_note,
        geom=summons.report_geom,
        detail={
            "whistle_id": whistle.id,
            "unit_id": summons.unit_id,
            "status": status_of(summons, whistle.report_in_due_at, now).value,
            "distance_m": summons.report_distance_m,
        },
    )  # fmt: skip


def report_in(
    session: Session,
    principal: Principal,
    settings: Settings,
    whistle_id: int,
    body: ReportInCreate,
    idempotency_key: str | None,
) -> Idempotent[WhistleOut]:
    """A summoned unit reports in on site (报到): near the place, once; late is recorded."""
    principal.require(Permission.WHISTLES_REPORT_IN)
    unit_code = body.unit_code or principal.unit_code
    if unit_code is None:
        raise UnknownUnit("请指明报到的单位（unit_code）")
    principal.require_unit(unit_code)

    def create() -> WhistleOut:
        # Near the place is what counts, even just across the district's border.
        lon, lat = wgs84_in_area(settings, body)
        whistle = _load(session, principal, whistle_id)
        unit_id = session.scalar(select(Unit.id).where(Unit.code == unit_code))
        summons = next((s for s in whistle.summonses if s.unit_id == unit_id), None)
        if summons is None:
            raise NotSummoned(f"此次吹哨没有召集“{unit_code}”", unit_code=unit_code)
        if summons.reported_at is not None:
            raise _already_reported(summons, settings)
        place = to_shape(whistle.geom)
        distance = round(LocalFrame(place.x, place.y).distance_m(Point(lon, lat)), 2)
        if distance > settings.whistle_report_in_radius_m:
            raise TooFarFromPlace(
                f"您距吹哨地点 {distance:.0f} 米，须在 "
                f"{settings.whistle_report_in_radius_m:.0f} 米以内报到",
                distance_m=distance,
            )
        now = utcnow()
        # Conditional on "not yet reported": of two staff reporting in at once, one wins.
        claimed = session.execute(
            update(WhistleSummons)
            .where(WhistleSummons.id == summons.id, WhistleSummons.reported_at.is_(None))
            .values(
                reported_at=now,
                reported_by_user_id=principal.user_id,
                report_geom=from_shape(Point(lon, lat), srid=4326),
                report_accuracy_m=body.accuracy_m,
                report_distance_m=distance,
                report_note=body.note,
            )
        )
        session.refresh(summons)
        if rows_changed(claimed) != 1:
            raise _already_reported(summons, settings)
        case_id = session.scalar(
            select(WhistleCase.case_id).where(WhistleCase.whistle_id == whistle.id)
        )
        if case_id is not None:
            _record_report_in(session, settings, principal, case_id, whistle, summons, now)
        return _out(session, settings, whistle, now)

    return run_idempotent(
        session,
        principal.ref,
        f"whistles.{whistle_id}.report_in",
        idempotency_key,
        body,
        create,
        status_code=200,
    )
