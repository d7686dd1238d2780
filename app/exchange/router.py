"""`/api/v1/exchange/cases`: what the city's 数字城管 platform pulls and pushes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Request

from app.access.deps import PrincipalDep
from app.core.deps import SessionDep, SettingsDep
from app.core.errors import problem_responses
from app.core.pagination import Cursor, InvalidCursor
from app.core.routes import api_router
from app.exchange import service
from app.exchange.service import ExchangePage, PlatformImport, PlatformImportOut

router = api_router(prefix="/api/v1/exchange", tags=["exchange"])


@router.get(
    "/cases",
    summary="Cases changed since a cursor, whole (数字城管平台同步：导出)",
    responses=problem_responses(InvalidCursor),  # its cursor is `since`
)
def export_platform_cases(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    since: Cursor = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 100,
) -> ExchangePage:
    base = str(request.base_url)
    return service.export_cases(
        session, settings, principal, since=since, limit=limit, base_url=base
    )


@router.post(
    "/cases",
    summary="Cases from the platform, each once by its number (数字城管平台同步：导入)",
    responses=problem_responses(),
)
def import_platform_cases(
    body: PlatformImport, session: SessionDep, settings: SettingsDep, principal: PrincipalDep
) -> PlatformImportOut:
    return service.import_cases(session, settings, principal, body)
