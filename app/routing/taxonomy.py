"""The problem taxonomy (问题分类): import a whole tree, read it, check a report's category."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.access.rules import Permission, Principal
from app.audit.models import AuditEventType
from app.audit.service import record
from app.core.errors import FieldError, NotFound, Problem
from app.routing.models import Category, Urgency
from app.routing.rules import CategoryNode, Taxonomy
from app.routing.schemas import (
    CategoryIn,
    CategoryOut,
    NationalClass,
    TaxonomyDocument,
    TaxonomyImportResult,
    TaxonomyOut,
    TimeLimits,
)
from app.territory.models import AssetType

DATA_DIR = Path(__file__).resolve().parent / "data"
SHIPPED_TAXONOMY = DATA_DIR / "taxonomy.yaml"


class TaxonomyInvalid(Problem):
    code = "taxonomy_invalid"
    status = 422
    title = "问题分类表有误，未作任何更改"


class UnknownCategory(Problem):
    code = "unknown_category"
    status = 422
    title = "问题类别不存在"


class CategoryIsGroup(Problem):
    code = "category_is_group"
    status = 422
    title = "请选择具体的问题类别，而不是类别分组"


def read_document(path: Path) -> dict[str, Any]:
    """A taxonomy or rule-set file (YAML or JSON: JSON is YAML) as plain data."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping at the top level")
    return data


def _walk(
    nodes: list[CategoryIn], parent: CategoryIn | None, loc: list[str | int]
) -> Iterator[tuple[CategoryIn, CategoryIn | None, list[str | int]]]:
    for i, node in enumerate(nodes):
        here = [*loc, i]
        yield node, parent, here
        yield from _walk(node.children, node, [*here, "children"])


def _check(document: TaxonomyDocument) -> list[FieldError]:
    errors: list[FieldError] = []
    seen: set[str] = set()
    for node, parent, loc in _walk(document.categories, None, ["categories"]):
        if node.code in seen:
            errors.append(FieldError(loc=[*loc, "code"], code="duplicate_code", message="编码重复"))
        seen.add(node.code)
        if parent is not None and not node.code.startswith(parent.code + "."):
            errors.append(
                FieldError(
                    loc=[*loc, "code"],
                    code="code_not_under_parent",
                    message=f"子类编码须以上级编码“{parent.code}.”开头",
                )
            )
        if parent is None and "." in node.code:
            errors.append(
                FieldError(
                    loc=[*loc, "code"],
                    code="code_not_under_parent",
                    message="顶级分组编码不能含“.”",
                )
            )
        if node.children and node.asset_types:
            errors.append(
                FieldError(
                    loc=[*loc, "asset_types"],
                    code="group_with_asset_types",
                    message="分组不能指定部件类型，请在具体类别上指定",
                )
            )
    return errors


def import_taxonomy(
    session: Session, principal: Principal, document: TaxonomyDocument
) -> TaxonomyImportResult:
    """Replace the taxonomy with `document`, all or nothing.

    Codes in the document are created or updated; codes left out become inactive (old
    cases keep them, new reports cannot use them). Inherited values are resolved here,
    so every stored category is complete.
    """
    principal.require(Permission.ROUTING_MANAGE)
    errors = _check(document)
    if errors:
        raise TaxonomyInvalid(f"共 {len(errors)} 处错误", errors=errors)
    existing = {c.code: c for c in session.scalars(select(Category))}
    created = updated = 0
    kept: set[str] = set()
    defaults = document.defaults
    preorder = itertools.count(1)

    def store(
        node: CategoryIn,
        parent: Category | None,
        inherited: tuple[Urgency, bool, dict[Urgency, TimeLimits]],
    ) -> None:
        nonlocal created, updated
        urgency = node.urgency or inherited[0]
        photo = node.photo_required if node.photo_required is not None else inherited[1]
        limits = {**inherited[2], **(node.time_limits or {})}
        row = existing.get(node.code)
        if row is None:
            row = Category(code=node.code)
            session.add(row)
            created += 1
        else:
            updated += 1
        row.parent = parent
        row.path = (parent.path if parent else "/") + node.code + "/"
        row.is_group = bool(node.children)
        row.position = next(preorder)
        row.name, row.name_en, row.description = node.name, node.name_en, node.description
        row.default_urgency = urgency
        row.photo_required = photo
        row.time_limits = {u.value: t.model_dump() for u, t in sorted(limits.items())}
        row.asset_types = [a.value for a in node.asset_types]
        row.national = node.national.model_dump(exclude_none=True) if node.national else None
        row.items = list(node.items)
        row.active = True
        kept.add(node.code)
        for child in node.children:
            store(child, row, (urgency, photo, limits))

    for top in document.categories:
        store(top, None, (defaults.urgency, defaults.photo_required, defaults.time_limits))
    deactivated = 0
    for code, row in existing.items():
        if code not in kept and row.active:
            row.active = False
            deactivated += 1
    record(
        session,
        AuditEventType.TAXONOMY_IMPORTED,
        actor=principal,
        created=created,
        updated=updated,
        deactivated=deactivated,
    )
    session.flush()
    from app.routing.rule_sets import uncovered_by_active

    uncovered = uncovered_by_active(session)
    session.commit()
    return TaxonomyImportResult(
        created=created, updated=updated, deactivated=deactivated, uncovered=uncovered
    )


def load_taxonomy(session: Session) -> dict[str, CategoryNode]:
    """The taxonomy as the routing engine sees it."""
    rows = session.execute(
        select(
            Category.code,
            Category.name,
            Category.path,
            Category.is_group,
            Category.asset_types,
            Category.active,
            Category.default_urgency,
            Category.photo_required,
            Category.time_limits,
        )
    ).all()
    nodes: dict[str, CategoryNode] = {}
    for code, name, path, is_group, asset_types, active, urgency, photo, limits in rows:
        lineage = [p for p in path.split("/") if p]
        nodes[code] = CategoryNode(
            code=code,
            name=name,
            parent_code=lineage[-2] if len(lineage) > 1 else None,
            is_group=is_group,
            depth=len(lineage),
            asset_types=frozenset(asset_types or ()),
            active=active,
            default_urgency=urgency.value,
            photo_required=photo,
            time_limits=limits,
        )
    return nodes


def require_leaf(taxonomy: Taxonomy, code: str) -> CategoryNode:
    """The active leaf category `code`, or a 422 that says what is wrong with it."""
    node = taxonomy.get(code)
    if node is None or not node.active:
        raise UnknownCategory(f"问题类别“{code}”不存在或已停用", category_code=code)
    if node.is_group:
        raise CategoryIsGroup(f"“{node.name}”是分组，请选择其下的具体类别", category_code=code)
    return node


def _out(row: Category, parent_code: str | None) -> CategoryOut:
    return CategoryOut(
        code=row.code,
        parent_code=parent_code,
        is_group=row.is_group,
        name=row.name,
        name_en=row.name_en,
        description=row.description,
        default_urgency=row.default_urgency,
        photo_required=row.photo_required,
        time_limits={Urgency(u): TimeLimits(**t) for u, t in row.time_limits.items()},
        asset_types=[AssetType(t) for t in row.asset_types],
        national=NationalClass.model_validate(row.national) if row.national else None,
        items=row.items,
        active=row.active,
    )


def get_taxonomy(
    session: Session, principal: Principal, *, include_inactive: bool = False
) -> TaxonomyOut:
    principal.require(Permission.ROUTING_READ)
    query = select(Category).order_by(Category.position)
    if not include_inactive:
        query = query.where(Category.active)
    rows = list(session.scalars(query))
    codes = {r.id: r.code for r in rows}
    return TaxonomyOut(categories=[_out(r, codes.get(r.parent_id or 0)) for r in rows])


def get_category(session: Session, principal: Principal, code: str) -> CategoryOut:
    principal.require(Permission.ROUTING_READ)
    row = session.scalar(select(Category).where(Category.code == code))
    if row is None:
        raise NotFound(f"问题类别“{code}”不存在")
    parent_code = row.parent.code if row.parent else None
    return _out(row, parent_code)
