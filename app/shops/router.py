"""Shop visits: a chief checks a street-front shop's frontage pledge; the weekly duty."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, status
from fastapi.responses import JSONResponse

from app.access.deps import PrincipalDep, SignedInDep
from app.access.rules import Permission
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
from app.media.service import UnknownPhoto
from app.patrols.compliance import BadDateRange
from app.patrols.service import PatrolMismatch
from app.reports.service import DeviceTimeInFuture, LocationTooInaccurate
from app.routing.router import ROUTE_PROBLEMS
from app.shops import credit, duty, service
from app.shops.pledges import PLEDGE_ITEMS
from app.shops.schemas import (
    BlacklistRow,
    PledgeItemOut,
    RatingIn,
    ShopCreditOut,
    ShopDutyOut,
    ShopVisitIn,
    ShopVisitOut,
)

router = api_router(prefix="/api/v1", tags=["shops"])


@router.get(
    "/shops/pledge-items",
    summary="The frontage pledge's items (门前四包/五包) a visit checks",
    response_model=list[PledgeItemOut],
    responses=problem_responses(),
)
def pledge_items(principal: PrincipalDep) -> list[PledgeItemOut]:
    principal.require(Permission.TERRITORY_READ)
    return [
        PledgeItemOut(
            code=i.code,
            name=i.name,
            requirement=i.requirement,
            category_code=i.category_code,
            pledges=sorted(i.pledges),
        )
        for i in PLEDGE_ITEMS
    ]


@router.get(
    "/shops/visit-duty",
    summary="Weekly shop visits met or missed: per shop, per responsible chief, per street",
    response_model=ShopDutyOut,
    responses=problem_responses(BadDateRange),
)
def visit_duty(
    session: SessionDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    date_from: Annotated[Day, Query(alias="from", description="First day (local).")],
    date_to: Annotated[Day, Query(alias="to", description="Last day (local), ≤ 92 days.")],
    street: str | None = None,
    segment: str | None = None,
    chief: Annotated[str | None, Query(description="A chief's username.")] = None,
) -> ShopDutyOut:
    """`ROADCHIEF_SHOP_VISITS_PER_WEEK` visits a week per shop; a shop's chief is its
    segment's chief closest to the street (level 3, else 2, else 1)."""
    return duty.visit_duty(
        session, settings, principal, date_from=date_from, date_to=date_to,
        street_code=street, segment_code=segment, username=chief,
    )  # fmt: skip


@router.get(
    "/shops/blacklist",
    summary="Shops whose credit fell below the line (黑榜), lowest first",
    response_model=list[BlacklistRow],
    responses=problem_responses(),
)
def blacklist(
    session: SessionDep, settings: SettingsDep, principal: PrincipalDep, street: str | None = None
) -> list[BlacklistRow]:
    return credit.blacklist(session, settings, principal, street)


@router.get(
    "/shops/{code}/credit",
    summary="A shop's credit score (诚信分), latest rating and the score's history",
    response_model=ShopCreditOut,
    responses=problem_responses(NotFound),
)
def shop_credit(
    session: SessionDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    code: str,
    limit: PageSize = DEFAULT_PAGE_SIZE,
    cursor: Cursor = None,
) -> ShopCreditOut:
    return credit.shop_credit(session, settings, principal, code, limit=limit, cursor=cursor)


@router.post(
    "/shops/{code}/ratings",
    summary="Rate a shop (assessors): red or black flag (红黑旗), stars (星级)",
    status_code=status.HTTP_201_CREATED,
    response_model=ShopCreditOut,
    responses=problem_responses(NotFound, IdempotencyKeyReused),
)
def rate_shop(
    session: SessionDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    code: str,
    body: RatingIn,
    idempotency_key: IdempotencyKeyHeader = None,
) -> ShopCreditOut | JSONResponse:
    """A red flag adds to the credit and a black flag takes from it, by
    `ROADCHIEF_SHOP_CREDIT_RULES`; a visit's failed items take from it too."""
    return idempotent_answer(
        credit.rate_shop(session, settings, principal, code, body, idempotency_key)
    )


@router.post(
    "/shops/{code}/visits",
    summary="Record a visit to a shop (走访): each pledge item pass or fail, near the shop",
    status_code=status.HTTP_201_CREATED,
    response_model=ShopVisitOut,
    responses=problem_responses(
        NotFound, service.TooFarFromShop, service.VisitTooOld,
        service.UnknownPledgeItem, service.PledgeItemsIncomplete, service.FailPhotoRequired,
        service.CaseNeedsFail, DeviceTimeInFuture, LocationTooInaccurate, UnknownPhoto,
        PatrolMismatch, IdempotencyKeyReused, *ROUTE_PROBLEMS,
    ),
)  # fmt: skip
def record_visit(
    session: SessionDep,
    settings: SettingsDep,
    principal: SignedInDep,
    code: str,
    body: ShopVisitIn,
    idempotency_key: IdempotencyKeyHeader = None,
) -> ShopVisitOut | JSONResponse:
    """A failed item needs a photo; with `open_case` it is reported at once (in the same
    transaction) and the answer names the case it opened or joined."""
    return idempotent_answer(
        service.record_visit(session, settings, principal, code, body, idempotency_key)
    )


@router.get(
    "/shops/{code}/visits",
    summary="A shop's visits, newest first",
    response_model=Page[ShopVisitOut],
    responses=problem_responses(NotFound),
)
def list_visits(
    session: SessionDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    code: str,
    limit: PageSize = DEFAULT_PAGE_SIZE,
    cursor: Cursor = None,
) -> Page[ShopVisitOut]:
    items, next_cursor = service.shop_visits(
        session, settings, principal, code, limit=limit, cursor=cursor
    )
    return Page(items=items, next_cursor=next_cursor)


@router.get(
    "/shop-visits/{visit_id}",
    summary="One shop visit",
    response_model=ShopVisitOut,
    responses=problem_responses(NotFound),
)
def get_visit(
    session: SessionDep, settings: SettingsDep, principal: PrincipalDep, visit_id: DatabaseId
) -> ShopVisitOut:
    return service.get_visit(session, settings, principal, visit_id)
