"""The taxonomy and the two routing tables shipped with roadchief (Huiji and Dengfeng)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from app.access.rules import Principal
from app.routing.models import Category, RuleSet, RuleSetStatus
from app.routing.rule_sets import activate_rule_set, upload_rule_set
from app.routing.schemas import RuleSetDocument, TaxonomyDocument
from app.routing.taxonomy import DATA_DIR, SHIPPED_TAXONOMY, import_taxonomy, read_document

RULE_SETS_DIR = DATA_DIR / "rule_sets"
#: Built from seed 000 (惠济区) and seed 001 (登封市); the first is activated by default.
SHIPPED_RULE_SETS = (RULE_SETS_DIR / "huiji-2019.yaml", RULE_SETS_DIR / "dengfeng-2020.yaml")
#: Earlier editions of each shipped table, as deployments may have stored them. Edition 1
#: gave every responsible unit of a work item a task on every case (12 units a pothole).
SUPERSEDED_RULE_SETS: dict[Path, tuple[Path, ...]] = {
    SHIPPED_RULE_SETS[0]: (RULE_SETS_DIR / "superseded" / "huiji-2019.1.yaml",),
    SHIPPED_RULE_SETS[1]: (RULE_SETS_DIR / "superseded" / "dengfeng-2020.1.yaml",),
}


def shipped_taxonomy() -> TaxonomyDocument:
    return TaxonomyDocument.model_validate(read_document(SHIPPED_TAXONOMY))


def shipped_rule_set(path: Path) -> RuleSetDocument:
    return RuleSetDocument.model_validate(read_document(path))


def load_shipped_routing(session: Session, principal: Principal) -> list[str]:
    """Import the shipped taxonomy and rule sets into an empty deployment, and bring
    superseded editions of the shipped tables up to date.

    An admin's own tables are never replaced: where rule sets exist, only a shipped
    table's earlier edition is followed by the current one (uploaded as the next
    version, and put in force if the earlier edition is). Decisions already made keep
    their version. Returns what it did, one line each.
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
    for path in SHIPPED_RULE_SETS:
        done += _follow_superseded(session, principal, path)
    return done


def _follow_superseded(session: Session, principal: Principal, path: Path) -> list[str]:
    """Upload the current edition of a shipped table where an earlier one is stored, and
    activate it where the earlier one is in force."""
    earlier = [shipped_rule_set(p) for p in SUPERSEDED_RULE_SETS[path]]
    current = shipped_rule_set(path)
    stored = [
        (row, RuleSetDocument.model_validate(row.document))
        for row in session.scalars(select(RuleSet).order_by(RuleSet.version))
    ]
    old = [row for row, document in stored if document in earlier]
    if not old:
        return []
    done = []
    version = next((row.version for row, document in stored if document == current), None)
    if version is None:
        version = upload_rule_set(session, principal, current).version
        done.append(f"rule set v{version} {current.name}: current edition of {path.name}")
    in_force = next((row for row in old if row.status == RuleSetStatus.ACTIVE), None)
    if in_force is not None:
        activate_rule_set(
            session,
            principal,
            version,
            reason=f"随附分工表新版：替换 v{in_force.version}（每案只派须处置的单位）",
        )
        done.append(f"rule set v{version} {current.name}: active instead of v{in_force.version}")
    return done
