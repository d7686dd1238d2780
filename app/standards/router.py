"""`GET /api/v1/standards/national-classes`: the editions and every category's class."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import select

from app.access.deps import PrincipalDep
from app.access.rules import Permission
from app.core.deps import SessionDep
from app.core.errors import problem_responses
from app.core.routes import api_router
from app.routing.models import Category
from app.standards.codes import LayoutDoc, editions, load_edition, standards_settings

router = api_router(prefix="/api/v1/standards", tags=["standards"])


class EditionOut(BaseModel):
    edition: str
    title: str
    status: str
    layout: LayoutDoc
    identifier_length: int
    sources: list[str]
    missing: str | None
    table_source: str | None = Field(description="The deployment's platform table, if loaded.")


class CategoryClasses(BaseModel):
    code: str
    name: str
    national: dict[str, Any] | None = Field(description="The taxonomy's class by name.")
    classes: dict[str, str | None] = Field(description="Edition → national code (or null).")


class NationalClassesOut(BaseModel):
    edition: str = Field(description="The edition in force (ROADCHIEF_NATIONAL_EDITION).")
    editions: list[EditionOut]
    categories: list[CategoryClasses]


@router.get(
    "/national-classes",
    summary="National editions and each category's class (管理部件和事件分类代码)",
    responses=problem_responses(),
)
def national_classes(session: SessionDep, principal: PrincipalDep) -> NationalClassesOut:
    principal.require(Permission.ROUTING_READ)
    options = standards_settings()
    loaded = [
        load_edition(key, options.table if key == options.edition else None) for key in editions()
    ]
    leaves = session.scalars(
        select(Category)
        .where(Category.is_group.is_(False), Category.active.is_(True))
        .order_by(Category.path)
    ).all()
    categories = []
    for category in leaves:
        classes = {}
        for edition in loaded:
            cls = edition.classify(category.national)
            classes[edition.key] = cls.code if cls else None
        categories.append(
            CategoryClasses(
                code=category.code, name=category.name, national=category.national, classes=classes
            )
        )
    return NationalClassesOut(
        edition=options.edition,
        editions=[
            EditionOut(
                edition=e.key,
                title=e.doc.title,
                status=e.doc.status,
                layout=e.doc.layout,
                identifier_length=e.doc.layout.length,
                sources=e.doc.sources,
                missing=e.doc.missing,
                table_source=e.table_source,
            )
            for e in loaded
        ],
        categories=categories,
    )
