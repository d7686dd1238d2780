"""Whistles: a road chief summons departments (吹哨), they report in on site (报到)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, status
from fastapi.responses import JSONResponse

from app.access.deps import PrincipalDep
from app.core.deps import SessionDep, SettingsDep
from app.core.errors import NotFound, problem_responses
from app.core.idempotency import (
    IdempotencyKeyHeader,
    IdempotencyKeyReused,
    idempotent_answer,
)
from app.core.inputs import DatabaseId
from app.core.pagination import DEFAULT_PAGE_SIZE, Cursor, Page, PageSize
from app.core.routes import api_router
from app.routing.taxonomy import CategoryIsGroup, UnknownCategory
from app.territory.locator import InvalidLocation, OutsideServiceArea
from app.territory.service import UnknownUnit
from app.whistles import service
from app.whistles.schemas import ReportInCreate, WhistleCreate, WhistleOut

router = api_router(prefix="/api/v1/whistles", tags=["whistles"])


@router.post(
    "",
    summary="Blow the whistle: summon departments to a place on one of my segments",
    status_code=status.HTTP_201_CREATED,
    response_model=WhistleOut,
    responses=problem_responses(
        service.NotYourSegment,
        service.PlaceOffSegment,
        UnknownUnit,
        service.UnitNotSummonable,
        service.CaseFinished,
        NotFound,
        UnknownCategory,
        CategoryIsGroup,
        OutsideServiceArea,
        InvalidLocation,
        IdempotencyKeyReused,
    ),
)
def blow_whistle(
    session: SessionDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    body: WhistleCreate,
    idempotency_key: IdempotencyKeyHeader = None,
) -> WhistleOut | JSONResponse:
    """Road chiefs only, on a segment they are chief of. Send an `Idempotency-Key`: a
    retry then answers with the first whistle instead of blowing a second one."""
    return idempotent_answer(
        service.blow_whistle(session, principal, settings, body, idempotency_key)
    )


@router.get(
    "",
    summary="Whistles I can see, newest first (department staff: those summoning my unit)",
    response_model=Page[WhistleOut],
    responses=problem_responses(),
)
def list_whistles(
    session: SessionDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    unit: Annotated[str | None, Query(description="Only whistles summoning this unit.")] = None,
    segment: Annotated[str | None, Query(description="Only whistles on this segment.")] = None,
    limit: PageSize = DEFAULT_PAGE_SIZE,
    cursor: Cursor = None,
) -> Page[WhistleOut]:
    items, next_cursor = service.list_whistles(
        session,
        principal,
        settings,
        unit_code=unit,
        segment_code=segment,
        limit=limit,
        cursor=cursor,
    )
    return Page(items=items, next_cursor=next_cursor)


@router.get(
    "/{whistle_id}",
    summary="One whistle: who was summoned, who reported in, when, and who did not",
    response_model=WhistleOut,
    responses=problem_responses(NotFound),
)
def get_whistle(
    session: SessionDep, settings: SettingsDep, principal: PrincipalDep, whistle_id: DatabaseId
) -> WhistleOut:
    return service.get_whistle(session, principal, settings, whistle_id)


@router.post(
    "/{whistle_id}/report-in",
    summary="Report in on site (报到) for my unit",
    response_model=WhistleOut,
    responses=problem_responses(
        NotFound,
        service.NotSummoned,
        service.AlreadyReportedIn,
        service.TooFarFromPlace,
        UnknownUnit,
        OutsideServiceArea,
        InvalidLocation,
        IdempotencyKeyReused,
    ),
)
def report_in(
    session: SessionDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    whistle_id: DatabaseId,
    body: ReportInCreate,
    idempotency_key: IdempotencyKeyHeader = None,
) -> WhistleOut | JSONResponse:
    """Department staff of a summoned unit, standing near the place. After the deadline
    the report-in is still taken and recorded as late."""
    return idempotent_answer(
        service.report_in(session, principal, settings, whistle_id, body, idempotency_key)
    )
