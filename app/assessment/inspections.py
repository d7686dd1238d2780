"""Field inspections (第三方考评): an assessor walks a segment and deducts points against the
checklist. Each deduction is placed near the segment and photographed, charged to the
department the routing rules give its category there, and may open a case at once.

An inspection is one transaction: the inspection, its deductions and photos, and the
reports of deductions marked `open_case`. A retry with the same `Idempotency-Key` gets the
first answer back. Assessors write only their own inspections; everyone in scope reads.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import timedelta
from statistics import fmean
from typing import TYPE_CHECKING, Any

from geoalchemy2.shape import from_shape, to_shape
from shapely.geometry import LineString, Point
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.access.rules import Permission, Principal, SignedIn
from app.accounts.models import User
from app.assessment.checklist import Checklist, checklist
from app.assessment.models import Inspection, InspectionDeduction, InspectionPhoto
from app.assessment.schemas import (
    DeductionIn,
    DeductionOut,
    InspectionIn,
    InspectionOut,
    InspectionScoreRow,
    InspectionScores,
)
from app.assessment.service import Period, UnknownFilter, snapshot
from app.cases.models import Case, CaseSource
from app.core.coords import PointIn
from app.core.database import utcnow
from app.core.errors import NotFound, Problem
from app.core.geo import LocalFrame
from app.core.idempotency import Idempotent, run_idempotent
from app.core.pagination import Keyset
from app.media.models import Photo
from app.media.service import photo_out, usable_photos, use_photo
from app.reports.models import Report
from app.reports.schemas import PhotoRef, ReportIn
from app.reports.service import check_not_ahead, file_report
from app.routing.service import decide_on_facts, gather_facts, routing_context
from app.routing.taxonomy import require_leaf
from app.territory.locator import wgs84_in_area
from app.territory.models import ExcellenceGrade, Jurisdiction, RoadSegment, Unit
from app.territory.service import in_sight

if TYPE_CHECKING:
    from app.settings import Settings


class BadInspectionTime(Problem):
    code = "bad_inspection_time"
    status = 422
    title = "考评时间无效"


class UnknownChecklistItem(Problem):
    code = "unknown_checklist_item"
    status = 422
    title = "考评标准中没有该项"


class DeductionPhotoRequired(Problem):
    code = "deduction_photo_required"
    status = 422
    title = "每项扣分须附现场照片"


class DeductionOffSegment(Problem):
    code = "deduction_off_segment"
    status = 422
    title = "扣分位置不在该路段附近"


#: Inspections newest first.
NEWEST_FIRST = Keyset(Inspection.id, descending=True)


def record_inspection(
    session: Session,
    settings: Settings,
    principal: SignedIn,
    body: InspectionIn,
    idempotency_key: str | None,
) -> Idempotent[InspectionOut]:
    principal.require(Permission.INSPECTIONS_RECORD)
    # A refused deduction leaves no inspection and no report behind (run_idempotent rolls
    # back).
    return run_idempotent(
        session, principal.ref, "assessment.inspections.create", idempotency_key, body,
        lambda: _create(session, settings, principal, body),
    )  # fmt: skip


def _check_times(settings: Settings, body: InspectionIn) -> None:
    now = utcnow()
    check_not_ahead(settings, body.ended_at, "考评结束时间", now)
    if body.ended_at < body.started_at:
        raise BadInspectionTime("结束时间早于开始时间")
    if body.started_at < now - timedelta(hours=settings.inspection_late_hours):
        raise BadInspectionTime(
            f"考评须在 {settings.inspection_late_hours:g} 小时内录入", code_detail="too_late"
        )


def _checked(
    settings: Settings, items: Checklist, segment: RoadSegment, deductions: Sequence[DeductionIn]
) -> list[tuple[Any, Any, float, float, float]]:
    """(category, item, lon, lat, metres from the segment) per deduction; 422 otherwise."""
    line = to_shape(segment.geom)
    out = []
    for index, d in enumerate(deductions):
        found = items.item(d.item_code)
        if found is None:
            raise UnknownChecklistItem(
                f"第 {index + 1} 项扣分“{d.item_code}”不在《{items.name}》中", index=index
            )
        if not d.photo_ids:
            raise DeductionPhotoRequired(f"第 {index + 1} 项扣分须附照片", index=index)
        lon, lat = wgs84_in_area(settings, d)
        distance = round(LocalFrame(lon, lat).distance_m(line), 1)
        if distance > settings.inspection_radius_m:
            raise DeductionOffSegment(
                f"第 {index + 1} 项扣分距路段 {distance:.0f} 米，"
                f"须在 {settings.inspection_radius_m:.0f} 米以内",
                index=index, distance_m=distance,
            )  # fmt: skip
        out.append((found[0], found[1], lon, lat, distance))
    return out


def _charged_unit(
    session: Session, settings: Settings, case_category: str, lon: float, lat: float
) -> int | None:
    """The lead unit the routing rules give this category at this point."""
    routing = routing_context(session)
    facts = gather_facts(session, settings, routing, require_leaf(routing.taxonomy, case_category),
                         lon, lat, None)  # fmt: skip
    decision = decide_on_facts(session, routing, facts, settings.zone)
    if not decision.out.lead_units:
        return None
    return session.scalar(select(Unit.id).where(Unit.code == decision.out.lead_units[0].code))


def _create(
    session: Session, settings: Settings, principal: Principal, body: InspectionIn
) -> InspectionOut:
    segment, path = in_sight(session, principal, RoadSegment, body.segment_code, "路段")
    _check_times(settings, body)
    items = checklist(settings)
    placed = _checked(settings, items, segment, body.deductions)
    track = None
    if body.track:
        points = [
            wgs84_in_area(
                settings, PointIn(lon=lon, lat=lat, coordinate_system=body.coordinate_system)
            )
            for lon, lat in body.track
        ]
        track = from_shape(LineString(points), srid=4326)
    photos = [usable_photos(session, principal, d.photo_ids) for d in body.deductions]
    deducted = sum(item.deduction * d.count for d, (_, item, *_) in zip(body.deductions, placed,
                                                                       strict=True))  # fmt: skip
    inspection = Inspection(
        user_id=principal.user_id, segment_id=segment.id, jurisdiction_path=path,
        started_at=body.started_at, ended_at=body.ended_at, received_at=utcnow(), track=track,
        note=body.note, checklist_name=items.name, deducted=round(deducted, 2),
        score=round(max(0.0, 100 - deducted), 2),
    )  # fmt: skip
    session.add(inspection)
    session.flush()
    for d, (category, item, lon, lat, distance), pictures in zip(body.deductions, placed, photos,
                                                                 strict=True):  # fmt: skip
        row = InspectionDeduction(
            inspection_id=inspection.id, item_code=item.code, category_code=category.code,
            count=d.count, points=round(item.deduction * d.count, 2), note=d.note,
            geom=from_shape(Point(lon, lat), srid=4326), distance_m=distance,
            unit_id=_charged_unit(session, settings, item.case_category, lon, lat),
        )  # fmt: skip
        session.add(row)
        session.flush()
        for position, photo in enumerate(dict.fromkeys(pictures)):
            session.add(InspectionPhoto(deduction_id=row.id, photo_id=photo.id, position=position))
            use_photo(session, photo, f"inspection:{inspection.id}", path)
        if d.open_case:
            receipt = file_report(session, settings, principal, ReportIn(
                category_code=item.case_category,
                description=f"【考评扣分】{segment.name} {item.name}：{d.note or item.standard}",
                lon=d.lon, lat=d.lat, coordinate_system=d.coordinate_system,
                urgency=d.urgency, device_time=body.ended_at,
                photos=[PhotoRef(photo_id=i) for i in dict.fromkeys(d.photo_ids)],
            ), source=CaseSource.INSPECTION)  # fmt: skip
            row.report_id = receipt.report_id
    session.flush()
    return inspection_out(session, settings, inspection)


def inspection_out(session: Session, settings: Settings, inspection: Inspection) -> InspectionOut:
    segment = session.get_one(RoadSegment, inspection.segment_id)
    user = session.get_one(User, inspection.user_id)
    items = checklist(settings)
    rows = session.execute(
        select(InspectionDeduction, Unit.code, Case.number)
        .outerjoin(Unit, InspectionDeduction.unit_id == Unit.id)
        .outerjoin(Report, InspectionDeduction.report_id == Report.id)
        .outerjoin(Case, Report.case_id == Case.id)
        .where(InspectionDeduction.inspection_id == inspection.id)
        .order_by(InspectionDeduction.id)
    ).all()
    pictures: dict[int, list[Photo]] = defaultdict(list)
    if rows:
        for deduction_id, photo in session.execute(
            select(InspectionPhoto.deduction_id, Photo)
            .join(Photo, InspectionPhoto.photo_id == Photo.id)
            .where(InspectionPhoto.deduction_id.in_([r[0].id for r in rows]))
            .order_by(InspectionPhoto.deduction_id, InspectionPhoto.position)
        ):
            pictures[deduction_id].append(photo)
    deductions = []
    for row, unit_code, case_number in rows:
        found = items.item(row.item_code)
        point = to_shape(row.geom)
        deductions.append(
            DeductionOut(
                item_code=row.item_code, item_name=found[1].name if found else row.item_code,
                category_code=row.category_code, count=row.count, points=row.points,
                note=row.note, lon=point.x, lat=point.y, distance_m=row.distance_m,
                unit_code=unit_code, case_number=case_number,
                photos=[photo_out(p, settings) for p in pictures[row.id]],
            )
        )  # fmt: skip
    return InspectionOut(
        id=inspection.id, segment_code=segment.code, segment_name=segment.name,
        assessor=user.username, started_at=inspection.started_at,
        ended_at=inspection.ended_at, note=inspection.note,
        checklist_name=inspection.checklist_name, deducted=inspection.deducted,
        score=inspection.score, has_track=inspection.track is not None, deductions=deductions,
    )  # fmt: skip


def get_inspection(
    session: Session, settings: Settings, principal: Principal, inspection_id: int
) -> InspectionOut:
    principal.require(Permission.CASES_READ)
    inspection = session.get(Inspection, inspection_id)
    if inspection is None or not principal.sees_path(inspection.jurisdiction_path):
        raise NotFound("考评记录不存在")
    return inspection_out(session, settings, inspection)


def list_inspections(
    session: Session,
    settings: Settings,
    principal: Principal,
    *,
    period: Period,
    segment: str | None,
    assessor: str | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[InspectionOut], str | None]:
    principal.require(Permission.CASES_READ)
    query = select(Inspection).where(
        Inspection.started_at >= period.start, Inspection.started_at < period.end,
        principal.path_filter(Inspection.jurisdiction_path),
    )  # fmt: skip
    if segment is not None:
        query = query.join(RoadSegment, Inspection.segment_id == RoadSegment.id).where(
            RoadSegment.code == segment
        )
    if assessor is not None:
        query = query.join(User, Inspection.user_id == User.id).where(User.username == assessor)
    rows, next_cursor = NEWEST_FIRST.scalars(session, query, limit=limit, cursor=cursor)
    return [inspection_out(session, settings, r) for r in rows], next_cursor


# --- scores -------------------------------------------------------------------------------


def excellence_grade(settings: Settings, score: float | None) -> ExcellenceGrade | None:
    """The "千百十" grade a segment's inspection score earns (thresholds are configuration)."""
    if score is None:
        return None
    thresholds = [(value, grade) for grade, value in settings.excellence_thresholds.items()]
    for threshold, grade in sorted(thresholds, reverse=True):
        if score >= threshold:
            return grade
    return None


def inspection_scores(
    session: Session,
    settings: Settings,
    principal: Principal,
    *,
    by: str,
    period: Period,
    street: str | None = None,
) -> InspectionScores:
    """Scores rolled up from the period's inspections: a segment's is the mean of its
    inspections; a street's the mean of its inspected segments'; a department's is 100
    minus the points charged to it per inspection made in the area read."""
    principal.require(Permission.CASES_READ)
    if street is None and (frozen := snapshot(session, principal, period.date_from,
                                               period.date_to, f"inspections:{by}")):  # fmt: skip
        return InspectionScores.model_validate(frozen)
    query = (
        select(Inspection.id, Inspection.score, RoadSegment.code, RoadSegment.name,
               Jurisdiction.code.label("street"), Jurisdiction.name.label("street_name"))
        .join(RoadSegment, Inspection.segment_id == RoadSegment.id)
        .join(Jurisdiction, RoadSegment.street_id == Jurisdiction.id)
        .where(Inspection.started_at >= period.start, Inspection.started_at < period.end,
               principal.path_filter(Inspection.jurisdiction_path))
    )  # fmt: skip
    if street is not None:
        if session.scalar(select(Jurisdiction.id).where(Jurisdiction.code == street)) is None:
            raise UnknownFilter(f"街道“{street}”不存在", value=street)
        query = query.where(Jurisdiction.code == street)
    inspections = session.execute(query).all()
    segments: dict[str, list[float]] = defaultdict(list)
    names: dict[str, str] = {}
    street_of: dict[str, str] = {}
    for row in inspections:
        segments[row.code].append(row.score)
        names[row.code], names[row.street] = row.name, row.street_name
        street_of[row.code] = row.street
    rows: list[InspectionScoreRow] = []
    if by == "segment":
        for code, scores in segments.items():
            mean = round(fmean(scores), 2)
            grade = excellence_grade(settings, mean)
            rows.append(InspectionScoreRow(key=code, name=names[code], inspections=len(scores),
                                           score=mean, grade=grade))  # fmt: skip
    elif by == "street":
        per_street: dict[str, list[float]] = defaultdict(list)
        counts: dict[str, int] = defaultdict(int)
        for code, scores in segments.items():
            per_street[street_of[code]].append(fmean(scores))
            counts[street_of[code]] += len(scores)
        for code, means in per_street.items():
            rows.append(InspectionScoreRow(key=code, name=names[code], inspections=counts[code],
                                           score=round(fmean(means), 2), grade=None))  # fmt: skip
    else:
        charged: dict[int, float] = defaultdict(float)
        ids = [row.id for row in inspections]
        for start in range(0, len(ids), 1000):
            for unit_id, points in session.execute(
                select(InspectionDeduction.unit_id, InspectionDeduction.points).where(
                    InspectionDeduction.inspection_id.in_(ids[start : start + 1000]),
                    InspectionDeduction.unit_id.is_not(None),
                )
            ):
                charged[unit_id or 0] += points  # never 0: the query's filter
        units = {u.id: u for u in session.scalars(select(Unit).where(Unit.id.in_(list(charged))))}
        for unit_id, points in charged.items():
            per_inspection = points / len(ids)
            rows.append(InspectionScoreRow(
                key=units[unit_id].code, name=units[unit_id].name, inspections=len(ids),
                score=round(max(0.0, 100 - per_inspection), 2), grade=None,
            ))  # fmt: skip
    rows.sort(key=lambda r: (-r.score, r.key))
    return InspectionScores(by=by, date_from=period.date_from, date_to=period.date_to,
                            inspections=len(inspections), rows=rows)  # fmt: skip
