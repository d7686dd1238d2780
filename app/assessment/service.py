"""Case KPIs per street office, department, road segment, community or category over a
period: what assessors score and leaders rank (see `kpis.py` for the definitions)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Literal

from sqlalchemy import ColumnElement, and_, case, func, or_, select
from sqlalchemy.orm import Session

from app.accounts.access import Permission, Principal
from app.assessment.kpis import COUNTS, Tally, parse_weights, score
from app.assessment.models import AssessmentPeriod, AssessmentSnapshot
from app.assessment.schemas import KpiReport, KpiRow
from app.calendar.service import WorkingCalendar, working_calendar
from app.cases.models import Case, CaseEvent, CaseEventKind, CaseSource, CaseStatus, CaseTask
from app.core.config import Settings
from app.core.database import utcnow
from app.core.errors import Problem
from app.reports.models import Report
from app.routing.service import routing_context
from app.territory.models import Jurisdiction, RoadSegment, Unit
from app.whistles.models import Whistle, WhistleSummons

Dimension = Literal["street", "community", "segment", "category", "unit"]
MAX_PERIOD_DAYS = 366
NONE_KEY = "-"

_EVENT_KINDS = (
    CaseEventKind.REGISTERED, CaseEventKind.FIXED_ON_SPOT, CaseEventKind.REJECTED,
    CaseEventKind.SIGNED_FOR, CaseEventKind.SIGN_FOR_OVERDUE, CaseEventKind.FED_BACK,
    CaseEventKind.OVERDUE, CaseEventKind.REWORK, CaseEventKind.RETURN_DECIDED,
    CaseEventKind.EXTENSION_DECIDED, CaseEventKind.VERIFIED, CaseEventKind.REOPENED,
    CaseEventKind.CANCELLED,
)  # fmt: skip


class BadPeriod(Problem):
    code = "bad_period"
    status = 422
    title = "考核期无效"


@dataclass(frozen=True, slots=True)
class Period:
    date_from: date
    date_to: date
    start: datetime
    end: datetime
    #: Events up to here count: the period's end, or now for a period still running.
    cutoff: datetime


def period_of(settings: Settings, date_from: date, date_to: date) -> Period:
    if date_to < date_from or (date_to - date_from).days >= MAX_PERIOD_DAYS:
        raise BadPeriod(f"起止日期须有序，且不超过 {MAX_PERIOD_DAYS} 天")
    zone = settings.zone
    start = datetime.combine(date_from, time.min, zone)
    end = datetime.combine(date_to + timedelta(days=1), time.min, zone)
    return Period(date_from, date_to, start, end, min(end, utcnow()))


_CLOSED = CaseStatus.CLOSED


def _first(kind: CaseEventKind) -> Any:
    return func.min(case((CaseEvent.kind == kind, CaseEvent.occurred_at)))


def _any(*kinds: CaseEventKind) -> Any:
    return func.max(case((CaseEvent.kind.in_(kinds), 1), else_=0))


def _sum_where(condition: ColumnElement[bool]) -> Any:
    return func.sum(case((condition, 1), else_=0))


def _case_facts(ids: Any, cutoff: datetime) -> Any:
    """Per case, from its events before the cutoff: what happened to it, and when its
    status last became closed and last became anything else."""
    e = CaseEvent
    return (
        select(
            e.case_id,
            _any(CaseEventKind.REGISTERED, CaseEventKind.FIXED_ON_SPOT).label("registered"),
            _any(CaseEventKind.REJECTED).label("rejected"),
            _any(CaseEventKind.FED_BACK).label("fed_back"),
            _any(CaseEventKind.REWORK).label("reworked"),
            _any(CaseEventKind.OVERDUE).label("late"),
            func.max(case((e.to_status == _CLOSED, e.occurred_at))).label("closed_at"),
            func.max(
                case((and_(e.to_status.is_not(None), e.to_status != _CLOSED), e.occurred_at))
            ).label("other_at"),
        )
        .where(e.case_id.in_(ids), e.occurred_at < cutoff, e.kind.in_(_EVENT_KINDS))
        .group_by(e.case_id)
    )


def _task_facts(ids: Any, cutoff: datetime) -> Any:
    """Per case and unit, from the events naming the unit: the first sign-for, feedback and
    overdue marks, the decisions on its returns and extensions, its handling time."""
    e = CaseEvent
    unit = e.detail["unit_id"].as_integer()
    upheld = e.detail["upheld"].as_boolean()
    return (
        select(
            e.case_id,
            unit.label("unit_id"),
            _first(CaseEventKind.SIGNED_FOR).label("signed_at"),
            _first(CaseEventKind.SIGN_FOR_OVERDUE).label("sign_late_at"),
            _first(CaseEventKind.FED_BACK).label("fed_at"),
            _first(CaseEventKind.OVERDUE).label("late_at"),
            _sum_where(and_(e.kind == CaseEventKind.RETURN_DECIDED, upheld)).label("upheld"),
            _sum_where(
                and_(e.kind == CaseEventKind.RETURN_DECIDED, or_(upheld.is_(None), ~upheld))
            ).label("refused"),
            _sum_where(
                and_(e.kind == CaseEventKind.EXTENSION_DECIDED, e.detail["granted"].as_boolean())
            ).label("extensions"),
            # The first feedback's (later ones, after rework, only take longer).
            func.min(
                case((e.kind == CaseEventKind.FED_BACK, e.detail["working_hours"].as_float()))
            ).label("hours"),
        )
        .where(
            e.case_id.in_(ids), e.occurred_at < cutoff, e.kind.in_(_EVENT_KINDS), unit.is_not(None)
        )
        .group_by(e.case_id, unit)
    )


Counts = dict[str, int]


def _case_counts(case_row: Any, facts: Any) -> Counts:
    registered = case_row.source is CaseSource.WHISTLE or bool(facts and facts.registered)
    if facts is None:
        return {"cases": 1, "registered": int(registered)}
    closed = facts.closed_at is not None and (
        facts.other_at is None or facts.closed_at > facts.other_at
    )
    return {
        "cases": 1, "registered": int(registered), "rejected": facts.rejected,
        "cases_fed_back": facts.fed_back, "reworked": facts.reworked, "closed": int(closed),
        "closed_on_time": int(closed and not facts.late),
    }  # fmt: skip


def _task_counts(row: Any) -> Counts:
    """One unit's part in one case; "on time" means before that unit's overdue mark."""
    signed, sign_late = row.signed_at, row.sign_late_at
    fed, late = row.fed_at, row.late_at
    return {
        "signed_on_time": int(signed is not None and (sign_late is None or signed < sign_late)),
        "sign_for_due": int(signed is not None or sign_late is not None),
        "fed_back": int(fed is not None),
        "fed_back_on_time": int(fed is not None and (late is None or fed < late)),
        "handling_due": int(fed is not None or late is not None),
        "overdue": int(late is not None),
        "returns_upheld": row.upheld or 0,
        "returns_refused": row.refused or 0,
        "extensions": row.extensions or 0,
    }


def sees_everything(principal: Principal) -> bool:
    """Frozen figures are the whole district's: served to those who see all of it."""
    return principal.unrestricted or any(p.count("/") == 2 for p in principal.scope_paths)


def snapshot(
    session: Session, principal: Principal, date_from: date, date_to: date, kind: str
) -> dict[str, Any] | None:
    """The frozen answer of a closed period with exactly these bounds, if any."""
    if not sees_everything(principal):
        return None
    payload = session.scalar(
        select(AssessmentSnapshot.payload)
        .join(AssessmentPeriod, AssessmentSnapshot.period_id == AssessmentPeriod.id)
        .where(AssessmentPeriod.date_from == date_from, AssessmentPeriod.date_to == date_to,
               AssessmentSnapshot.kind == kind)
    )  # fmt: skip
    return None if payload is None else {**payload, "frozen": True}


def kpis(
    session: Session,
    settings: Settings,
    principal: Principal,
    *,
    by: Dimension,
    date_from: date,
    date_to: date,
    street: str | None = None,
    segment: str | None = None,
    category: str | None = None,
    unit: str | None = None,
    weights: str | None = None,
) -> KpiReport:
    """The KPIs of the cases reported in the period, grouped `by` a dimension."""
    principal.require(Permission.CASES_READ)
    period = period_of(settings, date_from, date_to)
    weighting = parse_weights(weights or settings.assessment_weights)
    own_key = {"street": street, "segment": segment, "category": category, "unit": unit}
    others = [v for k, v in own_key.items() if k != by and v is not None]
    if weights is None and not others:
        frozen = snapshot(session, principal, date_from, date_to, f"kpis:{by}")
        if frozen is not None:
            report = KpiReport.model_validate(frozen)
            if (key := own_key.get(by)) is not None:
                report.rows = [r for r in report.rows if r.key == key]
            return report
    units = dict(session.execute(select(Unit.id, Unit.code)).all())
    unit_id = _unit_id(units, unit)
    in_period = [
        Case.reported_at >= period.start,
        Case.reported_at < period.end,
        principal.path_filter(Case.jurisdiction_path),
    ]
    for column, value in ((Case.street_code, street), (Case.segment_code, segment),
                          (Case.category_code, category)):  # fmt: skip
        if value is not None:
            in_period.append(column == value)
    if unit_id is not None:
        in_period.append(Case.id.in_(select(CaseTask.case_id).where(CaseTask.unit_id == unit_id)))
    ids = select(Case.id).where(*in_period)
    cases = session.execute(
        select(Case.id, Case.source, Case.street_code, Case.community_code, Case.segment_code,
               Case.category_code).where(*in_period)
    ).all()  # fmt: skip
    case_facts = {r.case_id: r for r in session.execute(_case_facts(ids, period.cutoff))}
    tasks: dict[int, list[Any]] = defaultdict(list)
    for row in session.execute(
        select(CaseTask.case_id, CaseTask.unit_id, CaseTask.is_lead, CaseTask.assigned_at)
        .where(CaseTask.case_id.in_(ids), CaseTask.assigned_at < period.cutoff)
        .order_by(CaseTask.case_id, CaseTask.id)
    ):  # fmt: skip
        tasks[row.case_id].append(row)
    calendar: WorkingCalendar | None = None
    groups: dict[str, Tally] = defaultdict(Tally)
    total = Tally()
    key_of = _case_key(by)
    by_id = {c.id: c for c in cases}
    lead_of: dict[int, int] = {}

    def charge(case_id: int, unit: int | None, counts: Counts, hours: float | None = None) -> None:
        if by != "unit":
            targets = (groups[key_of(by_id[case_id]) or NONE_KEY], total)
        elif unit is not None and unit in units and (unit_id is None or unit == unit_id):
            targets = (groups[units[unit]], total)
        else:
            targets = (total,)
        for tally in targets:
            into = tally.counts
            for name, n in counts.items():
                if n:
                    into[name] = into.get(name, 0) + n
            if hours is not None:
                tally.hours.append(hours)

    one_dispatch = {"dispatched": 1}
    for case_id, rows in tasks.items():
        for task in rows:
            charge(case_id, task.unit_id, one_dispatch)
            if task.is_lead:
                lead_of[case_id] = task.unit_id  # the latest lead
    for row in session.execute(_task_facts(ids, period.cutoff)):
        hours = row.hours
        if hours is None and row.fed_at is not None:  # fed back before the hours were kept
            assigned = max((t.assigned_at for t in tasks[row.case_id]
                            if t.unit_id == row.unit_id and t.assigned_at <= row.fed_at),
                           default=None)  # fmt: skip
            if assigned is not None:
                calendar = calendar or working_calendar(session, settings)
                hours = calendar.working_hours_between(assigned, row.fed_at)
        charge(row.case_id, row.unit_id, _task_counts(row), hours)
    for c in cases:
        charge(c.id, lead_of.get(c.id), _case_counts(c, case_facts.get(c.id)))
    _count_reports(session, principal, period, by, in_period, units, unit_id, groups, total)
    _count_whistles(session, principal, period, by, units, unit_id, street, segment, category,
                    groups, total)  # fmt: skip
    names = _names(session, by, list(groups))
    rows = [_row(key, names.get(key, key), tally, weighting, settings, by)
            for key, tally in groups.items()]  # fmt: skip
    _rank(rows)
    return KpiReport(
        by=by, date_from=date_from, date_to=date_to,
        as_of=period.cutoff.astimezone(settings.zone), complete=period.cutoff == period.end,
        weights=weighting, min_cases=settings.assessment_min_cases, rows=rows,
        total=_row("total", "合计", total, weighting, settings, by),
    )  # fmt: skip


def _case_key(by: Dimension) -> Any:
    column = {"street": "street_code", "community": "community_code",
              "segment": "segment_code", "category": "category_code"}.get(by)  # fmt: skip
    return (lambda case: getattr(case, column)) if column else (lambda case: None)


def _unit_id(units: dict[int, str], code: str | None) -> int | None:
    if code is None:
        return None
    for unit_id, unit_code in units.items():
        if unit_code == code:
            return unit_id
    raise UnknownFilter(f"单位“{code}”不存在", unit=code)


class UnknownFilter(Problem):
    code = "unknown_filter_value"
    status = 422
    title = "筛选条件中的编码不存在"


def _count_reports(
    session: Session, principal: Principal, period: Period, by: Dimension,
    in_period: list[ColumnElement[bool]], units: dict[int, str], unit_id: int | None,
    groups: dict[str, Tally], total: Tally,
) -> None:  # fmt: skip
    """Reports received in the period, under their case's key (a duplicate report may join
    a case of an earlier period)."""
    filters = in_period[2:]  # scope and filters, not the case's own period
    query = (
        select(Report.id, Case.id.label("case_id"), Case.street_code, Case.community_code,
               Case.segment_code, Case.category_code)
        .join(Case, Report.case_id == Case.id)
        .where(Report.received_at >= period.start, Report.received_at < period.cutoff, *filters)
    )  # fmt: skip
    rows = session.execute(query).all()
    if by == "unit":
        leads = dict(session.execute(
            select(CaseTask.case_id, CaseTask.unit_id)
            .where(CaseTask.is_lead.is_(True), CaseTask.case_id.in_({r.case_id for r in rows}))
            .order_by(CaseTask.id)
        ).all()) if rows else {}  # fmt: skip
        for row in rows:
            lead = leads.get(row.case_id)
            if lead is not None and (unit_id is None or lead == unit_id):
                groups[units[lead]].add("reports")
    else:
        key_of = _case_key(by)
        for row in rows:
            groups[key_of(row) or NONE_KEY].add("reports")
    total.add("reports", len(rows))


def _count_whistles(
    session: Session, principal: Principal, period: Period, by: Dimension,
    units: dict[int, str], unit_id: int | None, street: str | None, segment: str | None,
    category: str | None, groups: dict[str, Tally], total: Tally,
) -> None:  # fmt: skip
    """Summonses of whistles blown in the period whose report-in time has come."""
    query = (
        select(WhistleSummons.unit_id, WhistleSummons.reported_at, Whistle.report_in_due_at,
               Whistle.jurisdiction_path, Whistle.category_code, RoadSegment.code.label("segment"))
        .join(Whistle, WhistleSummons.whistle_id == Whistle.id)
        .outerjoin(RoadSegment, Whistle.segment_id == RoadSegment.id)
        .where(Whistle.blown_at >= period.start, Whistle.blown_at < period.end,
               Whistle.report_in_due_at <= period.cutoff,
               principal.path_filter(Whistle.jurisdiction_path))
    )  # fmt: skip
    if category is not None:
        query = query.where(Whistle.category_code == category)
    if segment is not None:
        query = query.where(RoadSegment.code == segment)
    if unit_id is not None:
        query = query.where(WhistleSummons.unit_id == unit_id)
    for row in session.execute(query):
        parts = row.jurisdiction_path.strip("/").split("/")
        street_code = parts[1] if len(parts) > 1 else None
        community_code = parts[2] if len(parts) > 2 else None
        if street is not None and street_code != street:
            continue
        key = {"street": street_code, "community": community_code, "segment": row.segment,
               "category": row.category_code, "unit": units[row.unit_id]}[by]  # fmt: skip
        on_time = row.reported_at is not None and row.reported_at <= row.report_in_due_at
        for tally in (groups[key or NONE_KEY], total):
            tally.add("whistles_due")
            tally.add("whistles_on_time", on_time)


def _names(session: Session, by: Dimension, keys: Iterable[str]) -> dict[str, str]:
    keys = [k for k in keys if k != NONE_KEY]
    if by in ("street", "community"):
        rows = session.execute(select(Jurisdiction.code, Jurisdiction.name)
                               .where(Jurisdiction.code.in_(keys))).all()  # fmt: skip
    elif by == "segment":
        rows = session.execute(select(RoadSegment.code, RoadSegment.name)
                               .where(RoadSegment.code.in_(keys))).all()  # fmt: skip
    elif by == "unit":
        rows = session.execute(select(Unit.code, Unit.name).where(Unit.code.in_(keys))).all()
    else:
        taxonomy = routing_context(session).taxonomy
        rows = [(k, node.name) for k in keys if (node := taxonomy.get(k)) is not None]
    return {NONE_KEY: "（未关联）", **{code: name for code, name in rows}}


def _row(
    key: str, name: str, tally: Tally, weights: dict[str, float], settings: Settings,
    by: Dimension,
) -> KpiRow:  # fmt: skip
    rates = tally.rates()
    median_h, p90_h = tally.handling_hours()
    basis = tally.get("dispatched") if by == "unit" else tally.get("registered")
    return KpiRow(
        key=key, name=name,
        counts={c.code: tally.get(c.code) for c in COUNTS},
        rates=rates, handling_hours_median=median_h, handling_hours_p90=p90_h,
        score=score(rates, weights), basis=basis,
        ranked=key != NONE_KEY and basis >= settings.assessment_min_cases, rank=None,
    )  # fmt: skip


def _rank(rows: list[KpiRow]) -> None:
    """Best score first; unranked rows (too few cases) after, by key."""
    rows.sort(key=lambda r: (not (r.ranked and r.score is not None), -(r.score or 0), r.key))
    place = 0
    for row in rows:
        if row.ranked and row.score is not None:
            place += 1
            row.rank = place
