"""Assessment endpoints: KPI definitions, and KPIs of a period by a dimension."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Query

from app.accounts.access import Permission
from app.accounts.deps import PrincipalDep
from app.accounts.router import AUTH_PROBLEMS
from app.assessment import kpis as kpi_table
from app.assessment import service
from app.assessment.schemas import KpiDefinition, KpiDefinitions, KpiReport
from app.core.deps import SessionDep, SettingsDep
from app.core.errors import problem_responses

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
