"""The national code of each category, and the codes accepted in place of a category."""

from __future__ import annotations

from typing import Annotated

from pydantic import StringConstraints
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.routing.models import Category
from app.routing.taxonomy import UnknownCategory
from app.standards.codes import NationalClass, current_edition

#: A class of the deployment's national edition as clients name it: `event:0401`.
NationalCode = Annotated[
    str, StringConstraints(pattern=r"^(component|event):[0-9]{2,6}$", max_length=16)
]


def national_class(category: Category) -> NationalClass | None:
    """The category's class in the deployment's edition (None: its table has no code)."""
    return current_edition().classify(category.national)


def national_code_of(session: Session, category_code: str) -> str | None:
    """The class code (`event:0401`) of one category in the deployment's edition."""
    category = session.scalar(select(Category).where(Category.code == category_code))
    found = national_class(category) if category is not None else None
    return found.code if found else None


def national_codes(session: Session) -> dict[str, NationalClass]:
    """Every active leaf's national class, by category code (leaves without one left out)."""
    leaves = session.scalars(
        select(Category).where(Category.is_group.is_(False), Category.active.is_(True))
    ).all()
    found = {c.code: national_class(c) for c in leaves}
    return {code: cls for code, cls in found.items() if cls is not None}


def aliases(session: Session) -> dict[str, str]:
    """National code → category code, for the codes exactly one leaf carries: a code two
    categories share (both are 积存垃圾渣土) names neither, and is not accepted."""
    by_code: dict[str, list[str]] = {}
    for category, cls in national_codes(session).items():
        by_code.setdefault(cls.code, []).append(category)
    return {code: cats[0] for code, cats in by_code.items() if len(cats) == 1}


def category_named(session: Session, category_code: str | None, national_code: str | None) -> str:
    """The category a client names, by its own code or by its national class (one of the
    two; both must then agree). A national code that no leaf, or two leaves, carry names
    nothing and is refused."""
    if national_code is None:
        if category_code is None:
            raise UnknownCategory("须给出 category_code 或 national_code")
        return category_code
    code = aliases(session).get(national_code)
    if code is None:
        raise UnknownCategory(
            f"国家标准分类“{national_code}”在 {current_edition().key} 中没有唯一对应的问题类别"
        )
    if category_code is not None and category_code != code:
        raise UnknownCategory(
            f"category_code“{category_code}”与 national_code“{national_code}”（{code}）不一致"
        )
    return code
