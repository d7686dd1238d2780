"""Shop visit schemas: what the phone sends after checking a frontage, and the record."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from app.cases.models import CaseStatus
from app.core.coords import PointIn
from app.core.inputs import DatabaseId, Moment
from app.core.moments import LocalMoment
from app.media.schemas import PhotoOut
from app.routing.models import Urgency
from app.territory.models import Pledge, ShopKind

Note = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


class PledgeItemOut(BaseModel):
    code: str = Field(examples=["order"])
    name: str = Field(examples=["包秩序"])
    requirement: str
    category_code: str = Field(description="The case category a failed check opens.")
    pledges: list[Pledge] = Field(description="The pledges that include the item.")


class ItemCheckIn(BaseModel):
    """One pledge item as found: pass, or fail with at least one photo."""

    model_config = ConfigDict(extra="forbid")

    item_code: str = Field(examples=["order"])
    passed: bool
    note: Note | None = None
    photo_ids: list[int] = Field(
        default_factory=list, max_length=9, description="Uploaded beforehand; required on a fail."
    )
    open_case: bool = Field(
        default=False,
        description="On a fail: report it at once (opens a case, or joins the open one nearby).",
    )
    urgency: Urgency | None = Field(
        default=None, description="For the case; the category's default."
    )


class ShopVisitIn(PointIn):
    """A visit to a shop (走访): where the visitor stood, and every item of its pledge."""

    model_config = ConfigDict(extra="forbid")

    visited_at: Moment = Field(
        description="When the phone recorded the visit (offline visits are sent later).",
        examples=["2026-11-23T10:15:00+08:00"],
    )
    accuracy_m: float | None = Field(default=None, ge=0)
    note: Note | None = None
    items: list[ItemCheckIn] = Field(min_length=1, max_length=10)
    patrol_id: DatabaseId | None = Field(
        default=None, description="The visitor's patrol, if walking one."
    )


class ItemCheckOut(BaseModel):
    item_code: str
    name: str
    passed: bool
    note: str | None
    photos: list[PhotoOut]
    case_number: str | None = Field(description="The case the failed item opened or joined.")
    case_status: CaseStatus | None


class ShopVisitOut(BaseModel):
    id: int
    shop_code: str
    shop_name: str
    pledge: Pledge
    username: str
    display_name: str
    visited_at: LocalMoment
    received_at: LocalMoment
    lon: float = Field(description="Where the visitor stood, WGS 84.")
    lat: float
    distance_m: float = Field(description="From where the visitor stood to the shop.")
    note: str | None
    passed: bool = Field(description="Every item passed.")
    failed_count: int
    patrol_id: int | None
    items: list[ItemCheckOut]


class MissedWeek(BaseModel):
    start: date = Field(description="Monday.")
    end: date = Field(description="Sunday.")
    visits: int
    required: int


class ShopDuty(BaseModel):
    """One shop's weekly visits over the period (by anyone), and its responsible chief's."""

    shop_code: str
    shop_name: str
    kind: ShopKind
    segment_code: str
    street_code: str
    chief_username: str | None = Field(description="The segment's ground-level chief, if any.")
    weeks: int
    met: int
    missed: list[MissedWeek]
    rate: float | None = Field(description="met / weeks judged; null while none is judged.")
    last_visited_at: LocalMoment | None


class ChiefShopDuty(BaseModel):
    """A chief's own visits to the shops they answer for: shop-weeks due and met."""

    username: str
    display_name: str
    chief_level: int
    shops: int
    shop_weeks: int
    met: int
    rate: float | None = Field(description="met / weeks judged; null while none is judged.")
    missed: list[str] = Field(description="'SHOP-CODE@week-Monday' for each missed shop-week.")


class StreetShopDuty(BaseModel):
    street_code: str
    shops: int
    shop_weeks: int
    met: int
    rate: float | None = Field(description="met / weeks judged; null while none is judged.")


class ShopDutyOut(BaseModel):
    date_from: date
    date_to: date
    visits_per_week: int
    shops: list[ShopDuty]
    chiefs: list[ChiefShopDuty]
    streets: list[StreetShopDuty]


class RatingIn(BaseModel):
    """An assessor's rating of a shop: a flag (红旗/黑旗), stars (星级), or both."""

    model_config = ConfigDict(extra="forbid")

    flag: Literal["red", "black"] | None = None
    stars: int | None = Field(default=None, ge=1, le=5)
    note: Note | None = None

    @model_validator(mode="after")
    def _something(self) -> RatingIn:
        if self.flag is None and self.stars is None:
            raise ValueError("a rating needs a flag, stars, or both")
        return self


class CreditEventOut(BaseModel):
    occurred_at: LocalMoment
    reason: str = Field(examples=["visit_failed_item"])
    reason_name: str
    delta: float
    balance: float = Field(description="The score after this move.")
    visit_id: int | None
    rating_id: int | None


class ShopCreditOut(BaseModel):
    shop_code: str
    shop_name: str
    credit: float = Field(description="诚信分, 0..100.")
    flag: str | None
    stars: int | None
    blacklisted: bool = Field(description="Below ROADCHIEF_SHOP_BLACKLIST_BELOW (黑榜).")
    history: list[CreditEventOut] = Field(description="Newest first.")
    next_cursor: str | None


class BlacklistRow(BaseModel):
    shop_code: str
    shop_name: str
    credit: float
    flag: str | None
    segment_code: str
    street_code: str
