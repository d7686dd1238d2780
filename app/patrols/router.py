"""Patrols: the phone records a walk; anyone in sight reads it, its track and coverage."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query, status
from fastapi.responses import JSONResponse

from app.access.deps import PrincipalDep, SignedInDep
from app.core.deps import SessionDep, SettingsDep
from app.core.errors import NotFound, problem_responses
from app.core.idempotency import (
    IdempotencyKeyHeader,
    IdempotencyKeyReused,
    idempotent_answer,
)
from app.core.inputs import DatabaseId, Day
from app.core.pagination import DEFAULT_PAGE_SIZE, Cursor, Page, PageSize
from app.core.routes import api_router
from app.patrols import compliance, service, workstations
from app.patrols.models import PatrolStatus
from app.patrols.schemas import (
    CheckInIn,
    CheckInOut,
    CheckOutIn,
    ComplianceOut,
    CoverageMap,
    FixBatch,
    FixBatchResult,
    PatrolMap,
    PatrolOut,
    PatrolStart,
    PatrolSummary,
    SegmentPatrolOut,
)

router = api_router(prefix="/api/v1", tags=["patrols"])

OWN = (NotFound, service.NotYourPatrol)


@router.post(
    "/patrols",
    summary="Start a patrol (巡查); one at a time",
    status_code=status.HTTP_201_CREATED,
    response_model=PatrolOut,
    responses=problem_responses(
        service.PatrolInProgress, service.StartTooOld, IdempotencyKeyReused
    ),
)
def start_patrol(
    session: SessionDep,
    settings: SettingsDep,
    principal: SignedInDep,
    body: PatrolStart,
    idempotency_key: IdempotencyKeyHeader = None,
) -> PatrolOut | JSONResponse:
    return idempotent_answer(
        service.start_patrol(session, settings, principal, body, idempotency_key)
    )


@router.get(
    "/patrols/compliance",
    summary="Patrol duty met or missed, per chief and segment, and per street office",
    response_model=ComplianceOut,
    responses=problem_responses(compliance.BadDateRange),
)
def patrol_compliance(
    session: SessionDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    date_from: Annotated[Day, Query(alias="from", description="First day (local).")],
    date_to: Annotated[Day, Query(alias="to", description="Last day (local), ≤ 92 days.")],
    chief: Annotated[str | None, Query(description="A chief's username.")] = None,
    segment: str | None = None,
    street: str | None = None,
) -> ComplianceOut:
    """Duties per chief level are `ROADCHIEF_PATROL_DUTIES`; a day counts when the chief's
    patrol started that day covered the segment completely."""
    return compliance.compliance(
        session, settings, principal, date_from=date_from, date_to=date_to,
        username=chief, segment_code=segment, street_code=street,
    )  # fmt: skip


@router.get(
    "/patrols/coverage-map",
    summary="Road segments coloured by patrol coverage over a period (GeoJSON)",
    response_model=None,  # answered as built; documented as the typed GeoJSON below
    responses={
        200: {"model": CoverageMap},
        **problem_responses(compliance.BadDateRange),
    },
)
def patrol_coverage_map(
    session: SessionDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    date_from: Annotated[Day, Query(alias="from", description="First day (local).")],
    date_to: Annotated[Day, Query(alias="to", description="Last day (local), ≤ 92 days.")],
    street: str | None = None,
) -> dict[str, Any]:
    """Each segment's `coverage`: `complete` (a complete patrol), `partial`, or `none`."""
    return compliance.coverage_map(
        session, settings, principal, date_from=date_from, date_to=date_to, street_code=street
    )


@router.get(
    "/patrols/mine",
    summary="My patrols, newest first (find the running one: `status=active`)",
    response_model=Page[PatrolSummary],
    responses=problem_responses(),
)
def my_patrols(
    session: SessionDep,
    principal: SignedInDep,
    status: PatrolStatus | None = None,
    limit: PageSize = DEFAULT_PAGE_SIZE,
    cursor: Cursor = None,
) -> Page[PatrolSummary]:
    """Road chiefs, patrollers and supervisors: their own patrols only (another person's
    are `GET /patrols/{id}`, for whom oversees them)."""
    items, next_cursor = service.my_patrols(
        session, principal, status=status, limit=limit, cursor=cursor
    )
    return Page(items=items, next_cursor=next_cursor)


@router.post(
    "/patrols/{patrol_id}/fixes",
    summary="Add GPS fixes (batched, any order; resent ones are taken once)",
    response_model=FixBatchResult,
    responses=problem_responses(
        *OWN, service.PatrolEnded, service.InvalidFix, service.TooManyFixes
    ),
)
def append_fixes(
    session: SessionDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    patrol_id: DatabaseId,
    body: FixBatch,
) -> FixBatchResult:
    """Fixes recorded outside the patrol's time are refused (counted in `refused`, not
    stored). A patrol holds at most `ROADCHIEF_PATROL_MAX_FIXES_PER_MINUTE` (60) fixes per
    minute it has lasted, plus one batch: beyond, `422 too_many_fixes` and nothing of the
    batch is stored. Late fixes of an ended patrol are measured shortly after, by the
    service (`remeasure_pending` until then)."""
    return service.append_fixes(session, settings, principal, patrol_id, body)


@router.post(
    "/patrols/{patrol_id}/pause",
    summary="Pause a patrol (the time paused does not count)",
    response_model=PatrolOut,
    responses=problem_responses(*OWN, service.PatrolNotActive),
)
def pause_patrol(
    session: SessionDep, settings: SettingsDep, principal: PrincipalDep, patrol_id: DatabaseId
) -> PatrolOut:
    return service.pause_patrol(session, settings, principal, patrol_id)


@router.post(
    "/patrols/{patrol_id}/resume",
    summary="Resume a paused patrol",
    response_model=PatrolOut,
    responses=problem_responses(*OWN, service.PatrolNotActive),
)
def resume_patrol(
    session: SessionDep, settings: SettingsDep, principal: PrincipalDep, patrol_id: DatabaseId
) -> PatrolOut:
    return service.resume_patrol(session, settings, principal, patrol_id)


@router.post(
    "/patrols/{patrol_id}/end",
    summary="End a patrol: the cleaned track, its length and time, the segments covered",
    response_model=PatrolOut,
    responses=problem_responses(*OWN, service.PatrolEnded),
)
def end_patrol(
    session: SessionDep, settings: SettingsDep, principal: PrincipalDep, patrol_id: DatabaseId
) -> PatrolOut:
    return service.end_patrol(session, settings, principal, patrol_id)


@router.get(
    "/patrols/{patrol_id}",
    summary="One patrol: times, distance, fixes left out and why, segments covered",
    response_model=PatrolOut,
    responses=problem_responses(NotFound),
)
def get_patrol(
    session: SessionDep, settings: SettingsDep, principal: PrincipalDep, patrol_id: DatabaseId
) -> PatrolOut:
    return service.get_patrol(session, settings, principal, patrol_id)


@router.get(
    "/patrols/{patrol_id}/map",
    summary="The track and the covered parts of segments (GeoJSON FeatureCollection)",
    response_model=None,  # answered as built; documented as the typed GeoJSON below
    responses={200: {"model": PatrolMap}, **problem_responses(NotFound)},
)
def patrol_map(
    session: SessionDep, settings: SettingsDep, principal: PrincipalDep, patrol_id: DatabaseId
) -> dict[str, Any]:
    return service.patrol_geojson(session, settings, principal, patrol_id)


@router.get(
    "/segments/{segment_code}/patrols",
    summary="A segment's patrol history: who, when, how much of it (newest first)",
    response_model=list[SegmentPatrolOut],
    responses=problem_responses(NotFound),
)
def segment_patrols(
    session: SessionDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    segment_code: str,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[SegmentPatrolOut]:
    return service.segment_patrols(session, settings, principal, segment_code, limit)


@router.post(
    "/workstations/{code}/check-in",
    summary="Check in at a road-chief workstation (路长工作站), standing near it",
    status_code=status.HTTP_201_CREATED,
    response_model=CheckInOut,
    responses=problem_responses(
        NotFound, workstations.TooFarFromWorkstation,
        workstations.AlreadyCheckedIn, IdempotencyKeyReused,
    ),
)  # fmt: skip
def check_in(
    session: SessionDep,
    settings: SettingsDep,
    principal: SignedInDep,
    code: str,
    body: CheckInIn,
    idempotency_key: IdempotencyKeyHeader = None,
) -> CheckInOut | JSONResponse:
    return idempotent_answer(
        workstations.check_in(session, settings, principal, code, body, idempotency_key)
    )


@router.post(
    "/workstations/{code}/check-out",
    summary="Check out of the workstation, standing near it",
    response_model=CheckInOut,
    responses=problem_responses(
        NotFound, workstations.TooFarFromWorkstation, workstations.NotCheckedIn
    ),
)
def check_out(
    session: SessionDep, settings: SettingsDep, principal: PrincipalDep, code: str, body: CheckOutIn
) -> CheckInOut:
    return workstations.check_out(session, settings, principal, code, body)


@router.get(
    "/workstations/{code}/check-ins",
    summary="Who was at the workstation, when and for what (newest first)",
    response_model=Page[CheckInOut],
    responses=problem_responses(NotFound),
)
def list_check_ins(
    session: SessionDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    code: str,
    limit: PageSize = DEFAULT_PAGE_SIZE,
    cursor: Cursor = None,
) -> Page[CheckInOut]:
    items, next_cursor = workstations.check_ins(
        session, settings, principal, code, limit=limit, cursor=cursor
    )
    return Page(items=items, next_cursor=next_cursor)
