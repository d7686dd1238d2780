"""Assessment endpoints: KPI definitions, and KPIs of a period by a dimension."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Query, status
from fastapi.responses import JSONResponse, StreamingResponse

from app.access.deps import PrincipalDep, SignedInDep
from app.access.rules import Permission
from app.assessment import inspections, periods, rankings, search, service
from app.assessment import kpis as kpi_table
from app.assessment.checklist import Checklist, checklist
from app.assessment.schemas import (
    CaseRow,
    CorrectionIn,
    DistrictScore,
    Heatmap,
    InspectionIn,
    InspectionOut,
    InspectionScores,
    KpiDefinition,
    KpiDefinitions,
    KpiReport,
    PeriodOut,
    RankingOut,
)
from app.core.deps import ReadSessionDep, SessionDep, SettingsDep, staleness_headers
from app.core.errors import NotFound, problem_responses
from app.core.idempotency import (
    IdempotencyKeyHeader,
    IdempotencyKeyReused,
    idempotent_answer,
)
from app.core.inputs import DatabaseId, Day
from app.core.pagination import DEFAULT_PAGE_SIZE, Cursor, InvalidCursor, Page, PageSize
from app.core.routes import api_router
from app.media.service import UnknownPhoto
from app.reports.service import DeviceTimeInFuture
from app.routing.router import ROUTE_PROBLEMS

router = api_router(prefix="/api/v1/assessment", tags=["assessment"])
admin_router = api_router(prefix="/api/v1/admin/assessment", tags=["admin: assessment"])


@router.get(
    "/kpi-definitions",
    summary="Every KPI: its name, formula, direction and weight in the composite score",
    response_model=KpiDefinitions,
    responses=problem_responses(),
)
def kpi_definitions(settings: SettingsDep, principal: PrincipalDep) -> KpiDefinitions:
    principal.require(Permission.CASES_READ)
    weights = settings.assessment_weights
    table = [
        KpiDefinition(code=code, name=name, formula=formula, better=better,
                      weight=weights.get(code, 0.0) if better != "count" else None)
        for code, name, formula, better in kpi_table.definitions()
    ]  # fmt: skip
    return KpiDefinitions(
        kpis=table,
        handling_time=kpi_table.HANDLING_TIME,
        score=kpi_table.SCORE,
        period=kpi_table.PERIOD,
        units=kpi_table.UNITS,
        ranked=kpi_table.RANKED,
    )


@router.get(
    "/kpis",
    summary="Case KPIs of a period per street office, community, segment, category or unit",
    response_model=KpiReport,
    responses=problem_responses(service.BadPeriod, service.UnknownFilter, kpi_table.BadWeights),
)
def kpis(
    session: ReadSessionDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    by: Literal["street", "community", "segment", "category", "unit"],
    date_from: Annotated[Day, Query(alias="from", description="First day (local).")],
    date_to: Annotated[Day, Query(alias="to", description="Last day (local), ≤ 366 days.")],
    street: str | None = None,
    segment: str | None = None,
    category: str | None = None,
    unit: Annotated[str | None, Query(description="A department or unit code.")] = None,
    weights: Annotated[
        str | None,
        Query(description="Override: 'code:weight,...' over the rates, summing to 100."),
    ] = None,
) -> KpiReport:
    """Rows sorted by composite score, ranked ones first; formulas at `/kpi-definitions`."""
    return service.kpis(
        session, settings, principal, by=by, date_from=date_from, date_to=date_to,
        street=street, segment=segment, category=category, unit=unit, weights=weights,
    )  # fmt: skip


Filters = Annotated[search.CaseFilter, Query()]
_SEARCH_PROBLEMS = problem_responses(service.BadPeriod, service.UnknownFilter)


@router.get(
    "/cases",
    summary="Search cases by period, place, department, category, state and more",
    response_model=Page[CaseRow],
    responses=problem_responses(service.BadPeriod, service.UnknownFilter, InvalidCursor),
)
def search_cases(
    session: ReadSessionDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    params: Annotated[search.CaseSearch, Query()],
) -> Page[CaseRow]:
    """Newest report first; the cursor holds its place while cases change state. Unknown
    query parameters are refused (422), so a misspelt filter never returns everything."""
    items, next_cursor = search.search(
        session, settings, principal, params, limit=params.limit, cursor=params.cursor
    )
    return Page(items=items, next_cursor=next_cursor)


_EXPORTS = {
    "csv": ("text/csv; charset=utf-8", search.export_csv),
    "xlsx": (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        search.export_xlsx,
    ),
    "geojson": ("application/geo+json", search.export_geojson),
}


@router.get(
    "/cases/export.{fmt}",
    summary="The same filtered cases as CSV or XLSX (Chinese headers) or GeoJSON, streamed",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {
                _EXPORTS["csv"][0]: {"schema": {"type": "string"}},
                _EXPORTS["xlsx"][0]: {"schema": {"type": "string", "format": "binary"}},
                _EXPORTS["geojson"][0]: {"schema": {"type": "object"}},
            }
        },
        **_SEARCH_PROBLEMS,
    },
)
def export_cases(
    session: ReadSessionDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    fmt: Literal["csv", "xlsx", "geojson"],
    filters: Filters,
) -> StreamingResponse:
    media, export = _EXPORTS[fmt]
    body = export(session, settings, principal, filters)  # checks the filters before the 200
    name = f"cases-{filters.date_from:%Y%m%d}-{filters.date_to:%Y%m%d}.{fmt}"
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    return StreamingResponse(body, media_type=media, headers=headers | staleness_headers(session))


@router.get(
    "/heatmap",
    summary="Cases per grid cell (万米单元格) or road segment, as GeoJSON, for a period",
    response_model=None,  # answered as built; documented as the typed GeoJSON below
    responses={200: {"model": Heatmap}, **_SEARCH_PROBLEMS},
)
def heatmap(
    session: ReadSessionDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    filters: Annotated[search.HeatmapFilter, Query()],
) -> dict[str, Any]:
    """`level=grid_cell|segment` and the case filters; only cells with cases are listed."""
    return search.heatmap(session, settings, principal, filters, filters.level)


# --- field inspections ----------------------------------------------------------------------

From = Annotated[Day, Query(alias="from", description="First day (local).")]
To = Annotated[Day, Query(alias="to", description="Last day (local), ≤ 366 days.")]


@router.get(
    "/checklist",
    summary="The field-inspection checklist: categories, items, deduction per occurrence",
    response_model=Checklist,
    responses=problem_responses(),
)
def get_checklist(settings: SettingsDep, principal: PrincipalDep) -> Checklist:
    principal.require(Permission.CASES_READ)
    return checklist(settings)


@router.post(
    "/inspections",
    summary="Record a field inspection of a segment (assessors): deductions placed, photographed",
    status_code=status.HTTP_201_CREATED,
    response_model=InspectionOut,
    responses=problem_responses(
        NotFound, inspections.BadInspectionTime, DeviceTimeInFuture,
        inspections.UnknownChecklistItem, inspections.DeductionPhotoRequired,
        inspections.DeductionOffSegment, UnknownPhoto, IdempotencyKeyReused, *ROUTE_PROBLEMS,
    ),
)  # fmt: skip
def record_inspection(
    session: SessionDep,
    settings: SettingsDep,
    principal: SignedInDep,
    body: InspectionIn,
    idempotency_key: IdempotencyKeyHeader = None,
) -> InspectionOut | JSONResponse:
    """A deduction with `open_case` is reported at once (a case of source `inspection`), in
    the same transaction; each is charged to the lead unit the routing rules give its
    category at its place."""
    return idempotent_answer(
        inspections.record_inspection(session, settings, principal, body, idempotency_key)
    )


@router.get(
    "/inspections",
    summary="Inspections of a period, newest first",
    response_model=Page[InspectionOut],
    responses=problem_responses(service.BadPeriod),
)
def list_inspections(
    session: SessionDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    date_from: From,
    date_to: To,
    segment: str | None = None,
    assessor: Annotated[str | None, Query(description="An assessor's username.")] = None,
    limit: PageSize = DEFAULT_PAGE_SIZE,
    cursor: Cursor = None,
) -> Page[InspectionOut]:
    items, next_cursor = inspections.list_inspections(
        session, settings, principal, period=service.period_of(settings, date_from, date_to),
        segment=segment, assessor=assessor, limit=limit, cursor=cursor,
    )  # fmt: skip
    return Page(items=items, next_cursor=next_cursor)


@router.get(
    "/inspections/{inspection_id}",
    summary="One inspection with its deductions and photos",
    response_model=InspectionOut,
    responses=problem_responses(NotFound),
)
def get_inspection(
    session: SessionDep, settings: SettingsDep, principal: PrincipalDep, inspection_id: DatabaseId
) -> InspectionOut:
    return inspections.get_inspection(session, settings, principal, inspection_id)


@router.get(
    "/inspection-scores",
    summary="Inspection scores of a period per segment (with its 千百十 grade), street or unit",
    response_model=InspectionScores,
    responses=problem_responses(service.BadPeriod, service.UnknownFilter),
)
def inspection_scores(
    session: ReadSessionDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    by: Literal["segment", "street", "unit"],
    date_from: From,
    date_to: To,
    street: str | None = None,
) -> InspectionScores:
    return inspections.inspection_scores(
        session, settings, principal, by=by,
        period=service.period_of(settings, date_from, date_to), street=street,
    )  # fmt: skip


# --- rankings -------------------------------------------------------------------------------

PeriodLabel = Annotated[
    str, Query(description="A month (`2026-11`: 月排名) or an ISO week (`2026-W47`: 周通报).")
]


@router.get(
    "/rankings",
    summary="Monthly ranking or weekly bulletin of street offices or departments, with flags",
    response_model=RankingOut,
    responses=problem_responses(service.BadPeriod),
)
def ranking(
    session: ReadSessionDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    kind: Literal["street", "unit"],
    period: PeriodLabel,
) -> RankingOut:
    """Score = case KPI score and inspection score by `ROADCHIEF_ASSESSMENT_RANKING_WEIGHTS`
    (one alone when the other is missing); red flags for the best
    `ROADCHIEF_ASSESSMENT_RED_FLAGS`, black for the worst `ROADCHIEF_ASSESSMENT_BLACK_FLAGS`."""
    return rankings.ranking(session, settings, principal, kind=kind, period=period)


@router.get(
    "/district-score",
    summary="The district's score: street offices' and departments' means, weighed",
    response_model=DistrictScore,
    responses=problem_responses(service.BadPeriod),
)
def district_score(
    session: ReadSessionDep, settings: SettingsDep, principal: PrincipalDep, period: PeriodLabel
) -> DistrictScore:
    return rankings.district_score(session, settings, principal, period=period)


# --- closed periods -------------------------------------------------------------------------


@router.get(
    "/periods/{label}",
    summary="A closed period: when it was frozen, by whom, and every correction since",
    response_model=PeriodOut,
    responses=problem_responses(NotFound, service.BadPeriod),
)
def get_period(
    session: SessionDep, settings: SettingsDep, principal: PrincipalDep, label: str
) -> PeriodOut:
    return periods.get_period(session, settings, principal, label)


@admin_router.post(
    "/periods/{label}/close",
    summary="Freeze a finished month or week: its KPIs, scores and rankings (admins)",
    response_model=PeriodOut,
    responses=problem_responses(service.BadPeriod, periods.PeriodNotOver, periods.PeriodClosed),
)
def close_period(
    session: SessionDep, settings: SettingsDep, principal: PrincipalDep, label: str
) -> PeriodOut:
    """After this, every answer about the period is read from what was frozen here."""
    return periods.close_period(session, settings, principal, label)


@admin_router.post(
    "/periods/{label}/corrections",
    summary="Correct one frozen figure, with the reason (admins; audited, listed)",
    response_model=PeriodOut,
    responses=problem_responses(
        NotFound, service.BadPeriod, periods.UnknownFigure, periods.BadCorrection
    ),
)
def correct_period(
    session: SessionDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    label: str,
    body: CorrectionIn,
) -> PeriodOut:
    return periods.correct(session, settings, principal, label, body)
