"""Versioned routing tables: upload (validated whole), activate, roll back, read."""

from __future__ import annotations

import hashlib
import json

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.access.rules import Permission, Principal
from app.accounts.models import User
from app.audit.models import AuditEventType
from app.audit.service import record
from app.core.database import utcnow
from app.core.errors import FieldError, NotFound, Problem
from app.routing.models import RuleSet, RuleSetActivation, RuleSetStatus
from app.routing.rules import CompiledRuleSet, compile_rule_set, uncovered_leaves
from app.routing.schemas import RuleSetCheck, RuleSetDocument, RuleSetOut, RuleSetSummary
from app.routing.taxonomy import load_taxonomy
from app.territory.models import Jurisdiction, Unit


class RuleSetInvalid(Problem):
    code = "rule_set_invalid"
    status = 422
    title = "分拨规则有误，未作任何更改"


class RuleSetAlreadyActive(Problem):
    code = "rule_set_already_active"
    status = 409
    title = "该版本已是生效版本"


class NothingToRollBack(Problem):
    code = "nothing_to_roll_back"
    status = 409
    title = "没有可回退的上一版本"


class ActivationConflict(Problem):
    code = "activation_conflict"
    status = 409
    title = "另一位管理员刚刚切换了生效版本，请刷新后重试"


def check_document(
    session: Session, document: RuleSetDocument, *, strict: bool = True
) -> tuple[CompiledRuleSet | None, list[FieldError]]:
    """Compile `document` against this deployment's taxonomy, jurisdictions and units."""
    jurisdictions = dict(session.execute(select(Jurisdiction.code, Jurisdiction.path)).all())
    units = set(session.scalars(select(Unit.code)))
    return compile_rule_set(document, load_taxonomy(session), jurisdictions, units, strict=strict)


def uncovered_by_active(session: Session) -> list[str]:
    """Leaf categories the active rule set has no unlimited rule for (they fall back)."""
    active = _active(session)
    if active is None:
        return []
    compiled, _ = check_document(
        session, RuleSetDocument.model_validate(active.document), strict=False
    )
    assert compiled is not None
    return uncovered_leaves(compiled, load_taxonomy(session))


def _sha256(document: RuleSetDocument) -> str:
    canonical = json.dumps(
        document.model_dump(mode="json"), ensure_ascii=False, sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _summary(row: RuleSet, uploaded_by: str | None) -> RuleSetSummary:
    return RuleSetSummary(
        version=row.version,
        name=row.name,
        status=row.status,
        rule_count=len(row.document["rules"]),
        document_sha256=row.document_sha256,
        uploaded_at=row.uploaded_at,
        uploaded_by=uploaded_by,
        activated_at=row.activated_at,
    )


def _out(session: Session, row: RuleSet) -> RuleSetOut:
    uploaded_by = (
        session.scalar(select(User.username).where(User.id == row.uploaded_by_user_id))
        if row.uploaded_by_user_id
        else None
    )
    return RuleSetOut(
        **_summary(row, uploaded_by).model_dump(),
        document=RuleSetDocument.model_validate(row.document),
    )


def validate_rule_set(
    session: Session, principal: Principal, document: RuleSetDocument
) -> RuleSetCheck:
    """Check a document without storing it."""
    principal.require(Permission.ROUTING_MANAGE)
    _, errors = check_document(session, document)
    return RuleSetCheck(valid=not errors, errors=errors)


def upload_rule_set(
    session: Session,
    principal: Principal,
    document: RuleSetDocument,
    *,
    activate: bool = False,
    reason: str | None = None,
) -> RuleSetOut:
    """Store `document` as the next version (a draft unless `activate`), or refuse it whole."""
    principal.require(Permission.ROUTING_MANAGE)
    _, errors = check_document(session, document)
    if errors:
        raise RuleSetInvalid(f"共 {len(errors)} 处错误", errors=errors)
    version = (session.scalar(select(func.max(RuleSet.version))) or 0) + 1
    row = RuleSet(
        version=version,
        name=document.name,
        status=RuleSetStatus.DRAFT,
        document=document.model_dump(mode="json", exclude_none=True),
        document_sha256=_sha256(document),
        uploaded_by_user_id=principal.user_id,
    )
    session.add(row)
    session.flush()
    record(
        session,
        AuditEventType.RULE_SET_UPLOADED,
        actor=principal,
        version=version,
        name=document.name,
        rules=len(document.rules),
    )
    if activate:
        _switch(session, principal, row, reason=reason, rollback=False)
    _commit(session)
    return _out(session, row)


def _active(session: Session) -> RuleSet | None:
    return session.scalar(select(RuleSet).where(RuleSet.status == RuleSetStatus.ACTIVE))


def _switch(
    session: Session, principal: Principal, target: RuleSet, *, reason: str | None, rollback: bool
) -> None:
    """Make `target` the active version; the caller commits."""
    current = _active(session)
    if current is not None and current.id == target.id:
        raise RuleSetAlreadyActive(f"v{target.version} 已在生效")
    # The deployment may have changed since the upload (a unit removed, a category added).
    _, errors = check_document(session, RuleSetDocument.model_validate(target.document))
    if errors:
        raise RuleSetInvalid(
            f"v{target.version} 与当前的单位、辖区或问题分类不再相符，共 {len(errors)} 处错误",
            errors=errors,
        )
    if current is not None:
        current.status = RuleSetStatus.RETIRED
        # The partial unique index allows one active row: retire before activating.
        session.flush()
    target.status = RuleSetStatus.ACTIVE
    target.activated_at = utcnow()
    session.add(
        RuleSetActivation(
            rule_set_id=target.id,
            previous_rule_set_id=current.id if current else None,
            rollback=rollback,
            reason=reason,
            activated_by_user_id=principal.user_id,
        )
    )
    record(
        session,
        AuditEventType.RULE_SET_ACTIVATED,
        actor=principal,
        version=target.version,
        previous_version=current.version if current else None,
        rollback=rollback,
        reason=reason,
    )


def _commit(session: Session) -> None:
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise ActivationConflict() from exc


def _by_version(session: Session, version: int) -> RuleSet:
    row = session.scalar(select(RuleSet).where(RuleSet.version == version))
    if row is None:
        raise NotFound(f"分拨规则 v{version} 不存在")
    return row


def activate_rule_set(
    session: Session, principal: Principal, version: int, reason: str | None = None
) -> RuleSetOut:
    """Make `version` the one every new decision uses; decisions made keep theirs."""
    principal.require(Permission.ROUTING_MANAGE)
    row = _by_version(session, version)
    _switch(session, principal, row, reason=reason, rollback=False)
    _commit(session)
    return _out(session, row)


def _activation_stack(session: Session) -> list[int]:
    """Rule-set ids in the order they became active, rolled-back ones popped off.

    Like a browser's back button: rolling back twice goes back two versions, not to and
    fro between the last two.
    """
    stack: list[int] = []
    for target, rollback in session.execute(
        select(RuleSetActivation.rule_set_id, RuleSetActivation.rollback).order_by(
            RuleSetActivation.id
        )
    ):
        if rollback:
            stack.pop()
        else:
            stack.append(target)
    return stack


def roll_back_rule_set(session: Session, principal: Principal, reason: str | None) -> RuleSetOut:
    """Re-activate the version that was active before the current one."""
    principal.require(Permission.ROUTING_MANAGE)
    stack = _activation_stack(session)
    if len(stack) < 2:
        raise NothingToRollBack()
    previous = session.get(RuleSet, stack[-2])
    assert previous is not None
    _switch(session, principal, previous, reason=reason, rollback=True)
    _commit(session)
    return _out(session, previous)


def list_rule_sets(session: Session, principal: Principal) -> list[RuleSetSummary]:
    """Every version, newest first."""
    principal.require(Permission.ROUTING_READ)
    rows = session.execute(
        select(RuleSet, User.username)
        .outerjoin(User, RuleSet.uploaded_by_user_id == User.id)
        .order_by(RuleSet.version.desc())
    ).all()
    return [_summary(row, username) for row, username in rows]


def get_rule_set(session: Session, principal: Principal, version: int | None) -> RuleSetOut:
    """One version with its document; `None` is the active one."""
    principal.require(Permission.ROUTING_READ)
    if version is None:
        row = _active(session)
        if row is None:
            raise NotFound("尚未启用任何分拨规则")
    else:
        row = _by_version(session, version)
    return _out(session, row)
