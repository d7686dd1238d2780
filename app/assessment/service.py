"""Case KPIs per street office, department, road segment, community or category over a
period: what assessors score and leaders rank (see `kpis.py` for the definitions)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, and_, case, exists, func, literal, or_, select
from sqlalchemy.orm import Session, aliased

from app.accounts.access import Permission, Principal
from app.assessment.facts import CASE_ROW
from app.assessment.kpis import COUNTS, Tally, parse_weights, score
from app.assessment.models import AssessmentPeriod, AssessmentSnapshot, CaseFact
from app.assessment.schemas import KpiReport, KpiRow
from app.calendar.service import day_bounds, working_calendar
from app.cases.models import Case, CaseEvent, CaseEventKind, CaseSource, CaseStatus, CaseTask
from app.core.config import Settings
from app.core.database import json_list_has, utcnow
from app.core.errors import Problem
from app.reports.models import Report
from app.routing.service import routing_context
from app.territory.models import Jurisdiction, RoadSegment, Unit
from app.whistles.models import Whistle, WhistleSummons

Dimension = Literal["street", "community", "segment", "category", "unit"]
#: Figures come from the kept facts where they hold; `bench/assessment.py` turns this off
#: to time the replay of the events they replaced.
FROM_FACTS = True
MAX_PERIOD_DAYS = 366
NONE_KEY = "-"

#: The events the per-case facts read (every one that closes a case or reopens it).
_EVENT_KINDS = (
    CaseEventKind.REGISTERED, CaseEventKind.FIXED_ON_SPOT, CaseEventKind.REJECTED,
    CaseEventKind.SIGNED_FOR, CaseEventKind.SIGN_FOR_OVERDUE, CaseEventKind.FED_BACK,
    CaseEventKind.OVERDUE, CaseEventKind.REWORK, CaseEventKind.RETURN_DECIDED,
    CaseEventKind.EXTENSION_DECIDED, CaseEventKind.VERIFIED, CaseEventKind.REOPENED,
    CaseEventKind.CANCELLED,
)  # fmt: skip

#: The events of one unit's task (they carry its `unit_id`).
_UNIT_KINDS = (
    CaseEventKind.SIGNED_FOR, CaseEventKind.SIGN_FOR_OVERDUE, CaseEventKind.FED_BACK,
    CaseEventKind.OVERDUE, CaseEventKind.RETURN_DECIDED, CaseEventKind.EXTENSION_DECIDED,
    CaseEventKind.RELEASED,
)  # fmt: skip


def _gives_tasks(e: Any) -> ColumnElement[bool]:
    """The events that give units tasks, their `units` list the first leading: a dispatch,
    and the whistle that opened the case (one joining an open case gives none)."""
    return or_(
        e.kind == CaseEventKind.DISPATCHED,
        and_(e.kind == CaseEventKind.WHISTLE_BLOWN, e.to_status.is_not(None)),
    )


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
    start, end = day_bounds(zone, date_from, date_to)
    return Period(date_from, date_to, start, end, min(end, utcnow()))


_CLOSED = CaseStatus.CLOSED


def _first(kind: CaseEventKind) -> Any:
    return func.min(case((CaseEvent.kind == kind, CaseEvent.occurred_at)))


def _any(*kinds: CaseEventKind) -> Any:
    return func.max(case((CaseEvent.kind.in_(kinds), 1), else_=0))


def _flag(condition: ColumnElement[bool]) -> Any:
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
            _any(CaseEventKind.CANCELLED).label("cancelled"),
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
    """Per task (a unit on a case) dispatched before the cutoff, from its case's events
    before then: the latest dispatch naming the unit; the unit's first sign-for, feedback
    and overdue marks, its return and extension decisions, its last release and upheld
    return; whether the case was cancelled. And so whether the task stands at the cutoff:
    not released, not returned with the centre's consent since its latest dispatch, its
    case not cancelled (see `kpis.UNITS`). One aggregate, so that the database computes
    each fact once and knows how many rows come out."""
    e = CaseEvent
    upheld = e.detail["upheld"].as_boolean()

    def first(kind: CaseEventKind) -> Any:
        return func.min(case((e.kind == kind, e.occurred_at)))

    def last(condition: ColumnElement[bool]) -> Any:
        return func.max(case((condition, e.id)))

    # The events joined to a task: its case's dispatches and cancellation, and the events
    # naming its unit (the unit read from each event once, here).
    its_events = and_(
        e.case_id == CaseTask.case_id, e.occurred_at < cutoff,
        or_(_gives_tasks(e), e.kind == CaseEventKind.CANCELLED,
            and_(e.kind.in_(_UNIT_KINDS), e.detail["unit_id"].as_integer() == CaseTask.unit_id)),
    )  # fmt: skip
    facts = (
        select(
            CaseTask.case_id, CaseTask.unit_id,
            # The unit test only for dispatches (a CASE evaluates lazily).
            func.max(case((_gives_tasks(e), case(
                (json_list_has(e.detail, "units", Unit.code), e.id))))).label("assigned_id"),
            last(e.kind == CaseEventKind.RELEASED).label("released_id"),
            last(and_(e.kind == CaseEventKind.RETURN_DECIDED, upheld)).label("returned_id"),
            _any(CaseEventKind.CANCELLED).label("void"),
            first(CaseEventKind.SIGNED_FOR).label("signed_at"),
            first(CaseEventKind.SIGN_FOR_OVERDUE).label("sign_late_at"),
            first(CaseEventKind.FED_BACK).label("fed_at"),
            first(CaseEventKind.OVERDUE).label("late_at"),
            _flag(and_(e.kind == CaseEventKind.RETURN_DECIDED, upheld)).label("upheld"),
            _flag(and_(e.kind == CaseEventKind.RETURN_DECIDED,
                       or_(upheld.is_(None), ~upheld))).label("refused"),
            _flag(and_(e.kind == CaseEventKind.EXTENSION_DECIDED,
                       e.detail["granted"].as_boolean())).label("extensions"),
        )
        .join(Unit, Unit.id == CaseTask.unit_id)
        .join(e, its_events)
        .where(CaseTask.case_id.in_(ids))
        .group_by(CaseTask.case_id, CaseTask.unit_id, Unit.code)
        .subquery()
    )  # fmt: skip
    released = func.coalesce(facts.c.released_id, 0) > facts.c.assigned_id
    returned = func.coalesce(facts.c.returned_id, 0) > facts.c.assigned_id
    return (
        select(
            facts.c.case_id, facts.c.unit_id,
            case((released, 1), else_=0).label("released"),
            case((or_(released, returned), 1), else_=0).label("ended"),
            case((or_(released, returned, facts.c.void == 1), 0), else_=1).label("standing"),
            *(facts.c[name] for name in ("signed_at", "sign_late_at", "fed_at", "late_at",
                                         "upheld", "refused", "extensions")),
        )
        .where(facts.c.assigned_id.is_not(None))
    )  # fmt: skip


def _leads(ids: Any, cutoff: datetime, tasks: Any) -> Any:
    """Per case, the unit it counts for: the first its latest dispatch before the cutoff
    named, unless the centre has upheld that unit's return since."""
    e, first = aliased(CaseEvent), aliased(CaseEvent)
    latest = (
        select(e.case_id, func.max(e.id).label("event_id"))
        .where(e.case_id.in_(ids), _gives_tasks(e), e.occurred_at < cutoff)
        .group_by(e.case_id)
        .subquery()
    )
    return (
        select(latest.c.case_id, Unit.id.label("unit_id"))
        .join(first, first.id == latest.c.event_id)
        .join(Unit, Unit.code == first.detail[("units", 0)].as_string())
        .join(tasks, and_(tasks.c.case_id == latest.c.case_id, tasks.c.unit_id == Unit.id))
        .where(tasks.c.ended == 0)
    )


def _case_sums(facts: Any) -> list[Any]:
    """The case counts of a group, from the per-case facts (`_case_facts`); a cancelled
    case counts as a case and as cancelled, nothing more."""
    closed_at, other_at = facts.c.closed_at, facts.c.other_at
    closed = and_(closed_at.is_not(None), or_(other_at.is_(None), closed_at > other_at))
    valid = func.coalesce(facts.c.cancelled, 0) == 0
    registered = and_(valid, or_(Case.source == CaseSource.WHISTLE, facts.c.registered == 1))
    return [
        func.count().label("cases"),
        _flag(registered).label("registered"),
        _flag(facts.c.rejected == 1).label("rejected"),
        _flag(facts.c.cancelled == 1).label("cancelled"),
        _flag(and_(registered, facts.c.fed_back == 1)).label("cases_fed_back"),
        _flag(and_(registered, facts.c.reworked == 1)).label("reworked"),
        _flag(closed).label("closed"),
        _flag(and_(closed, facts.c.late == 0)).label("closed_on_time"),
    ]


def _task_sums(tasks: Any) -> list[Any]:
    """The units' counts of a group, from the per-task facts (`_task_facts`): "on time"
    means before that unit's overdue mark; all but the dispatches, releases and return
    decisions are of the tasks standing at the cutoff (the work to handle)."""
    signed, sign_late = tasks.c.signed_at, tasks.c.sign_late_at
    fed, late = tasks.c.fed_at, tasks.c.late_at
    standing = tasks.c.standing == 1
    return [
        func.count().label("dispatched"),
        func.sum(tasks.c.released).label("released"),
        func.sum(tasks.c.standing).label("to_handle"),
        _flag(and_(standing, signed.is_not(None), or_(sign_late.is_(None), signed < sign_late)))
        .label("signed_on_time"),
        _flag(and_(standing, or_(signed.is_not(None), sign_late.is_not(None))))
        .label("sign_for_due"),
        _flag(and_(standing, fed.is_not(None))).label("fed_back"),
        _flag(and_(standing, fed.is_not(None), or_(late.is_(None), fed < late)))
        .label("fed_back_on_time"),
        _flag(and_(standing, or_(fed.is_not(None), late.is_not(None)))).label("handling_due"),
        _flag(and_(standing, late.is_not(None))).label("overdue"),
        func.sum(tasks.c.upheld).label("returns_upheld"),
        func.sum(tasks.c.refused).label("returns_refused"),
        func.sum(case((standing, tasks.c.extensions), else_=0)).label("extensions"),
    ]  # fmt: skip


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
                # As computed live: the total of what the filter keeps.
                report.total = (
                    report.rows[0].model_copy(update={"key": "total", "name": "合计", "rank": None})
                    if report.rows
                    else _row("total", "合计", Tally(), weighting, settings, by)
                )
            return report
    units = dict(session.execute(select(Unit.id, Unit.code)).all())
    unit_id = _unit_id(units, unit)
    groups: dict[str, Tally] = defaultdict(Tally)
    total = Tally()
    place = (units, unit_id, street, segment, category)
    if not FROM_FACTS:
        _from_events(session, settings, principal, period, by, *place, unit, groups, total)
    elif period.cutoff < period.end:  # running: the facts are as of now
        _from_facts(session, settings, principal, period, by, *place, groups, total)
    else:
        # Over: the facts of the cases nothing changed since its end, and the events up to
        # its end of the others (those still at work then: a few days' worth).
        f = CaseFact
        changed = select(f.case_id).where(f.unit_id == CASE_ROW, f.changed_at >= period.cutoff,
                                          f.reported_at < period.end)  # fmt: skip
        _from_facts(session, settings, principal, period, by, *place, groups, total,
                    skip=changed)  # fmt: skip
        _from_events(session, settings, principal, period, by, *place, unit, groups, total,
                     only=changed)  # fmt: skip
    _count_whistles(session, principal, period, by, units, unit_id, street, segment, category,
                    groups, total)  # fmt: skip
    names = _names(session, by, list(groups))
    rows = [_row(key, names.get(key, key), tally, weighting, settings, by)
            for key, tally in groups.items()]  # fmt: skip
    rank_rows(rows)
    return KpiReport(
        by=by, date_from=date_from, date_to=date_to,
        as_of=period.cutoff.astimezone(settings.zone), complete=period.cutoff == period.end,
        weights=weighting, min_cases=settings.assessment_min_cases, rows=rows,
        total=_row("total", "合计", total, weighting, settings, by),
    )  # fmt: skip


def _grouper(
    by: Dimension, units: dict[int, str], unit_id: int | None, groups: dict[str, Tally]
) -> Any:
    """A row's key → its group's tally (None: in the total only)."""

    def group(key: Any) -> Tally | None:
        if by == "unit":
            if key is None or key not in units or (unit_id is not None and key != unit_id):
                return None  # no lead, or another unit: in the total only
            return groups[units[key]]
        return groups[key or NONE_KEY]

    return group


def _fact_sums() -> list[Any]:
    """Every count of a group from the kept facts (`case_facts`), as `_case_sums` and
    `_task_sums` count them from the events: the case's row (unit 0) gives the case
    counts, each dispatched unit's row its task's."""
    f = CaseFact
    is_case = f.unit_id == CASE_ROW
    valid = f.cancelled == 0
    registered = and_(is_case, valid, f.registered == 1)
    closed = and_(is_case, f.status == _CLOSED.value)
    task = and_(f.unit_id != CASE_ROW, f.dispatched == 1)
    standing = and_(task, valid, f.state == "working")
    signed, sign_late, fed, late = f.signed_at, f.sign_late_at, f.fed_at, f.late_at
    return [
        _flag(is_case).label("cases"),
        _flag(registered).label("registered"),
        _flag(and_(is_case, f.rejected == 1)).label("rejected"),
        _flag(and_(is_case, f.cancelled == 1)).label("cancelled"),
        _flag(and_(registered, f.fed_back == 1)).label("cases_fed_back"),
        _flag(and_(registered, f.reworked == 1)).label("reworked"),
        _flag(closed).label("closed"),
        _flag(and_(closed, f.overdue == 0)).label("closed_on_time"),
        _flag(task).label("dispatched"),
        _flag(and_(task, f.state == "released")).label("released"),
        _flag(standing).label("to_handle"),
        _flag(and_(standing, signed.is_not(None), or_(sign_late.is_(None), signed < sign_late)))
        .label("signed_on_time"),
        _flag(and_(standing, or_(signed.is_not(None), sign_late.is_not(None))))
        .label("sign_for_due"),
        _flag(and_(standing, fed.is_not(None))).label("fed_back"),
        _flag(and_(standing, fed.is_not(None), or_(late.is_(None), fed < late)))
        .label("fed_back_on_time"),
        _flag(and_(standing, or_(fed.is_not(None), late.is_not(None)))).label("handling_due"),
        _flag(and_(standing, late.is_not(None))).label("overdue"),
        func.sum(case((task, f.upheld), else_=0)).label("returns_upheld"),
        func.sum(case((task, f.refused), else_=0)).label("returns_refused"),
        func.sum(case((standing, f.extensions), else_=0)).label("extensions"),
    ]  # fmt: skip


def _from_facts(
    session: Session, settings: Settings, principal: Principal, period: Period, by: Dimension,
    units: dict[int, str], unit_id: int | None, street: str | None, segment: str | None,
    category: str | None, groups: dict[str, Tally], total: Tally, skip: Any = None,
) -> None:  # fmt: skip
    """The figures of a period from the facts kept as events happened (but of the cases
    `skip` selects): one aggregate over the period's rows, the handling hours one by one,
    the reports."""
    f = CaseFact
    place = [(f.street_code, Case.street_code, street), (f.segment_code, Case.segment_code,
              segment), (f.category_code, Case.category_code, category)]  # fmt: skip
    rows = [f.reported_at >= period.start, f.reported_at < period.end,
            principal.path_filter(f.jurisdiction_path),
            *(fact == value for fact, _, value in place if value is not None)]  # fmt: skip
    cases = [principal.path_filter(Case.jurisdiction_path),
             *(column == value for _, column, value in place if value is not None)]  # fmt: skip
    if unit_id is not None:
        # Cases the unit was dispatched to; of the tasks, that unit's only.
        theirs = aliased(CaseFact)
        sent = select(theirs.case_id).where(theirs.unit_id == unit_id, theirs.dispatched == 1)
        rows += [f.case_id.in_(sent.where(theirs.reported_at >= period.start,
                                          theirs.reported_at < period.end)),
                 or_(f.unit_id == CASE_ROW, f.unit_id == unit_id)]  # fmt: skip
        cases.append(Case.id.in_(sent))
    if skip is not None:
        rows.append(f.case_id.not_in(skip))
        cases.append(Case.id.not_in(skip))
    key: Any = (
        case((f.unit_id == CASE_ROW, f.lead_unit_id), else_=f.unit_id)
        if by == "unit"
        else getattr(f, f"{by}_code")
    )
    group = _grouper(by, units, unit_id, groups)
    for row in session.execute(select(key.label("key"), *_fact_sums()).where(*rows)
                               .group_by(key)):  # fmt: skip
        for tally in filter(None, (group(row.key), total)):
            for name, n in row._mapping.items():
                if name != "key" and n:
                    tally.counts[name] = tally.counts.get(name, 0) + int(n)
    standing = and_(f.unit_id != CASE_ROW, f.dispatched == 1, f.cancelled == 0,
                    f.state == "working", f.fed_at.is_not(None))  # fmt: skip
    spent_rows = session.execute(
        select(key.label("key"), f.fed_hours.label("hours"), f.case_id, f.unit_id, f.fed_at).where(
            *rows, standing
        )
    ).all()
    _add_hours(session, settings, spent_rows, group, total)
    lead = aliased(CaseFact)
    query = (
        select(Report.id, Case.street_code, Case.community_code, Case.segment_code,
               Case.category_code, lead.lead_unit_id.label("lead"))
        .join(Case, Report.case_id == Case.id)
        .outerjoin(lead, and_(lead.case_id == Case.id, lead.unit_id == CASE_ROW))
        .where(Report.received_at >= period.start, Report.received_at < period.cutoff, *cases)
    )  # fmt: skip
    _tally_reports(session.execute(query).all(), by, units, unit_id, groups, total)


def _add_hours(
    session: Session, settings: Settings, spent_rows: Any, group: Any, total: Tally
) -> None:
    """Each task's handling hours into its group: as its first feedback kept them, or (fed
    back before the hours were kept) from its assignment."""
    if missing := [r for r in spent_rows if r.hours is None]:
        assigned = _assignments(session, {r.case_id for r in missing})
        calendar = working_calendar(session, settings)
    for row in spent_rows:
        spent = row.hours
        if spent is None:
            start = max((t for t in assigned.get((row.case_id, row.unit_id), [])
                         if t <= row.fed_at), default=None)  # fmt: skip
            spent = calendar.working_hours_between(start, row.fed_at) if start else None
        if spent is not None:
            for tally in filter(None, (group(row.key), total)):
                tally.hours.append(spent)


def _tally_reports(
    rows: Any, by: Dimension, units: dict[int, str], unit_id: int | None,
    groups: dict[str, Tally], total: Tally,
) -> None:  # fmt: skip
    if by == "unit":
        for row in rows:
            if row.lead is not None and (unit_id is None or row.lead == unit_id):
                groups[units[row.lead]].add("reports")
    else:
        key_of = _case_key(by)
        for row in rows:
            groups[key_of(row) or NONE_KEY].add("reports")
    total.add("reports", len(rows))


def _from_events(
    session: Session, settings: Settings, principal: Principal, period: Period, by: Dimension,
    units: dict[int, str], unit_id: int | None, street: str | None, segment: str | None,
    category: str | None, unit: str | None, groups: dict[str, Tally], total: Tally,
    only: Any = None,
) -> None:  # fmt: skip
    """The figures of the cases reported in the period (those `only` selects), each case's
    events replayed up to the cutoff (a period that is over: later events must not move
    it); the reports received in the period (of those cases)."""
    in_period = [
        Case.reported_at >= period.start,
        Case.reported_at < period.end,
        principal.path_filter(Case.jurisdiction_path),
    ]
    for column, value in ((Case.street_code, street), (Case.segment_code, segment),
                          (Case.category_code, category)):  # fmt: skip
        if value is not None:
            in_period.append(column == value)
    if unit is not None:
        # Cases the unit was dispatched to before the cutoff (not later: a finished period
        # does not move).
        d = aliased(CaseEvent)
        in_period.append(exists().where(
            d.case_id == Case.id, _gives_tasks(d), d.occurred_at < period.cutoff,
            json_list_has(d.detail, "units", literal(unit)),
        ))  # fmt: skip
    if only is not None:
        in_period.append(Case.id.in_(only))
    ids = select(Case.id).where(*in_period)
    # Every figure is summed per group in the database; only the handling hours come back
    # one by one (for the median and the 90th percentile).
    case_facts = _case_facts(ids, period.cutoff).subquery()
    tasks = _task_facts(ids, period.cutoff).subquery()
    leads = _leads(ids, period.cutoff, tasks).subquery()
    if by == "unit":
        case_key: Any = leads.c.unit_id
        task_key: Any = tasks.c.unit_id
    else:
        case_key = task_key = _case_column(by)
    per_case = (
        select(case_key.label("key"), *_case_sums(case_facts))
        .select_from(Case)
        .outerjoin(case_facts, case_facts.c.case_id == Case.id)
        .where(*in_period)
        .group_by(case_key)
    )
    if by == "unit":
        per_case = per_case.outerjoin(leads, leads.c.case_id == Case.id)
    # With a unit asked for, the task figures are that unit's tasks only.
    own_tasks = [tasks.c.unit_id == unit_id] if unit_id is not None else []
    per_task = (
        select(task_key.label("key"), *_task_sums(tasks))
        .select_from(tasks)
        .join(Case, Case.id == tasks.c.case_id)
        .where(*own_tasks)
        .group_by(task_key)
    )
    # A task's handling time is its first feedback's, kept with that event.
    first_feedback = aliased(CaseEvent)
    hours = (
        select(task_key.label("key"),
               first_feedback.detail["working_hours"].as_float().label("hours"),
               tasks.c.case_id, tasks.c.unit_id, tasks.c.fed_at)
        .select_from(tasks)
        .join(Case, Case.id == tasks.c.case_id)
        .join(first_feedback, and_(
            first_feedback.case_id == tasks.c.case_id,
            first_feedback.kind == CaseEventKind.FED_BACK,
            first_feedback.occurred_at == tasks.c.fed_at,
            first_feedback.detail["unit_id"].as_integer() == tasks.c.unit_id,
        ))
        .where(tasks.c.standing == 1, *own_tasks)
    )  # fmt: skip

    group = _grouper(by, units, unit_id, groups)
    for statement in (per_case, per_task):
        for row in session.execute(statement):
            values = row._mapping
            for tally in filter(None, (group(row.key), total)):
                for name, n in values.items():
                    if name != "key" and n:
                        tally.counts[name] = tally.counts.get(name, 0) + int(n)
    spent_rows = session.execute(hours).all()
    _add_hours(session, settings, spent_rows, group, total)
    _count_reports(session, principal, period, by, in_period, leads, units, unit_id, groups,
                   total)  # fmt: skip


def _case_column(by: Dimension) -> Any:
    return {"street": Case.street_code, "community": Case.community_code,
            "segment": Case.segment_code, "category": Case.category_code}[by]  # fmt: skip


def _assignments(session: Session, case_ids: set[int]) -> dict[tuple[int, int], list[datetime]]:
    """When each unit's tasks on these cases were assigned, in a few queries."""
    out: dict[tuple[int, int], list[datetime]] = defaultdict(list)
    ids = sorted(case_ids)
    for start in range(0, len(ids), 1000):
        for case_id, unit, assigned_at in session.execute(
            select(CaseTask.case_id, CaseTask.unit_id, CaseTask.assigned_at)
            .where(CaseTask.case_id.in_(ids[start : start + 1000]))
        ):  # fmt: skip
            out[(case_id, unit)].append(assigned_at)
    return out


def _case_key(by: Dimension) -> Any:
    """Reads a row's key for a place or category dimension (a row with the case's columns)."""
    name = _case_column(by).key
    return lambda row: getattr(row, name)


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
    in_period: list[ColumnElement[bool]], leads: Any, units: dict[int, str],
    unit_id: int | None, groups: dict[str, Tally], total: Tally,
) -> None:  # fmt: skip
    """Reports received in the period, under their case's key (a duplicate report may join
    a case of an earlier period: that case's lead as of this period's end)."""
    filters = in_period[2:]  # scope and filters, not the case's own period
    if by == "unit":
        # The leads of the cases reported in the period, and of the earlier cases joined.
        joined = select(Report.case_id).where(
            Report.received_at >= period.start, Report.received_at < period.cutoff
        )
        leads = _leads(joined, period.cutoff, _task_facts(joined, period.cutoff).subquery())
        leads = leads.subquery()
        lead: Any = leads.c.unit_id.label("lead")
    else:
        lead = literal(None).label("lead")
    query = (
        select(Report.id, Case.street_code, Case.community_code, Case.segment_code,
               Case.category_code, lead)
        .join(Case, Report.case_id == Case.id)
        .where(Report.received_at >= period.start, Report.received_at < period.cutoff, *filters)
    )  # fmt: skip
    if by == "unit":
        query = query.outerjoin(leads, leads.c.case_id == Case.id)
    _tally_reports(session.execute(query).all(), by, units, unit_id, groups, total)


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
    rows: Sequence[tuple[str, str]]
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
    basis = tally.get("to_handle") if by == "unit" else tally.get("registered")
    composite = score(rates, weights)
    return KpiRow(
        key=key, name=name,
        counts={c.code: tally.get(c.code) for c in COUNTS},
        rates=rates, handling_hours_median=median_h, handling_hours_p90=p90_h,
        score=composite, basis=basis,
        ranked=(key not in (NONE_KEY, "total") and composite is not None
                and basis >= settings.assessment_min_cases),
        rank=None,
    )  # fmt: skip


def rank_rows(rows: list[KpiRow]) -> None:
    """Best score first; unranked rows (too little to rank on, see `kpis.RANKED`) after, by
    key. A corrected score may make or unmake a row's rank."""
    rows.sort(key=lambda r: (not (r.ranked and r.score is not None), -(r.score or 0), r.key))
    place = 0
    for row in rows:
        row.rank = None
        if row.ranked and row.score is not None:
            place += 1
            row.rank = place
