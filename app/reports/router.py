"""Reports from the phone: submit (JSON or multipart), resend a queue, list my own."""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Query, status
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from app.access.deps import PrincipalDep
from app.cases.schemas import NearbyCase
from app.core.bodies import body_limit
from app.core.coords import PointIn
from app.core.deps import SessionDep, SettingsDep
from app.core.errors import (
    FieldError,
    NotFound,
    ValidationFailed,
    field_errors_from_pydantic,
    problem_responses,
)
from app.core.idempotency import (
    IdempotencyKeyHeader,
    IdempotencyKeyReused,
    idempotent_answer,
)
from app.core.inputs import DatabaseId
from app.core.pagination import DEFAULT_PAGE_SIZE, Cursor, Page, PageSize
from app.core.routes import api_router
from app.media.router import PHOTO_PROBLEMS
from app.media.service import (
    StagedUpload,
    UnknownPhoto,
    discard,
    media_storage,
    stage_upload,
)
from app.patrols.service import PatrolMismatch
from app.reports import service
from app.reports.schemas import (
    BatchIn,
    BatchOut,
    ReportDetail,
    ReportForm,
    ReportFormBase,
    ReportIn,
    ReportReceipt,
    ReportSummary,
)
from app.routing.router import ROUTE_PROBLEMS

router = api_router(prefix="/api/v1/reports", tags=["reports"])
cases_router = api_router(prefix="/api/v1/cases", tags=["cases"])

REPORT_PROBLEMS = (
    *ROUTE_PROBLEMS,
    *PHOTO_PROBLEMS,
    service.DeviceTimeInFuture,
    service.LocationTooInaccurate,
    service.TooManyPhotos,
    service.PhotoRequired,
    service.AfterPhotoRequired,
    UnknownPhoto,
    service.DuplicateCaseInvalid,
    service.DuplicateCaseTooFar,
    PatrolMismatch,
    IdempotencyKeyReused,
)


@router.post(
    "",
    summary="Submit a report whose photos were uploaded first (two-step flow)",
    status_code=status.HTTP_201_CREATED,
    response_model=ReportReceipt,
    responses=problem_responses(*REPORT_PROBLEMS),
)
def submit_report(
    session: SessionDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    body: ReportIn,
    idempotency_key: IdempotencyKeyHeader = None,
) -> ReportReceipt | JSONResponse:
    """Upload each photo with `POST /api/v1/photos`, then send their ids here. Send an
    `Idempotency-Key` (a fresh UUID per report) and resend it on retries: a retry gets the
    first answer (`Idempotent-Replayed: true`), never a second report. A report of an open
    case's problem nearby joins that case (`duplicate: true`)."""
    return idempotent_answer(
        service.submit_report(session, settings, principal, body, idempotency_key=idempotency_key)
    )


@router.post(
    "/multipart",
    summary="Submit a report with its photos in one multipart/form-data request",
    status_code=status.HTTP_201_CREATED,
    response_model=ReportReceipt,
    responses=problem_responses(*REPORT_PROBLEMS),
)
@body_limit(lambda s: s.report_max_photos * s.photo_max_bytes + s.body_max_bytes)
def submit_report_multipart(
    session: SessionDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    form: Annotated[ReportForm, Form(media_type="multipart/form-data")],
    idempotency_key: IdempotencyKeyHeader = None,
) -> ReportReceipt | JSONResponse:
    """The report's fields as form fields (those of `POST /reports` but `photos`), with the
    photos as files; the older `report` field with the whole report as JSON still works.
    Photos are streamed to disk as they arrive, then checked one by one."""
    body = _report_of(form)
    photos, after_photos = form.photos, form.after_photos
    storage = media_storage(settings)
    staged: list[StagedUpload] = []
    try:
        before = [stage_upload(f.file, storage, settings.photo_max_bytes) for f in photos]
        staged += before
        after = [stage_upload(f.file, storage, settings.photo_max_bytes) for f in after_photos]
        staged += after
    except BaseException:
        discard(staged)
        raise
    return idempotent_answer(
        service.submit_report(
            session,
            settings,
            principal,
            body,
            staged_before=before,
            staged_after=after,
            idempotency_key=idempotency_key,
        )
    )


def _report_of(form: ReportFormBase) -> ReportIn:
    sent = form.fields_sent()
    if form.report is not None and sent:
        raise ValidationFailed(
            "请逐项填写上报字段，或只用已弃用的 report 字段，不能同时使用",
            errors=[
                FieldError(loc=["body", name], code="extra_forbidden", message="与 report 重复")
                for name in sorted(sent)
            ],
        )
    try:
        if form.report is not None:
            return ReportIn.model_validate_json(form.report)
        return ReportIn.model_validate(form.model_dump(include=sent))
    except ValidationError as exc:
        where = ("report",) if form.report is not None else ("body",)
        raise ValidationFailed(
            "report 字段有误" if form.report is not None else "上报字段有误",
            errors=field_errors_from_pydantic(exc.errors(), where),
        ) from None


@router.post(
    "/batch",
    summary="Send the offline queue: each report with its own key, answered one by one",
    response_model=BatchOut,
    responses=problem_responses(),
)
def submit_batch(
    session: SessionDep, settings: SettingsDep, principal: PrincipalDep, body: BatchIn
) -> BatchOut:
    """Upload the photos first. Safe to resend whole: items already taken answer 200 with
    their first receipt, new ones 201, bad ones their problem."""
    return service.submit_batch(session, settings, principal, body)


@router.get(
    "/mine",
    summary="My reports, newest first, with their cases' status",
    response_model=Page[ReportSummary],
    responses=problem_responses(),
)
def my_reports(
    session: SessionDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    limit: PageSize = DEFAULT_PAGE_SIZE,
    cursor: Cursor = None,
) -> Page[ReportSummary]:
    items, next_cursor = service.my_reports(
        session, settings, principal, limit=limit, cursor=cursor
    )
    return Page(items=items, next_cursor=next_cursor)


@router.get(
    "/{report_id}",
    summary="One report with its photos, evidence flags and its case's history",
    response_model=ReportDetail,
    responses=problem_responses(NotFound),
)
def get_report(
    session: SessionDep, settings: SettingsDep, principal: PrincipalDep, report_id: DatabaseId
) -> ReportDetail:
    return service.get_report(session, settings, principal, report_id)


@cases_router.get(
    "/nearby",
    summary="Open cases of a category near a point: is it already reported?",
    response_model=list[NearbyCase],
    responses=problem_responses(*ROUTE_PROBLEMS),
)
def nearby_cases(
    session: SessionDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    category: Annotated[str, Query(description="The category code about to be reported.")],
    point: Annotated[PointIn, Query()],
    radius_m: Annotated[float | None, Query(gt=0, le=500)] = None,
) -> list[NearbyCase]:
    """Ask before submitting; pass the chosen case's number as `duplicate_of`."""
    return service.nearby_open_cases(
        session,
        settings,
        principal,
        category_code=category,
        point=point,
        radius_m=radius_m,
    )
