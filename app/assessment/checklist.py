"""The field-inspection checklist (考评标准): categories of items, each with its deduction
and the case category a finding reports to. Shipped in Guancheng's shape (10 categories,
46 items, `data/checklist.yaml`); a city points `ROADCHIEF_INSPECTION_CHECKLIST` at its own."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

if TYPE_CHECKING:
    from app.settings import Settings


SHIPPED = Path(__file__).resolve().parent / "data" / "checklist.yaml"
ItemCode = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,31}$")]


class ChecklistItem(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    code: ItemCode
    name: str = Field(min_length=1, max_length=100)
    standard: str = Field(min_length=1, max_length=400)
    deduction: float = Field(gt=0, le=100, description="Points deducted per occurrence.")
    case_category: str = Field(description="The case category a finding reports to.")


class ChecklistCategory(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    code: ItemCode
    name: str = Field(min_length=1, max_length=100)
    items: list[ChecklistItem] = Field(min_length=1)


class Checklist(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    categories: list[ChecklistCategory] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_codes(self) -> Checklist:
        codes = [i.code for c in self.categories for i in c.items]
        codes += [c.code for c in self.categories]
        repeated = sorted({c for c in codes if codes.count(c) > 1})
        if repeated:
            raise ValueError(f"codes used twice: {', '.join(repeated)}")
        return self

    def item(self, code: str) -> tuple[ChecklistCategory, ChecklistItem] | None:
        for category in self.categories:
            for item in category.items:
                if item.code == code:
                    return category, item
        return None

    @property
    def item_count(self) -> int:
        return sum(len(c.items) for c in self.categories)


@cache
def _load(path: Path) -> Checklist:
    return Checklist.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))


def checklist(settings: Settings) -> Checklist:
    """The checklist in force (read once per file)."""
    return _load(Path(settings.inspection_checklist) if settings.inspection_checklist else SHIPPED)
