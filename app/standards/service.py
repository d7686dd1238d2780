"""The national code of each category, and the codes accepted in place of a category."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.routing.models import Category
from app.standards.codes import NationalClass, current_edition


def national_class(category: Category) -> NationalClass | None:
    """The category's class in the deployment's edition (None: its table has no code)."""
    return current_edition().classify(category.national)


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
