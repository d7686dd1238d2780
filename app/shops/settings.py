"""Street-front shops' settings: visits and the credit score's rules
(`ROADCHIEF_SHOP_*`), the rules parsed once into points per reason."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode

from app.core.config import ENV_CONFIG, named_numbers

#: Why a shop's credit score moves (诚信分), each with the points a rule gives it.
REASONS = {
    "visit_failed_item": "走访检查不合格项",
    "visit_passed": "走访检查全部合格",
    "red_flag": "评为红旗商户",
    "black_flag": "评为黑旗商户",
}


class ShopSettings(BaseSettings):
    """Shop visits and credit."""

    model_config = ENV_CONFIG

    shop_visit_radius_m: float = Field(
        default=50.0, gt=0, le=1000, description="A shop visit is recorded this close to the shop."
    )
    shop_visits_per_week: int = Field(
        default=1,
        ge=1,
        le=7,
        description="Visits each street-front shop needs a week (门前四包 checks), by its "
        "segment's ground-level chief for the chief's own duty.",
    )
    shop_credit_rules: Annotated[dict[str, float], NoDecode] = Field(
        default="visit_failed_item:-2,visit_passed:1,red_flag:5,black_flag:-10",
        validate_default=True,
        description="How a shop's credit score (诚信分) moves, per reason.",
    )
    shop_blacklist_below: float = Field(
        default=60.0, ge=0, le=100, description="Below this credit a shop is blacklisted."
    )

    @field_validator("shop_credit_rules", mode="before")
    @classmethod
    def _credit_rules(cls, value: object) -> object:
        return parse_rules(value) if isinstance(value, str) else value


def parse_rules(text: str) -> dict[str, float]:
    """'visit_failed_item:-2,...' → points per reason; every reason once."""
    rules = named_numbers(text)
    if set(rules) != set(REASONS):
        raise ValueError(f"every reason needs a value: {', '.join(REASONS)}")
    return rules
