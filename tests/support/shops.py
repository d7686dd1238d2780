"""Shop visit steps (门前三包/五包): a shop on a chief's segments, a visit's body with every
item of its pledge passed, and one item failed."""

from __future__ import annotations

from typing import Any

from geoalchemy2.shape import to_shape
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.accounts.models import SegmentChief, User
from app.core.database import utcnow
from app.territory.models import Pledge, Shop

ITEMS_OF = {Pledge.FOUR: ["order", "cleanliness", "greenery", "facade"]}
ITEMS_OF[Pledge.FIVE] = [*ITEMS_OF[Pledge.FOUR], "reporting"]


def shop_of(session: Session, chief: str, pledge: Pledge = Pledge.FOUR) -> Shop:
    """A shop on one of `chief`'s segments, with the pledge asked for."""
    shop = session.scalars(
        select(Shop)
        .join(SegmentChief, SegmentChief.segment_id == Shop.segment_id)
        .join(User, SegmentChief.user_id == User.id)
        .where(User.username == chief, Shop.pledge == pledge)
        .order_by(Shop.code)
    ).first()
    assert shop is not None
    return shop


def visit_body(shop: Shop, metres_east: float = 12.0, **more: Any) -> dict[str, Any]:
    place = to_shape(shop.geom)
    return {
        "visited_at": utcnow().isoformat(),
        "lon": place.x + metres_east / 91_500,
        "lat": place.y,
        "accuracy_m": 6,
        "items": [{"item_code": c, "passed": True} for c in ITEMS_OF[shop.pledge]],
        **more,
    }


def failing(body: dict[str, Any], code: str, **check: Any) -> dict[str, Any]:
    body["items"] = [
        {"item_code": c["item_code"], "passed": False, **check} if c["item_code"] == code else c
        for c in body["items"]
    ]
    return body
