"""The taxonomy and the two routing tables shipped with roadchief (Huiji and Dengfeng)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from app.accounts.access import Principal
from app.routing.models import Category, RuleSet
from app.routing.rule_sets import upload_rule_set
from app.routing.schemas import RuleSetDocument, TaxonomyDocument
from app.routing.taxonomy import DATA_DIR, SHIPPED_TAXONOMY, import_taxonomy, read_document

RULE_SETS_DIR = DATA_DIR / "rule_sets"
#: Built from seed 000 (惠济区) and seed 001 (登封市); the first is activated by default.
SHIPPED_RULE_SETS = (RULE_SETS_DIR / "huiji-2019.yaml", RULE_SETS_DIR / "dengfeng-2020.yaml")


def shipped_taxonomy() -> TaxonomyDocument:
    return TaxonomyDocument.model_validate(read_document(SHIPPED_TAXONOMY))


def shipped_rule_set(path: Path) -> RuleSetDocument:
    return RuleSetDocument.model_validate(read_document(path))


def load_shipped_routing(session: Session, principal: Principal) -> list[str]:
    """Import the shipped taxonomy and rule sets into an empty deployment.

    Does nothing where a taxonomy or rule set already exists: an admin's own tables are
    never overwritten. Returns what it did, one line each.
    """
    done: list[str] = []
    if not session.scalar(select(exists().where(Category.id.isnot(None)))):
        result = import_taxonomy(session, principal, shipped_taxonomy())
        done.append(f"taxonomy: {result.created} categories")
    if not session.scalar(select(exists().where(RuleSet.id.isnot(None)))):
        for i, path in enumerate(SHIPPED_RULE_SETS):
            out = upload_rule_set(session, principal, shipped_rule_set(path), activate=i == 0)
            done.append(f"rule set v{out.version} {out.name} ({out.status.value})")
    return done
