"""Shop visits (商户走访): a chief stands at a shop, checks each item of its frontage pledge
(门前四包/五包), photographs what fails and may report a failed item at once.

A visit is one transaction: the visit, its items and photos, and the report (with the case
it opens or joins) of each failed item marked `open_case`. A retry with the same
`Idempotency-Key` gets the first answer back.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING

from geoalchemy2.shape import from_shape, to_shape
from shapely.geometry import Point
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.access.rules import Permission, Principal, SignedIn
from app.accounts.models import User
from app.cases.models import Case
from app.core.database import utcnow
from app.core.errors import NotFound, Problem
from app.core.geo import LocalFrame
from app.core.idempotency import Idempotent, run_idempotent
from app.core.pagination import Keyset
from app.media.models import Photo
from app.media.service import photo_out, usable_photos, use_photo
from app.patrols.service import check_patrol
from app.reports.models import Report
from app.reports.schemas import PhotoRef, ReportIn
from app.reports.service import LocationTooInaccurate, check_not_ahead, file_report
from app.shops.credit import move_credit
from app.shops.models import ShopVisit, ShopVisitItem, ShopVisitPhoto
from app.shops.pledges import BY_CODE, PLEDGE_ITEMS, PledgeItem, items_for
from app.shops.schemas import ItemCheckIn, ItemCheckOut, ShopVisitIn, ShopVisitOut
from app.territory.locator import wgs84_in_area
from app.territory.models import Jurisdiction, Pledge, Shop
from app.territory.service import in_sight

if TYPE_CHECKING:
    from app.settings import Settings

PLEDGE_NAMES = {Pledge.FOUR: "门前四包", Pledge.FIVE: "门前五包"}

#: A shop's visits, newest first.
NEWEST_FIRST = Keyset(ShopVisit.id, descending=True)


class TooFarFromShop(Problem):
    code = "too_far_from_shop"
    status = 422
    title = "离商户太远，请到店门前检查"


class VisitTooOld(Problem):
    code = "visit_too_old"
    status = 422
    title = "走访时间过早，不能补录"


class UnknownPledgeItem(Problem):
    code = "unknown_pledge_item"
    status = 422
    title = "检查项不存在或不属于该商户的承诺"


class PledgeItemsIncomplete(Problem):
    code = "pledge_items_incomplete"
    status = 422
    title = "须逐项检查该商户承诺的每一项，且每项一次"


class FailPhotoRequired(Problem):
    code = "fail_photo_required"
    status = 422
    title = "不合格项须附现场照片"


class CaseNeedsFail(Problem):
    code = "open_case_needs_fail"
    status = 422
    title = "只有不合格项才能立案"


def visible_shop(session: Session, principal: Principal, code: str) -> tuple[Shop, str]:
    """The shop and its street's path; 404 also outside the caller's scope."""
    return in_sight(session, principal, Shop, code, "商户")


def record_visit(
    session: Session,
    settings: Settings,
    principal: SignedIn,
    shop_code: str,
    body: ShopVisitIn,
    idempotency_key: str | None,
) -> Idempotent[ShopVisitOut]:
    """Record a visit near the shop, with every item of its pledge checked."""
    principal.require(Permission.PATROLS_RECORD)
    # A refused item leaves neither the visit nor a report behind (run_idempotent rolls back).
    return run_idempotent(
        session, principal.ref, f"shops.{shop_code}.visit", idempotency_key, body,
        lambda: _create(session, settings, principal, shop_code, body),
    )  # fmt: skip


def _check_time(settings: Settings, body: ShopVisitIn) -> None:
    now = utcnow()
    check_not_ahead(settings, body.visited_at, "走访时间", now)
    if body.visited_at < now - timedelta(hours=settings.patrol_offline_start_hours):
        raise VisitTooOld(
            f"走访须在 {settings.patrol_offline_start_hours:g} 小时内上传",
            visited_at=body.visited_at.isoformat(),
        )
    if body.accuracy_m is not None and body.accuracy_m > settings.report_max_accuracy_m:
        raise LocationTooInaccurate(
            f"定位误差 {body.accuracy_m:.0f} 米，须不超过 {settings.report_max_accuracy_m:.0f} 米"
        )


def _checked_items(shop: Shop, checks: Sequence[ItemCheckIn]) -> list[PledgeItem]:
    """Each item of the shop's pledge exactly once, in the order sent; 422 otherwise."""
    due = items_for(shop.pledge)
    pledge = PLEDGE_NAMES[shop.pledge]
    items = []
    for index, check in enumerate(checks):
        item = BY_CODE.get(check.item_code)
        if item is None or item not in due:
            raise UnknownPledgeItem(
                f"第 {index + 1} 项“{check.item_code}”不是“{shop.name}”{pledge}的检查项",
                index=index, allowed=[i.code for i in due],
            )  # fmt: skip
        if check.passed and check.open_case:
            raise CaseNeedsFail(f"“{item.name}”检查合格，不能立案", index=index)
        if not check.passed and not check.photo_ids:
            raise FailPhotoRequired(f"“{item.name}”不合格，须附至少一张照片", index=index)
        items.append(item)
    codes = [i.code for i in items]
    if sorted(codes) != sorted(i.code for i in due):
        missing = [i.code for i in due if i.code not in codes]
        repeated = sorted({c for c in codes if codes.count(c) > 1})
        raise PledgeItemsIncomplete(
            f"{pledge}共 {len(due)} 项，须各检查一次", missing=missing, repeated=repeated
        )
    return items


def _create(
    session: Session, settings: Settings, principal: Principal, code: str, body: ShopVisitIn
) -> ShopVisitOut:
    shop, path = visible_shop(session, principal, code)
    _check_time(settings, body)
    items = _checked_items(shop, body.items)
    lon, lat = wgs84_in_area(settings, body)
    place = to_shape(shop.geom)
    distance = round(LocalFrame(place.x, place.y).distance_m(Point(lon, lat)), 1)
    if distance > settings.shop_visit_radius_m:
        raise TooFarFromShop(
            f"您距“{shop.name}” {distance:.0f} 米，须在 {settings.shop_visit_radius_m:.0f} 米以内",
            distance_m=distance,
        )
    if body.patrol_id is not None:
        check_patrol(session, settings, principal, body.patrol_id, body.visited_at)
    photos = {
        check.item_code: usable_photos(session, principal, check.photo_ids) for check in body.items
    }
    visit = ShopVisit(
        shop_id=shop.id, user_id=principal.user_id, visited_at=body.visited_at,
        received_at=utcnow(), geom=from_shape(Point(lon, lat), srid=4326),
        coordinate_system=body.coordinate_system, accuracy_m=body.accuracy_m,
        distance_m=distance, note=body.note, patrol_id=body.patrol_id,
        failed_count=sum(not c.passed for c in body.items),
    )  # fmt: skip
    session.add(visit)
    session.flush()
    for check, item in zip(body.items, items, strict=True):
        row = ShopVisitItem(visit_id=visit.id, item_code=item.code, passed=check.passed,
                            note=check.note)  # fmt: skip
        for position, photo in enumerate(dict.fromkeys(photos[item.code])):
            session.add(ShopVisitPhoto(visit_id=visit.id, item_code=item.code,
                                       photo_id=photo.id, position=position))  # fmt: skip
            use_photo(session, photo, f"shop_visit:{visit.id}", path)
        if check.open_case:
            row.report_id = _report_failed_item(session, settings, principal, shop, item, check,
                                                body)  # fmt: skip
        session.add(row)
    session.flush()
    if visit.failed_count:
        move_credit(session, settings, shop.id, "visit_failed_item", times=visit.failed_count,
                    visit_id=visit.id)  # fmt: skip
    else:
        move_credit(session, settings, shop.id, "visit_passed", visit_id=visit.id)
    return visit_out(session, settings, visit)


def _report_failed_item(
    session: Session,
    settings: Settings,
    principal: Principal,
    shop: Shop,
    item: PledgeItem,
    check: ItemCheckIn,
    visit: ShopVisitIn,
) -> int:
    """Report a failed item as any report of its category: placed, routed, maybe joined."""
    finding = check.note or f"未做到：{item.requirement}"
    receipt = file_report(
        session,
        settings,
        principal,
        ReportIn(
            category_code=item.category_code,
            description=f"【{PLEDGE_NAMES[shop.pledge]}】{shop.name}（{shop.code}）"
            f"{item.name}不合格：{finding}",
            lon=visit.lon,
            lat=visit.lat,
            coordinate_system=visit.coordinate_system,
            accuracy_m=visit.accuracy_m,
            urgency=check.urgency,
            device_time=visit.visited_at,
            photos=[PhotoRef(photo_id=i) for i in dict.fromkeys(check.photo_ids)],
            patrol_id=visit.patrol_id,
        ),
    )
    return receipt.report_id


def visit_out(session: Session, settings: Settings, visit: ShopVisit) -> ShopVisitOut:
    shop = session.get_one(Shop, visit.shop_id)
    user = session.get_one(User, visit.user_id)
    rows = session.execute(
        select(ShopVisitItem, Case.number, Case.status)
        .outerjoin(Report, ShopVisitItem.report_id == Report.id)
        .outerjoin(Case, Report.case_id == Case.id)
        .where(ShopVisitItem.visit_id == visit.id)
    ).all()
    photos: dict[str, list[Photo]] = {}
    for item_code, photo in session.execute(
        select(ShopVisitPhoto.item_code, Photo)
        .join(Photo, ShopVisitPhoto.photo_id == Photo.id)
        .where(ShopVisitPhoto.visit_id == visit.id)
        .order_by(ShopVisitPhoto.item_code, ShopVisitPhoto.position)
    ):
        photos.setdefault(item_code, []).append(photo)
    order = {item.code: n for n, item in enumerate(PLEDGE_ITEMS)}
    items = [
        ItemCheckOut(
            item_code=row.item_code,
            name=BY_CODE[row.item_code].name if row.item_code in BY_CODE else row.item_code,
            passed=row.passed,
            note=row.note,
            photos=[photo_out(p, settings) for p in photos.get(row.item_code, [])],
            case_number=number,
            case_status=status,
        )
        for row, number, status in sorted(rows, key=lambda r: order.get(r[0].item_code, 99))
    ]
    point = to_shape(visit.geom)
    return ShopVisitOut(
        id=visit.id,
        shop_code=shop.code,
        shop_name=shop.name,
        pledge=shop.pledge,
        username=user.username,
        display_name=user.display_name,
        visited_at=visit.visited_at,
        received_at=visit.received_at,
        lon=point.x,
        lat=point.y,
        distance_m=visit.distance_m,
        note=visit.note,
        passed=visit.failed_count == 0,
        failed_count=visit.failed_count,
        patrol_id=visit.patrol_id,
        items=items,
    )


def get_visit(
    session: Session, settings: Settings, principal: Principal, visit_id: int
) -> ShopVisitOut:
    """One visit: for its visitor, and whoever sees the shop's street."""
    principal.require(Permission.PATROLS_READ)
    row = session.execute(
        select(ShopVisit, Jurisdiction.path)
        .join(Shop, ShopVisit.shop_id == Shop.id)
        .join(Jurisdiction, Shop.street_id == Jurisdiction.id)
        .where(ShopVisit.id == visit_id)
    ).first()
    if row is None or not (row[0].user_id == principal.user_id or principal.sees_path(row[1])):
        raise NotFound("走访记录不存在")
    return visit_out(session, settings, row[0])


def shop_visits(
    session: Session,
    settings: Settings,
    principal: Principal,
    code: str,
    *,
    limit: int,
    cursor: str | None,
) -> tuple[list[ShopVisitOut], str | None]:
    """A shop's visits, newest first."""
    principal.require(Permission.PATROLS_READ)
    shop, _ = visible_shop(session, principal, code)
    query = select(ShopVisit).where(ShopVisit.shop_id == shop.id)
    rows, next_cursor = NEWEST_FIRST.scalars(session, query, limit=limit, cursor=cursor)
    return [visit_out(session, settings, r) for r in rows], next_cursor
