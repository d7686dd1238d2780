"""Closing an assessment period (考核期固化): once a month or week is over, an admin (or the
`roadchief assessment close` job) freezes its figures. From then on every answer about that
period is read from the frozen copy, whatever arrives later; only an admin's correction,
which leaves an event with its reason, changes a frozen figure.
"""

from __future__ import annotations

import copy
import math
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import flag_modified

from app.access.rules import SYSTEM, Permission, Principal
from app.accounts.models import User
from app.assessment.inspections import inspection_scores
from app.assessment.kpis import weighted_mean
from app.assessment.models import AssessmentCorrection, AssessmentPeriod, AssessmentSnapshot
from app.assessment.rankings import period_bounds, place_and_flag, ranking
from app.assessment.schemas import (
    CorrectionIn,
    CorrectionOut,
    InspectionScores,
    KpiReport,
    PeriodOut,
    RankingOut,
)
from app.assessment.service import kpis, period_of, rank_rows
from app.audit.models import AuditEventType
from app.audit.service import record
from app.cases.models import Case
from app.core.database import utcnow
from app.core.errors import NotFound, Problem
from app.core.moments import local_today, to_local

if TYPE_CHECKING:
    from app.settings import Settings

KPI_DIMENSIONS = ("street", "community", "segment", "category", "unit")
LOOK_BACK_MONTHS, LOOK_BACK_WEEKS = 3, 8
SCORE_DIMENSIONS = ("segment", "street", "unit")
RANKED = ("street", "unit")


class PeriodNotOver(Problem):
    code = "period_not_over"
    status = 409
    title = "考核期尚未结束，不能固化"


class PeriodClosed(Problem):
    code = "period_closed"
    status = 409
    title = "考核期已固化"


class BadCorrection(Problem):
    code = "bad_correction"
    status = 422
    title = "更正值无效"


class UnknownFigure(Problem):
    code = "unknown_figure"
    status = 422
    title = "要更正的数据项不存在"


def _snapshots(session: Session, settings: Settings, label: str) -> dict[str, dict[str, Any]]:
    """Every answer about the period, computed by the service itself (the whole district)."""
    date_from, date_to, _ = period_bounds(label)
    span = period_of(settings, date_from, date_to)
    out: dict[str, dict[str, Any]] = {}
    for by in KPI_DIMENSIONS:
        report = kpis(session, settings, SYSTEM, by=by, date_from=date_from, date_to=date_to)  # type: ignore[arg-type]
        out[f"kpis:{by}"] = report.model_dump(mode="json")
    for by in SCORE_DIMENSIONS:
        out[f"inspections:{by}"] = inspection_scores(
            session, settings, SYSTEM, by=by, period=span
        ).model_dump(mode="json")
    for kind in RANKED:
        board = ranking(session, settings, SYSTEM, kind=kind, period=label)  # type: ignore[arg-type]
        out[f"ranking:{kind}"] = board.model_dump(mode="json")
    return out


def close_period(
    session: Session, settings: Settings, principal: Principal, label: str
) -> PeriodOut:
    principal.require(Permission.ASSESSMENT_MANAGE)
    date_from, date_to, _ = period_bounds(label)
    span = period_of(settings, date_from, date_to)
    if span.cutoff != span.end:
        raise PeriodNotOver(f"考核期 {label} 到 {date_to} 才结束", period=label)
    if session.scalar(select(AssessmentPeriod.id).where(AssessmentPeriod.label == label)):
        raise PeriodClosed(f"考核期 {label} 已固化；如需调整请提交更正", period=label)
    snapshots = _snapshots(session, settings, label)
    # The reading may take seconds: end it, so the writes below are a short transaction of
    # their own (on SQLite a read-only session's write then waits its turn; the unique
    # label still tells if someone else closed the period meanwhile).
    session.commit()
    period = AssessmentPeriod(label=label, date_from=date_from, date_to=date_to,
                              closed_at=utcnow(), closed_by_user_id=principal.user_id)  # fmt: skip
    session.add(period)
    try:
        session.flush()
    except IntegrityError:  # closed by someone else meanwhile
        session.rollback()
        raise PeriodClosed(f"考核期 {label} 已固化；如需调整请提交更正", period=label) from None
    for kind, payload in snapshots.items():
        session.add(AssessmentSnapshot(period_id=period.id, kind=kind, payload=payload))
    record(session, AuditEventType.ASSESSMENT_PERIOD_CLOSED, actor=principal, period=label)
    session.commit()
    return period_out(session, period)


def _period(session: Session, label: str) -> AssessmentPeriod:
    period = session.scalar(select(AssessmentPeriod).where(AssessmentPeriod.label == label))
    if period is None:
        raise NotFound(f"考核期 {label} 未固化")
    return period


def period_out(session: Session, period: AssessmentPeriod) -> PeriodOut:
    kinds = session.scalars(select(AssessmentSnapshot.kind)
                            .where(AssessmentSnapshot.period_id == period.id)
                            .order_by(AssessmentSnapshot.kind)).all()  # fmt: skip
    corrections = session.scalars(select(AssessmentCorrection)
                                  .where(AssessmentCorrection.period_id == period.id)
                                  .order_by(AssessmentCorrection.id)).all()  # fmt: skip
    who = {period.closed_by_user_id, *(c.corrected_by_user_id for c in corrections)} - {None}
    names = dict(session.execute(select(User.id, User.username).where(User.id.in_(who))).all())
    return PeriodOut(
        label=period.label, date_from=period.date_from, date_to=period.date_to,
        closed_at=period.closed_at,
        closed_by=names.get(period.closed_by_user_id) if period.closed_by_user_id else None,
        snapshots=list(kinds),
        corrections=[CorrectionOut(
            kind=c.kind, key=c.key, field=c.field, old_value=c.old_value,
            new_value=c.new_value, reason=c.reason, corrected_at=c.corrected_at,
            corrected_by=names.get(c.corrected_by_user_id) if c.corrected_by_user_id else None,
        ) for c in corrections],
    )  # fmt: skip


def get_period(session: Session, settings: Settings, principal: Principal, label: str) -> PeriodOut:
    principal.require(Permission.CASES_READ)
    period_bounds(label)
    return period_out(session, _period(session, label))


def correct(
    session: Session, settings: Settings, principal: Principal, label: str, body: CorrectionIn
) -> PeriodOut:
    """Change one frozen figure; a ranking is ranked and flagged again. The correction is
    kept with its reason and who made it, and audited."""
    principal.require(Permission.ASSESSMENT_MANAGE)
    period_bounds(label)
    period = _period(session, label)
    row = session.scalar(
        select(AssessmentSnapshot).where(AssessmentSnapshot.period_id == period.id,
                                         AssessmentSnapshot.kind == body.kind)
        .with_for_update()
    )  # fmt: skip
    if row is None:
        raise UnknownFigure(f"考核期 {label} 没有“{body.kind}”", kind=body.kind)
    payload = copy.deepcopy(row.payload)
    target = next((r for r in payload["rows"] if r.get("key") == body.key), None)
    if target is None:
        raise UnknownFigure(f"“{body.kind}”中没有“{body.key}”", key=body.key)
    old = _set(target, body.field)
    if old is _MISSING or body.field in _NOT_FIGURES:
        raise UnknownFigure(f"“{body.key}”没有可更正的数据项“{body.field}”", field=body.field)
    _check_value(body.field, body.value)
    _set(target, body.field, int(body.value) if isinstance(old, int) else body.value)
    model = _MODELS[body.kind.split(":", 1)[0]]
    if body.kind.startswith("ranking:"):
        if body.field in ("case_score", "inspection_score"):
            weights = payload["weights"]
            parts = [(weights["cases"], target["case_score"]),
                     (weights["inspections"], target["inspection_score"])]  # fmt: skip
            target["score"] = weighted_mean(parts)
        board = RankingOut.model_validate(payload)
        place_and_flag(settings, board)
        payload = board.model_dump(mode="json")
    elif body.kind.startswith("kpis:") and body.field == "score":
        report = KpiReport.model_validate(payload)
        rank_rows(report.rows)
        payload = report.model_dump(mode="json")
    model.model_validate(payload)  # what is stored must read back
    row.payload = payload
    flag_modified(row, "payload")
    session.add(AssessmentCorrection(
        period_id=period.id, kind=body.kind, key=body.key, field=body.field,
        old_value=old, new_value=body.value, reason=body.reason,
        corrected_at=utcnow(), corrected_by_user_id=principal.user_id,
    ))  # fmt: skip
    record(session, AuditEventType.ASSESSMENT_CORRECTED, actor=principal, period=label,
           kind=body.kind, key=body.key, field=body.field, old=old, new=body.value,
           reason=body.reason)  # fmt: skip
    session.commit()
    return period_out(session, period)


_MISSING: Any = object()
#: Figures that follow from others; a correction changes what they follow from.
_NOT_FIGURES = frozenset({"rank"})
_MODELS: dict[str, Any] = {
    "kpis": KpiReport, "inspections": InspectionScores, "ranking": RankingOut,
}  # fmt: skip


def _check_value(field: str, value: float) -> None:
    """A corrected figure is a number its kind can hold: a count is whole, a rate 0..1, a
    score 0..100."""
    group = field.split(".", 1)[0] if "." in field else field
    ok = math.isfinite(value) and value >= 0
    if group == "counts" or field in ("basis", "inspections", "cases"):
        ok = ok and float(value).is_integer()
    elif group == "rates":
        ok = ok and value <= 1
    elif "score" in field:
        ok = ok and value <= 100
    if not ok:
        raise BadCorrection(
            f"“{field}”不能为 {value}：计数为非负整数，比率在 0 到 1，得分在 0 到 100"
        )


def _set(row: dict[str, Any], field: str, value: Any = _MISSING) -> Any:
    """Read (or, given a value, write) `field` of a row: `score`, `counts.reports`, ..."""
    holder: Any = row
    name = field
    if "." in field:
        group, name = field.split(".", 1)
        holder = row.get(group) if isinstance(row.get(group), dict) else None
        if holder is None:
            return _MISSING
    if name not in holder or isinstance(holder[name], dict | list | str | bool):
        return _MISSING
    old = holder[name]
    if value is not _MISSING:
        holder[name] = value
    return old


def close_due_periods(session: Session, settings: Settings, today: date | None = None) -> list[str]:
    """Close last month and last week once `ROADCHIEF_ASSESSMENT_AUTO_CLOSE_DAYS` have passed
    since their end (time for late inspections and corrections of cases); the service runs
    this on its timer. Two processes at once: the unique label lets one win."""
    if settings.assessment_auto_close_days is None:
        return []
    today = today or local_today()
    first_of_month = today.replace(day=1)
    labels = []
    for _ in range(LOOK_BACK_MONTHS):  # a service down for a while catches up
        first_of_month = (first_of_month - timedelta(days=1)).replace(day=1)
        labels.append(f"{first_of_month:%Y-%m}")
    for back in range(1, LOOK_BACK_WEEKS + 1):
        iso = (today - timedelta(weeks=back)).isocalendar()
        labels.append(f"{iso.year}-W{iso.week:02d}")
    done = set(session.scalars(select(AssessmentPeriod.label).where(
        AssessmentPeriod.label.in_(labels))))  # fmt: skip
    grace = settings.assessment_auto_close_days
    due = [
        (label, period_bounds(label)[1])
        for label in reversed(labels)  # oldest first: a ranking reads the period before
        if label not in done and (today - period_bounds(label)[1]).days > grace
    ]
    if not due:
        return []  # nothing due: no more questions for the database
    # Periods from before the first case are not frozen empty: a city that imports its
    # history later still gets them computed from it.
    first_case = session.scalar(select(func.min(Case.reported_at)))
    if first_case is None:
        return []
    first_day = to_local(first_case).date()
    closed = []
    for label, last in due:
        if last < first_day:
            continue
        try:
            closed.append(close_period(session, settings, SYSTEM, label).label)
        except PeriodClosed:
            session.rollback()  # another process closed it first
    return closed
