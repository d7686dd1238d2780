"""Who relates to a case: who may see it, who may verify it, who may dispatch it. One rule
each, in two forms that read alike where it depends on the case: a SQL filter on `Case`
for lists and queues, and a check of one loaded case (which runs the same filter) for a
step, a report or a notification."""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, exists, or_, select, true
from sqlalchemy.orm import Session

from app.access.rules import Principal
from app.accounts.models import Role, SegmentChief
from app.cases.models import Case, CaseTask
from app.cases.workflow import BY_ACTION, Action, may_act
from app.territory.models import RoadSegment, Unit


def visible_cases(principal: Principal) -> ColumnElement[bool]:
    """The cases `principal` may see: those in their scope, and for department staff
    those their unit has a task on."""
    clauses = [principal.path_filter(Case.jurisdiction_path)]
    if principal.has_role(Role.DEPARTMENT_STAFF) and principal.unit_code:
        clauses.append(
            exists().where(
                CaseTask.case_id == Case.id,
                CaseTask.unit_id == Unit.id,
                Unit.code == principal.unit_code,
            )
        )
    return or_(*clauses)


def may_see_case(session: Session, principal: Principal, case: Case) -> bool:
    """`visible_cases` for one case."""
    if principal.sees_path(case.jurisdiction_path):  # the usual answer, without a query
        return True
    return _holds(session, case, visible_cases(principal))


def may_dispatch(principal: Principal) -> bool:
    """Whether `principal` is the command centre: one of the dispatch step's actors. They
    see a case's routing decision (分拨建议) and the dispatch queue; on a case they may
    see, that is: scope applies as everywhere."""
    return may_act(principal, BY_ACTION[Action.DISPATCH].actors)


def verifiable_cases(principal: Principal) -> ColumnElement[bool]:
    """The cases `principal` may verify (核查) when they await it: cases they may see, and
    that they reported, or that lie on a segment they are road chief of, or (supervisors,
    admins) any. The step, the verification queue and the inbox all ask this."""
    relations: list[ColumnElement[bool]] = []
    if principal.user_id is not None:
        relations.append(Case.reporter_user_id == principal.user_id)
    if principal.has_role(Role.SUPERVISOR, Role.ADMIN):
        relations.append(true())
    if principal.has_role(Role.ROAD_CHIEF):
        relations.append(
            exists().where(
                SegmentChief.user_id == principal.user_id,
                SegmentChief.segment_id == RoadSegment.id,
                RoadSegment.code == Case.segment_code,
            )
        )
    return and_(visible_cases(principal), or_(*relations)) if relations else Case.id.is_(None)


def may_verify(session: Session, principal: Principal, case: Case) -> bool:
    """`verifiable_cases` for one case."""
    return _holds(session, case, verifiable_cases(principal))


def _holds(session: Session, case: Case, condition: ColumnElement[bool]) -> bool:
    return bool(session.scalar(select(exists().where(Case.id == case.id, condition))))
