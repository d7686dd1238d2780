"""The weekly shop-visit duty (商户走访): each street-front shop is visited every week, and
each ground-level chief visits the shops on their own segments.

A shop's responsible chief is its segment's chief of the highest level number (the one
closest to the street: level 3 before 2 before 1). A week (Monday to Sunday, local time)
counts for a shop when it had `shop_visits_per_week` visits by anyone, and for its chief
when the chief made that many themselves. Weeks are whole even when the range cuts them;
the week still running is counted once its visits are made, and is not missed before it
ends (`calendar.service.judged_periods`, the rule patrol duties follow too).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from functools import partial
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.access.rules import Permission, Principal
from app.accounts.models import SegmentChief, User
from app.calendar.service import (
    day_bounds,
    judged_periods,
    local_days,
    met_share,
    monday_of,
    week_periods,
)
from app.core.moments import local_today, to_local
from app.shops.models import ShopVisit
from app.shops.schemas import ChiefShopDuty, MissedWeek, ShopDuty, ShopDutyOut, StreetShopDuty
from app.territory.models import Jurisdiction, RoadSegment, Shop

if TYPE_CHECKING:
    from app.settings import Settings


def visit_duty(
    session: Session,
    settings: Settings,
    principal: Principal,
    *,
    date_from: date,
    date_to: date,
    street_code: str | None,
    segment_code: str | None,
    username: str | None,
) -> ShopDutyOut:
    principal.require(Permission.PATROLS_READ)
    local_days(settings, date_from, date_to)  # the range's checks
    weeks = week_periods(date_from, date_to)
    # Whole weeks: a visit on the Monday before a range that starts on a Wednesday counts.
    start, end = day_bounds(settings.zone, weeks[0][0], weeks[-1][1])
    today = local_today()
    needed = settings.shop_visits_per_week
    query = (
        select(Shop, RoadSegment.code, Jurisdiction.code)
        .join(RoadSegment, Shop.segment_id == RoadSegment.id)
        .join(Jurisdiction, Shop.street_id == Jurisdiction.id)
        .where(principal.path_filter(Jurisdiction.path))
        .order_by(Jurisdiction.code, Shop.code)
    )
    if street_code is not None:
        query = query.where(Jurisdiction.code == street_code)
    if segment_code is not None:
        query = query.where(RoadSegment.code == segment_code)
    shops = session.execute(query).all()
    in_sight = ShopVisit.shop_id.in_(query.with_only_columns(Shop.id).order_by(None))
    chiefs = _ground_chiefs(session)
    if username is not None:
        shops = [r for r in shops if (c := chiefs.get(r[0].segment_id)) and c.username == username]
    visits: dict[int, list[tuple[int, date, datetime]]] = defaultdict(list)
    for shop_id, user_id, visited_at in session.execute(
        select(ShopVisit.shop_id, ShopVisit.user_id, ShopVisit.visited_at).where(
            ShopVisit.visited_at >= start, ShopVisit.visited_at < end, in_sight
        )
    ):
        day = to_local(visited_at).date()
        visits[shop_id].append((user_id, monday_of(day), visited_at))
    last_visit = (
        select(ShopVisit.shop_id, func.max(ShopVisit.visited_at))
        .where(ShopVisit.visited_at < end, in_sight)
        .group_by(ShopVisit.shop_id)
    )
    last = dict(session.execute(last_visit).all())

    shop_rows: list[ShopDuty] = []
    chief_tally: dict[int, list[str]] = defaultdict(list)  # user id -> missed 'shop@week'
    chief_due: dict[int, tuple[int, int]] = defaultdict(lambda: (0, 0))  # shops, shop-weeks
    for shop, segment, street in shops:
        chief = chiefs.get(shop.segment_id)
        per_week: dict[date, int] = defaultdict(int)
        own_per_week: dict[date, int] = defaultdict(int)
        for user_id, monday, _ in visits.get(shop.id, []):
            per_week[monday] += 1
            if chief is not None and user_id == chief.user_id:
                own_per_week[monday] += 1
        due, missed_weeks = judged_periods(weeks, today, partial(_week_met, per_week, needed))
        missed = [
            MissedWeek(start=a, end=b, visits=per_week[a], required=needed) for a, b in missed_weeks
        ]
        met = len(due) - len(missed)
        seen = last.get(shop.id)
        shop_rows.append(
            ShopDuty(
                shop_code=shop.code, shop_name=shop.name, kind=shop.kind, segment_code=segment,
                street_code=street, chief_username=chief.username if chief else None,
                weeks=len(due), met=met, missed=missed, rate=met_share(met, len(due)),
                last_visited_at=seen,
            )
        )  # fmt: skip
        if chief is not None:
            own_due, own_missed = judged_periods(
                weeks, today, partial(_week_met, own_per_week, needed)
            )
            count, shop_weeks = chief_due[chief.user_id]
            chief_due[chief.user_id] = (count + 1, shop_weeks + len(own_due))
            chief_tally[chief.user_id] += [f"{shop.code}@{a.isoformat()}" for a, _ in own_missed]
    by_user = {c.user_id: c for c in chiefs.values()}
    chief_rows = []
    for user_id, (count, shop_weeks) in chief_due.items():
        chief = by_user[user_id]
        met = shop_weeks - len(chief_tally[user_id])
        chief_rows.append(
            ChiefShopDuty(
                username=chief.username, display_name=chief.display_name, chief_level=chief.level,
                shops=count, shop_weeks=shop_weeks, met=met, rate=met_share(met, shop_weeks),
                missed=chief_tally[user_id],
            )
        )  # fmt: skip
    chief_rows.sort(key=lambda r: r.username)
    by_street: dict[str, list[ShopDuty]] = defaultdict(list)
    for row in shop_rows:
        by_street[row.street_code].append(row)
    streets = [
        StreetShopDuty(
            street_code=code,
            shops=len(rows),
            shop_weeks=sum(r.weeks for r in rows),
            met=sum(r.met for r in rows),
            rate=met_share(sum(r.met for r in rows), sum(r.weeks for r in rows)),
        )
        for code, rows in sorted(by_street.items())
    ]
    return ShopDutyOut(
        date_from=date_from, date_to=date_to, visits_per_week=needed,
        shops=shop_rows, chiefs=chief_rows, streets=streets,
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Chief:
    user_id: int
    username: str
    display_name: str
    level: int


def _week_met(visits: dict[date, int], needed: int, week: tuple[date, date]) -> bool:
    return visits[week[0]] >= needed


def _ground_chiefs(session: Session) -> dict[int, _Chief]:
    """Each segment's chief closest to the street (highest level number), active ones only."""
    chiefs: dict[int, _Chief] = {}
    for segment_id, level, user_id, username, name in session.execute(
        select(SegmentChief.segment_id, SegmentChief.level, User.id, User.username,
               User.display_name)
        .join(User, SegmentChief.user_id == User.id)
        .where(User.is_active.is_(True))
        .order_by(SegmentChief.segment_id, SegmentChief.level)
    ):  # fmt: skip
        chiefs[segment_id] = _Chief(user_id, username, name, level)  # the last level wins
    return chiefs
