"""The working calendar deadlines are counted on: read a year, set its exceptions."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

from app.access.deps import PrincipalDep
from app.calendar import service
from app.calendar.schemas import CalendarYearIn, CalendarYearOut
from app.core.deps import SessionDep, SettingsDep
from app.core.errors import problem_responses
from app.core.inputs import FIRST_YEAR, LAST_YEAR
from app.core.routes import api_router

router = api_router(prefix="/api/v1/calendar", tags=["calendar"])
admin_router = api_router(prefix="/api/v1/admin/calendar", tags=["admin: calendar"])

Year = Annotated[int, Path(ge=FIRST_YEAR, le=LAST_YEAR, description="The calendar year.")]


@router.get(
    "/{year}",
    summary="A year's working days (official holidays and make-up days, plus overrides)",
    response_model=CalendarYearOut,
    responses=problem_responses(),
)
def read_year(
    session: SessionDep, settings: SettingsDep, principal: PrincipalDep, year: Year
) -> CalendarYearOut:
    return service.calendar_year(session, settings, principal, year)


@admin_router.put(
    "/{year}",
    summary="Replace a year's overrides (local holidays, declared working days)",
    response_model=CalendarYearOut,
    responses=problem_responses(service.DateOutsideYear, service.DuplicateDate),
)
def replace_year(
    session: SessionDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    year: Year,
    body: CalendarYearIn,
) -> CalendarYearOut:
    return service.replace_year_overrides(session, settings, principal, year, body)
