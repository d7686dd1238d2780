"""Assessment endpoints: KPI definitions, and KPIs of a period by a dimension."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from app.accounts.access import Permission
from app.accounts.deps import PrincipalDep
from app.accounts.router import AUTH_PROBLEMS
from app.assessment import kpis as kpi_table
from app.assessment import search, service
from app.assessment.schemas import CaseRow, KpiDefinition, KpiDefinitions, KpiReport
from app.core.deps import SessionDep, SettingsDep
from app.core.errors import problem_responses
from app.core.pagination import InvalidCursor, Page

router = APIRouter(prefix="/api/v1/assessment", tags=["assessment"])


@router.get(
    "/kpi-definitions",
    summary="Every KPI: its name, formula, direction and weight in the composite score",
    response_model=KpiDefinitions,
    responses=problem_responses(*AUTH_PROBLEMS),
)
def kpi_definitions(settings: SettingsDep, principal: PrincipalDep) -> KpiDefinitions:
    principal.require(Permission.CASES_READ)
    weights = kpi_table.parse_weights(settings.assessment_weights)
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
    )


@router.get(
    "/kpis",
    summary="Case KPIs of a period per street office, community, segment, category or unit",
    response_model=KpiReport,
    responses=problem_responses(
        *AUTH_PROBLEMS, service.BadPeriod, service.UnknownFilter, kpi_table.BadWeights
    ),
)
def kpis(
    session: SessionDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    by: Literal["street", "community", "segment", "category", "unit"],
    date_from: Annotated[date, Query(alias="from", description="First day (local).")],
    date_to: Annotated[date, Query(alias="to", description="Last day (local), ≤ 366 days.")],
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
_SEARCH_PROBLEMS = problem_responses(*AUTH_PROBLEMS, service.BadPeriod, service.UnknownFilter)


@router.get(
    "/cases",
    summary="Search cases by period, place, department, category, state and more",
    response_model=Page[CaseRow],
    responses=problem_responses(
        *AUTH_PROBLEMS, service.BadPeriod, service.UnknownFilter, InvalidCursor
    ),
)
def search_cases(
    session: SessionDep,
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
        200: {"content": {media: {} for media, _ in _EXPORTS.values()}},
        **_SEARCH_PROBLEMS,
    },
)
def export_cases(
    session: SessionDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    fmt: Literal["csv", "xlsx", "geojson"],
    filters: Filters,
) -> StreamingResponse:
    media, export = _EXPORTS[fmt]
    body = export(session, settings, principal, filters)  # checks the filters before the 200
    name = f"cases-{filters.date_from:%Y%m%d}-{filters.date_to:%Y%m%d}.{fmt}"
    return StreamingResponse(
        body, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


@router.get(
    "/heatmap",
    summary="Cases per grid cell (万米单元格) or road segment, as GeoJSON, for a period",
    responses=_SEARCH_PROBLEMS,
)
def heatmap(
    session: SessionDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    filters: Annotated[search.HeatmapFilter, Query()],
) -> dict[str, Any]:
    """`level=grid_cell|segment` and the case filters; only cells with cases are listed."""
    return search.heatmap(session, settings, principal, filters, filters.level)
