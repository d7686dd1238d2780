"""The frontage pledge's items (门前四包 / 门前五包), as data: what a visit checks.

A shop that signed the four-item pledge is checked on the first four; the five-item pledge
adds the duty to dissuade and report. Each item names the case category a failed check
opens, so the case is routed like any report of that problem.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.territory.models import Pledge


@dataclass(frozen=True, slots=True)
class PledgeItem:
    code: str
    name: str
    requirement: str
    category_code: str
    pledges: frozenset[Pledge]


_BOTH = frozenset({Pledge.FOUR, Pledge.FIVE})

PLEDGE_ITEMS: tuple[PledgeItem, ...] = (
    PledgeItem(
        "order", "包秩序", "门前无占道经营、店外经营，车辆有序停放",
        "order.shop_overflow", _BOTH,
    ),
    PledgeItem(
        "cleanliness", "包卫生", "门前无垃圾、污水、杂物，垃圾入桶",
        "clean.street_cleaning", _BOTH,
    ),
    PledgeItem(
        "greenery", "包绿化", "门前绿地、树木完好，无踩踏、无堆物",
        "greenery.road_greenery", _BOTH,
    ),
    PledgeItem(
        "facade", "包市容", "招牌规范整洁，无乱张贴、乱悬挂、乱涂写",
        "clean.facade", _BOTH,
    ),
    PledgeItem(
        "reporting", "包劝阻报告", "对门前违法违规行为及时劝阻，劝阻无效的及时报告",
        "civility.public_behaviour", frozenset({Pledge.FIVE}),
    ),
)  # fmt: skip

BY_CODE = {item.code: item for item in PLEDGE_ITEMS}


def items_for(pledge: Pledge) -> list[PledgeItem]:
    """The items a shop with this pledge is checked on, in order."""
    return [item for item in PLEDGE_ITEMS if pledge in item.pledges]
