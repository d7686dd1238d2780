"""Report intake: check, place, route, store with photos, answer the phone. All or nothing.

A report is one transaction: its photos' rows, the report, the case it opens (with the
routing decision) or joins, the history event and the idempotency record commit together;
if anything fails, the transaction rolls back and the photo files written for it are
removed (`PendingFiles.undo`). A retry with the same `Idempotency-Key` gets the first
answer back instead of a second report.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from geoalchemy2.shape import from_shape, to_shape
from pydantic import BaseModel, ValidationError
from shapely.geometry import Point
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.access.rules import Permission, Principal
from app.cases.models import FINISHED_STATUSES, Case, CaseEventKind, CaseSource
from app.cases.opening import open_case, record_opening
from app.cases.relations import may_see_case
from app.cases.schemas import NearbyCase
from app.cases.service import (
    count_joined_report,
    history,
    nearby_cases,
    open_cases_near,
    record_event,
)
from app.core.coords import PointIn
from app.core.database import utcnow
from app.core.errors import (
    NotFound,
    Problem,
    ProblemBody,
    ValidationFailed,
    field_errors_from_pydantic,
)
from app.core.geo import LocalFrame
from app.core.idempotency import Idempotent, Replay, run_idempotent
from app.core.metrics import PHOTOS_PROCESSED
from app.core.moments import to_local
from app.core.pagination import Keyset
from app.media.models import Photo
from app.media.service import (
    PendingFiles,
    ProcessedUpload,
    StagedUpload,
    discard,
    media_storage,
    photo_out,
    process_upload,
    store_photo,
    thumbnail_url,
    usable_photos,
    use_photo,
)
from app.patrols.service import link_report
from app.reports.models import PhotoRole, Report, ReportPhoto
from app.reports.schemas import (
    BatchIn,
    BatchItemResult,
    BatchOut,
    LinkedReportIn,
    ReportDetail,
    ReportIn,
    ReportPhotoOut,
    ReportReceipt,
    ReportSummary,
    SegmentBrief,
)
from app.routing.models import RoutingDecision, Urgency
from app.routing.schemas import RoutingDecisionOut
from app.routing.service import decide_on_facts, decision_out, gather_facts
from app.routing.service import routing_context as current_routing
from app.routing.taxonomy import require_leaf
from app.standards.service import category_named, national_code_of
from app.territory.locator import wgs84_in_area

if TYPE_CHECKING:
    from app.settings import Settings

#: The caller's reports, newest first.
NEWEST_FIRST = Keyset(Report.id, descending=True)


class DeviceTimeInFuture(Problem):
    code = "device_time_in_future"
    status = 422
    title = "设备时间晚于服务器时间：请校准手机时间"


class LocationTooInaccurate(Problem):
    code = "location_too_inaccurate"
    status = 422
    title = "定位精度太差：请到开阔处重新定位"


class TooManyPhotos(Problem):
    code = "too_many_photos"
    status = 422
    title = "照片数量超过上限"


class PhotoRequired(Problem):
    code = "photo_required"
    status = 422
    title = "该类问题须附现场照片"


class AfterPhotoRequired(Problem):
    code = "after_photo_required"
    status = 422
    title = "当场整改须附整改后照片"


class DuplicateCaseInvalid(Problem):
    code = "duplicate_case_invalid"
    status = 422
    title = "所选的重复案件不存在、已结案或类别不同"


class DuplicateCaseTooFar(Problem):
    code = "duplicate_case_too_far"
    status = 422
    title = "上报位置离所选的重复案件太远"


class ReportFingerprint(BaseModel):
    """What makes two requests "the same report": the body and the photos' bytes."""

    report: ReportIn
    before: list[str]
    after: list[str]


def submit_report(
    session: Session,
    settings: Settings,
    principal: Principal,
    body: ReportIn,
    *,
    staged_before: Sequence[StagedUpload] = (),
    staged_after: Sequence[StagedUpload] = (),
    idempotency_key: str | None = None,
) -> Idempotent[ReportReceipt]:
    """Take one report (JSON with photo ids, or multipart with the photos themselves)."""
    principal.require(Permission.REPORTS_SUBMIT)
    pending = PendingFiles(media_storage(settings))
    fingerprint = ReportFingerprint(
        report=body,
        before=[s.sha256 for s in staged_before],
        after=[s.sha256 for s in staged_after],
    )
    try:
        _check_input(settings, body, len(body.photos) + len(staged_before) + len(staged_after))
        # Pillow's work comes before the transaction, which then only writes rows.
        before = [process_upload(settings, s, pending) for s in staged_before]
        after = [process_upload(settings, s, pending) for s in staged_after]
        PHOTOS_PROCESSED.inc(len(before) + len(after))
        result = run_idempotent(
            session,
            principal.ref,
            "reports.create",
            idempotency_key,
            fingerprint,
            lambda: _create(session, settings, principal, body, before, after, pending),
        )
    except BaseException:
        session.rollback()
        pending.undo(session)
        raise
    finally:
        discard([*staged_before, *staged_after])
    return result


def file_report(
    session: Session,
    settings: Settings,
    principal: Principal,
    body: ReportIn,
    source: CaseSource = CaseSource.REPORT,
) -> ReportReceipt:
    """File a report (photos by id) inside the caller's transaction, which commits it: for
    a step that reports as part of a larger record, such as a shop visit's failed item or an
    inspection's deduction (`source` says what a new case came from). The caller checks its
    own permission for that step."""
    _check_input(settings, body, len(body.photos))
    pending = PendingFiles(media_storage(settings))
    return _create(session, settings, principal, body, (), (), pending, source)


def check_not_ahead(settings: Settings, moment: datetime, what: str, now: datetime) -> None:
    """A phone's time may run ahead of ours by the allowed skew, no more (422)."""
    if moment > now + timedelta(minutes=settings.device_clock_skew_minutes):
        raise DeviceTimeInFuture(
            f"{what} {to_local(moment):%Y-%m-%d %H:%M} 晚于现在：请校准手机时间",
            device_time=moment.isoformat(),
        )


def _check_input(settings: Settings, body: ReportIn, photo_count: int) -> None:
    """What a report must be whatever the database holds: checked before any work."""
    check_not_ahead(settings, body.device_time, "设备时间", utcnow())
    if body.accuracy_m is not None and body.accuracy_m > settings.report_max_accuracy_m:
        raise LocationTooInaccurate(
            f"定位误差 {body.accuracy_m:.0f} 米，须不超过 {settings.report_max_accuracy_m:.0f} 米"
        )
    if photo_count > settings.report_max_photos:
        raise TooManyPhotos(
            f"一次最多 {settings.report_max_photos} 张照片，收到 {photo_count} 张",
            max_photos=settings.report_max_photos,
        )


def _referenced_photos(
    session: Session, principal: Principal, refs: Sequence[Any]
) -> list[tuple[Photo, PhotoRole]]:
    photos = usable_photos(session, principal, [r.photo_id for r in refs])
    return [(photo, ref.role) for photo, ref in zip(photos, refs, strict=True)]


def _create(
    session: Session,
    settings: Settings,
    principal: Principal,
    body: ReportIn,
    uploads_before: Sequence[ProcessedUpload],
    uploads_after: Sequence[ProcessedUpload],
    pending: PendingFiles,
    source: CaseSource = CaseSource.REPORT,
) -> ReportReceipt:
    now = utcnow()
    lon, lat = wgs84_in_area(settings, body)
    routing = current_routing(session)
    named = category_named(session, body.category_code, body.national_code)
    body = body.model_copy(update={"category_code": named})
    category = require_leaf(routing.taxonomy, named)
    links = [str(url) for url in body.media_urls] if isinstance(body, LinkedReportIn) else []
    roles = [r.role for r in body.photos] + [PhotoRole.BEFORE] * len(uploads_before)
    roles += [PhotoRole.AFTER] * len(uploads_after)
    if category.photo_required and PhotoRole.BEFORE not in roles and not links:
        raise PhotoRequired(f"“{category.name}”须至少附一张现场照片")
    if body.fixed_on_spot and PhotoRole.AFTER not in roles:
        raise AfterPhotoRequired()
    # Placing and routing also refuse a point outside every jurisdiction, a bad asset.
    facts = gather_facts(session, settings, routing, category, lon, lat, body.asset_code)
    decision = decide_on_facts(session, routing, facts, settings.zone)
    photos = _referenced_photos(session, principal, body.photos)
    for upload, role in [(u, PhotoRole.BEFORE) for u in uploads_before] + [
        (u, PhotoRole.AFTER) for u in uploads_after
    ]:
        photos.append((store_photo(session, principal, upload, pending), role))

    urgency = body.urgency or Urgency(category.default_urgency)
    case = _joined_case(session, settings, principal, body, category.code, lon, lat)
    point = from_shape(Point(lon, lat), srid=4326)
    if case is None:
        case = open_case(
            session, settings, principal, source=source, category=category, urgency=urgency,
            description=body.description, point=point, decision=decision, now=now,
            fixed_on_spot=body.fixed_on_spot,
        )  # fmt: skip
    else:
        count_joined_report(session, case)
    report = Report(
        reporter_user_id=principal.user_id,
        reporter_api_key_id=principal.api_key_id,
        media_urls=links,
        case_id=case.id,
        is_duplicate=case.report_count > 1,
        fixed_on_spot=body.fixed_on_spot,
        category_code=category.code,
        urgency=urgency,
        description=body.description,
        coordinate_system=body.coordinate_system,
        input_lon=body.lon,
        input_lat=body.lat,
        geom=point,
        accuracy_m=body.accuracy_m,
        asset_code=body.asset_code,
        device_time=body.device_time,
        received_at=now,
        jurisdiction_path=decision.jurisdiction_path,
    )
    session.add(report)
    session.flush()
    if body.patrol_id is not None:
        link_report(session, settings, principal, body.patrol_id, report.id, body.device_time)
    photo_rows = _attach_photos(session, settings, report, photos, lon, lat)
    _record_events(session, settings, principal, case, report, photo_rows, point)
    # A new case was routed just now; a joined one keeps the decision it was routed by.
    routed = None if report.is_duplicate else decision.out
    return _receipt(session, settings, report, case, photo_rows, routed)


def _joined_case(
    session: Session,
    settings: Settings,
    principal: Principal,
    body: ReportIn,
    category_code: str,
    lon: float,
    lat: float,
) -> Case | None:
    """The open case this report is a duplicate of: chosen by the reporter, or the
    nearest open one of the category within the duplicate radius. Either way a case the
    reporter may see, within the radius: joining is not a way into another street's case."""
    if body.duplicate_of is not None:
        case = session.scalar(select(Case).where(Case.number == body.duplicate_of))
        if (
            case is None
            or not may_see_case(session, principal, case)
            or case.status in FINISHED_STATUSES
            or case.category_code != category_code
        ):
            raise DuplicateCaseInvalid(
                f"案件“{body.duplicate_of}”不存在、已结束或不是“{category_code}”类问题"
            )
        place = to_shape(case.geom)
        distance = LocalFrame(lon, lat).distance_m(place)
        if distance > settings.duplicate_radius_m:
            raise DuplicateCaseTooFar(
                f"上报位置距案件“{case.number}” {distance:.0f} 米，"
                f"并案须在 {settings.duplicate_radius_m:.0f} 米以内",
                distance_m=round(distance, 1),
                max_distance_m=settings.duplicate_radius_m,
            )
        return case
    if body.fixed_on_spot:
        return None  # fixed already: its own case goes straight to verification
    near = open_cases_near(session, category_code, lon, lat, settings.duplicate_radius_m, principal)
    return near[0][1] if near else None


def _attach_photos(
    session: Session,
    settings: Settings,
    report: Report,
    photos: Sequence[tuple[Photo, PhotoRole]],
    lon: float,
    lat: float,
) -> list[tuple[ReportPhoto, Photo]]:
    frame = LocalFrame(lon, lat)
    rows = []
    seen: set[tuple[int, PhotoRole]] = set()
    for position, (photo, role) in enumerate(photos):
        if (photo.id, role) in seen:
            continue  # the same bytes sent twice are one photo
        seen.add((photo.id, role))
        distance = (
            round(frame.distance_m(Point(photo.exif_lon, photo.exif_lat)), 1)
            if photo.exif_lon is not None and photo.exif_lat is not None
            else None
        )
        age = (
            round((report.device_time - photo.taken_at).total_seconds() / 3600, 2)
            if photo.taken_at is not None
            else None
        )
        row = ReportPhoto(
            report_id=report.id,
            photo_id=photo.id,
            role=role,
            position=position,
            exif_distance_m=distance,
            exif_age_hours=age,
            taken_far_away=distance is not None and distance > settings.photo_far_m,
            taken_long_before=age is not None and age > settings.photo_old_hours,
        )
        session.add(row)
        use_photo(session, photo, f"report:{report.id}", report.jurisdiction_path)
        rows.append((row, photo))
    return rows


def _record_events(
    session: Session,
    settings: Settings,
    principal: Principal,
    case: Case,
    report: Report,
    photos: Sequence[tuple[ReportPhoto, Photo]],
    point: Any,
) -> None:
    before = [p.id for r, p in photos if r.role is PhotoRole.BEFORE]
    after = [p.id for r, p in photos if r.role is PhotoRole.AFTER]
    detail = {"report_id": report.id}
    if not report.is_duplicate:  # the case's opening, as its entry row says
        record_opening(session, settings, principal, case, note=report.description, geom=point,
                       detail=detail, photo_ids=before, fixed_photo_ids=after)  # fmt: skip
        return
    role = sorted(r.value for r in principal.roles)[0] if principal.roles else None
    record_event(
        session, settings, case, CaseEventKind.DUPLICATE_REPORTED, note=report.description,
        photo_ids=before, detail=detail, actor_user_id=principal.user_id, actor_role=role,
        geom=point,
    )  # fmt: skip


def _decision_of(session: Session, settings: Settings, case: Case) -> RoutingDecisionOut | None:
    if case.routing_decision_id is None:
        return None
    row = session.get(RoutingDecision, case.routing_decision_id)
    return decision_out(session, settings, row) if row else None


def _receipt(
    session: Session,
    settings: Settings,
    report: Report,
    case: Case,
    photos: Sequence[tuple[ReportPhoto, Photo]],
    decision: RoutingDecisionOut | None = None,
) -> ReportReceipt:
    decision = decision or _decision_of(session, settings, case)
    facts = decision.facts if decision else None
    point = to_shape(report.geom)
    return ReportReceipt(
        report_id=report.id,
        received_at=report.received_at,
        case_number=case.number or "",
        case_status=case.status,
        duplicate=report.is_duplicate,
        fixed_on_spot=report.fixed_on_spot,
        lon=point.x,
        lat=point.y,
        street=facts.street if facts else None,
        community=facts.community if facts else None,
        grid_cell_code=facts.grid_cell_code if facts else None,
        segment=SegmentBrief.model_validate(facts.segment, from_attributes=True)
        if facts and facts.segment
        else None,
        nearby_assets=facts.nearby_assets if facts else [],
        lead_units=decision.lead_units if decision else [],
        cooperating_units=decision.cooperating_units if decision else [],
        territorial_unit=decision.territorial_unit if decision else None,
        handle_due_at=case.handle_due_at,
        stage=case.stage,
        stage_due_at=case.stage_due_at,
        photos=[
            ReportPhotoOut(
                role=row.role,
                photo=photo_out(photo, settings),
                exif_distance_m=row.exif_distance_m,
                exif_age_hours=row.exif_age_hours,
                taken_far_away=row.taken_far_away,
                taken_long_before=row.taken_long_before,
            )
            for row, photo in photos
        ],
    )


# --- reading ---------------------------------------------------------------------------------


def _first_thumbnails(session: Session, by: Any, ids: Sequence[int]) -> dict[int, str]:
    """The thumbnail URL of the first photo per `by` (`Report.id` or `Report.case_id`)."""
    rows = session.execute(
        select(by, ReportPhoto.photo_id)
        .join(ReportPhoto, ReportPhoto.report_id == Report.id)
        .where(by.in_(ids))
        .order_by(Report.id, ReportPhoto.position)
    ).all()
    first: dict[int, str] = {}
    for key, photo_id in rows:
        first.setdefault(key, thumbnail_url(photo_id))
    return first


def my_reports(
    session: Session, settings: Settings, principal: Principal, *, limit: int, cursor: str | None
) -> tuple[list[ReportSummary], str | None]:
    """The caller's own reports, newest first, with their cases' status."""
    principal.require(Permission.REPORTS_SUBMIT)
    query = (
        select(Report, Case.number, Case.status)
        .join(Case, Report.case_id == Case.id)
        .where(Report.reporter_user_id == principal.user_id)
    )
    page, next_cursor = NEWEST_FIRST.rows(session, query, limit=limit, cursor=cursor)
    thumbs = _first_thumbnails(session, Report.id, [r.id for r, _, _ in page])
    items = [
        ReportSummary(
            report_id=report.id,
            received_at=report.received_at,
            category_code=report.category_code,
            description=report.description,
            case_number=number or "",
            case_status=status,
            duplicate=report.is_duplicate,
            fixed_on_spot=report.fixed_on_spot,
            thumbnail_url=thumbs.get(report.id),
        )
        for report, number, status in page
    ]
    return items, next_cursor


def get_report(
    session: Session, settings: Settings, principal: Principal, report_id: int
) -> ReportDetail:
    """One report with its photos and its case's history: the reporter's own, or in scope."""
    principal.require(Permission.CASES_READ)
    report = session.get(Report, report_id)
    # A machine client's report has no reporting user: None never matches a caller.
    # A machine client's report has no reporting user, and a key is no user: never "own".
    own = (
        report is not None
        and report.reporter_user_id is not None
        and report.reporter_user_id == principal.user_id
    )
    if report is None or (not own and not principal.sees_path(report.jurisdiction_path)):
        raise NotFound("上报记录不存在")
    case = session.get(Case, report.case_id)
    assert case is not None
    photos = session.execute(
        select(ReportPhoto, Photo)
        .join(Photo, ReportPhoto.photo_id == Photo.id)
        .where(ReportPhoto.report_id == report.id)
        .order_by(ReportPhoto.position)
    ).all()
    case_visible = may_see_case(session, principal, case)
    receipt = _receipt(session, settings, report, case, [(r, p) for r, p in photos])
    if not case_visible:
        # The reporter's own report of a case outside their sight: the report, not the
        # case's routing, deadline or history.
        receipt = receipt.model_copy(
            update={
                "lead_units": [],
                "cooperating_units": [],
                "territorial_unit": None,
                "handle_due_at": None,
                "stage": None,
                "stage_due_at": None,
                "nearby_assets": [],
                "segment": None,
            }
        )
    return ReportDetail(
        **receipt.model_dump(),
        case_visible=case_visible,
        category_code=report.category_code,
        national_code=national_code_of(session, report.category_code),
        description=report.description,
        urgency=report.urgency,
        device_time=report.device_time,
        coordinate_system=report.coordinate_system,
        input_lon=report.input_lon,
        input_lat=report.input_lat,
        accuracy_m=report.accuracy_m,
        asset_code=report.asset_code,
        history=history(session, case.id) if case_visible else [],
    )


def nearby_open_cases(
    session: Session,
    settings: Settings,
    principal: Principal,
    *,
    category_code: str,
    point: PointIn,
    radius_m: float | None,
) -> list[NearbyCase]:
    """Open cases of the category near the point: "is this already reported?"."""
    principal.require(Permission.CASES_READ)
    lon, lat = wgs84_in_area(settings, point)
    require_leaf(current_routing(session).taxonomy, category_code)
    radius = radius_m or settings.duplicate_radius_m
    near = open_cases_near(session, category_code, lon, lat, radius, principal)
    first_photo = (
        _first_thumbnails(session, Report.case_id, [c.id for _, c in near]) if near else {}
    )
    return nearby_cases(settings, near, first_photo)


# --- the offline queue -------------------------------------------------------------------------


def submit_batch(
    session: Session, settings: Settings, principal: Principal, batch: BatchIn
) -> BatchOut:
    """Each queued report on its own, with its own key: one bad item refuses only itself,
    and resending the whole queue creates nothing twice."""
    principal.require(Permission.REPORTS_SUBMIT)
    results = []
    for item in batch.items:
        try:
            try:
                report = ReportIn.model_validate(item.report)
            except ValidationError as exc:
                raise ValidationFailed(
                    "该条上报有误", errors=field_errors_from_pydantic(exc.errors(), ("report",))
                ) from None
            answer = submit_report(
                session, settings, principal, report, idempotency_key=item.idempotency_key
            )
        except Problem as problem:
            results.append(
                BatchItemResult(
                    idempotency_key=item.idempotency_key,
                    status=problem.status,
                    problem=ProblemBody.model_validate(problem.body()),
                )
            )
            continue
        if isinstance(answer, Replay):
            receipt = answer.as_model(ReportReceipt)
            results.append(
                BatchItemResult(idempotency_key=item.idempotency_key, status=200, receipt=receipt)
            )
        else:
            results.append(
                BatchItemResult(idempotency_key=item.idempotency_key, status=201, receipt=answer)
            )
    return BatchOut(items=results)
