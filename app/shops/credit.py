"""A shop's credit score (诚信分) and ratings (红黑旗, 星级): the score starts at 100 and moves
by rules that are configuration (`ROADCHIEF_SHOP_CREDIT_RULES`); below
`ROADCHIEF_SHOP_BLACKLIST_BELOW` (60) the shop is on the blacklist (黑榜). Every move is kept
with its reason and the balance after it."""

from __future__ import annotations

from datetime import datetime, time
from typing import TYPE_CHECKING

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.access.rules import Permission, Principal
from app.calendar.service import monday_of
from app.core.database import utcnow
from app.core.idempotency import Idempotent, run_idempotent
from app.core.moments import local_today
from app.core.pagination import Keyset
from app.shops.models import ShopCreditEvent, ShopRating
from app.shops.schemas import BlacklistRow, CreditEventOut, RatingIn, ShopCreditOut
from app.shops.settings import REASONS
from app.territory.models import Jurisdiction, RoadSegment, Shop
from app.territory.service import in_sight

if TYPE_CHECKING:
    from app.settings import Settings

CREDIT_MAX = 100.0

#: A shop's credit history, newest first.
NEWEST_FIRST = Keyset(ShopCreditEvent.id, descending=True)


def move_credit(
    session: Session, settings: Settings, shop_id: int, reason: str, *, times: int = 1,
    visit_id: int | None = None, rating_id: int | None = None,
) -> None:  # fmt: skip
    """Move the score by the rule for `reason`, kept between 0 and 100, and record the move
    as it came out. The shop's row is locked meanwhile, so two moves at once both count. A
    visit that passes everything counts once a week: visits cannot wash a score clean."""
    rule = settings.shop_credit_rules[reason] * times
    if rule == 0:
        return
    if reason == "visit_passed":
        today = local_today()
        monday = datetime.combine(monday_of(today), time.min, settings.zone)
        if session.scalar(select(ShopCreditEvent.id).where(
            ShopCreditEvent.shop_id == shop_id, ShopCreditEvent.reason == reason,
            ShopCreditEvent.occurred_at >= monday,
        ).limit(1)):  # fmt: skip
            return
    before = session.scalar(select(Shop.credit).where(Shop.id == shop_id).with_for_update())
    assert before is not None
    after = min(CREDIT_MAX, max(0.0, before + rule))
    if after == before:
        return  # at the top or the bottom already: nothing moved
    session.execute(update(Shop).where(Shop.id == shop_id).values(credit=after))
    session.add(ShopCreditEvent(shop_id=shop_id, occurred_at=utcnow(), reason=reason,
                                delta=round(after - before, 2), balance=after,
                                visit_id=visit_id, rating_id=rating_id))  # fmt: skip


def rate_shop(
    session: Session, settings: Settings, principal: Principal, code: str, body: RatingIn,
    idempotency_key: str | None,
) -> Idempotent[ShopCreditOut]:  # fmt: skip
    """An assessor's rating: a red or black flag moves the credit; stars are shown."""
    principal.require(Permission.INSPECTIONS_RECORD)

    def create() -> ShopCreditOut:
        shop, _ = in_sight(session, principal, Shop, code, "商户")
        rating = ShopRating(shop_id=shop.id, user_id=principal.user_id, rated_at=utcnow(),
                            flag=body.flag, stars=body.stars, note=body.note)  # fmt: skip
        session.add(rating)
        session.flush()
        if body.flag is not None:
            move_credit(session, settings, shop.id, f"{body.flag}_flag", rating_id=rating.id)
        kept = {"flag": body.flag, "stars": body.stars}  # a stars-only rating keeps the flag
        session.execute(update(Shop).where(Shop.id == shop.id).values(
            **{name: value for name, value in kept.items() if value is not None}))  # fmt: skip
        session.flush()
        session.refresh(shop)
        return credit_out(session, settings, shop, limit=20, cursor=None)

    return run_idempotent(session, principal.ref, f"shops.{code}.rate", idempotency_key,
                          body, create)  # fmt: skip


def credit_out(
    session: Session, settings: Settings, shop: Shop, *, limit: int, cursor: str | None
) -> ShopCreditOut:
    query = select(ShopCreditEvent).where(ShopCreditEvent.shop_id == shop.id)
    rows, next_cursor = NEWEST_FIRST.scalars(session, query, limit=limit, cursor=cursor)
    return ShopCreditOut(
        shop_code=shop.code, shop_name=shop.name, credit=shop.credit, flag=shop.flag,
        stars=shop.stars, blacklisted=shop.credit < settings.shop_blacklist_below,
        history=[CreditEventOut(
            occurred_at=r.occurred_at, reason=r.reason,
            reason_name=REASONS.get(r.reason, r.reason), delta=r.delta, balance=r.balance,
            visit_id=r.visit_id, rating_id=r.rating_id,
        ) for r in rows],
        next_cursor=next_cursor,
    )  # fmt: skip


def shop_credit(
    session: Session, settings: Settings, principal: Principal, code: str, *, limit: int,
    cursor: str | None,
) -> ShopCreditOut:  # fmt: skip
    principal.require(Permission.PATROLS_READ)
    shop, _ = in_sight(session, principal, Shop, code, "商户")
    return credit_out(session, settings, shop, limit=limit, cursor=cursor)


def blacklist(
    session: Session, settings: Settings, principal: Principal, street: str | None
) -> list[BlacklistRow]:
    """Shops below the line (黑榜), lowest first."""
    principal.require(Permission.PATROLS_READ)
    query = (
        select(Shop, RoadSegment.code, Jurisdiction.code)
        .join(RoadSegment, Shop.segment_id == RoadSegment.id)
        .join(Jurisdiction, Shop.street_id == Jurisdiction.id)
        .where(Shop.credit < settings.shop_blacklist_below,
               principal.path_filter(Jurisdiction.path))
        .order_by(Shop.credit, Shop.code)
    )  # fmt: skip
    if street is not None:
        query = query.where(Jurisdiction.code == street)
    return [
        BlacklistRow(
            shop_code=s.code,
            shop_name=s.name,
            credit=s.credit,
            flag=s.flag,
            segment_code=segment,
            street_code=street_code,
        )
        for s, segment, street_code in session.execute(query)
    ]
