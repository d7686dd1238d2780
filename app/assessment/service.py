"""Case KPIs per street office, department, road segment, community or category over a
period: what assessors score and leaders rank (see `kpis.py` for the definitions)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from sqlalchemy import (
    ColumnElement,
    and_,
    case,
    exists,
    func,
    literal,
    or_,
    select,
    tuple_,
    union_all,
)
from sqlalchemy.orm import Session, aliased

from app.access.rules import Permission, Principal
from app.assessment.kpis import COUNTS, Tally, parse_weights, score
from app.assessment.models import AssessmentPeriod, AssessmentSnapshot
from app.assessment.schemas import KpiReport, KpiRow
from app.calendar.service import day_bounds
from app.cases.facts import CASE_ROW
from app.cases.models import (
    Case,
    CaseEvent,
    CaseEventKind,
    CaseFact,
    CaseFactAtMonthEnd,
    CaseSource,
    CaseStatus,
    CaseTask,
)
from app.core.database import computes_percentiles, json_list_has, utcnow
from app.core.errors import Problem
from app.core.moments import month_end
from app.reports.models import Report
from app.routing.service import routing_context
from app.standards.service import national_codes
from app.territory.models import Jurisdiction, RoadSegment, Unit
from app.whistles.models import Whistle, WhistleSummons

if TYPE_CHECKING:
    from app.settings import Settings

Dimension = Literal["street", "community", "segment", "category", "unit"]
#: Where kept facts are read: as of now, or as of the end of each case's month.
Facts = type[CaseFact] | type[CaseFactAtMonthEnd]
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


def _deadline_flags(standing: Any, signed: Any, sign_late: Any, fed: Any, late: Any) -> list[Any]:
    """The sign-for and handling counts of the standing tasks, from when each was signed for
    and fed back and when its deadlines passed: "on time" is before that unit's mark. The
    same for the per-task facts of a replay and for the kept facts."""
    return [
        _flag(and_(standing, signed.is_not(None), or_(sign_late.is_(None), signed < sign_late)))
        .label("signed_on_time"),
        _flag(and_(standing, or_(signed.is_not(None), sign_late.is_not(None))))
        .label("sign_for_due"),
        _flag(and_(standing, fed.is_not(None))).label("fed_back"),
        _flag(and_(standing, fed.is_not(None), or_(late.is_(None), fed < late)))
        .label("fed_back_on_time"),
        _flag(and_(standing, or_(fed.is_not(None), late.is_not(None)))).label("handling_due"),
        _flag(and_(standing, late.is_not(None))).label("overdue"),
    ]  # fmt: skip


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
        *_deadline_flags(standing, signed, sign_late, fed, late),
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


# --- grouping dimensions (分组维度) ---------------------------------------------------------


def _named_by_code(model: Any) -> Callable[[Session, list[str]], Iterable[tuple[str, str]]]:
    """Names keys that are the codes of `model`'s rows."""

    def names(session: Session, keys: list[str]) -> Iterable[tuple[str, str]]:
        return session.execute(select(model.code, model.name).where(model.code.in_(keys))).all()

    return names


def _category_names(session: Session, keys: list[str]) -> Iterable[tuple[str, str]]:
    taxonomy = routing_context(session).taxonomy
    return [(k, node.name) for k in keys if (node := taxonomy.get(k)) is not None]


def _national_codes(session: Session) -> dict[str, str]:
    return {code: found.code for code, found in national_codes(session).items()}


@dataclass(frozen=True, slots=True)
class Grouping:
    """How the figures group by one dimension: what keys a row, what names a key, what a
    row is ranked on. A place or a category keys a case's rows by the case's own column
    (kept alike on the case, its facts and its whistle's summonses; none: the "unlinked"
    row); a unit keys a case by the unit it counts for, its lead, and a task by the task's
    own unit (`kpis.UNITS`; none: the total only)."""

    #: The case's column (and its facts') that keys its rows; None: the unit.
    column: str | None
    #: (session, keys) → (key, name) of the keys it knows.
    names: Callable[[Session, list[str]], Iterable[tuple[str, str]]]
    #: The count a row is ranked on (`kpis.RANKED`).
    basis: str = "registered"
    #: session → each key's national class (`event:0401`), where the dimension has one.
    classes: Callable[[Session], dict[str, str]] | None = None

    @property
    def by_unit(self) -> bool:
        """Keyed by unit: a case's rows need the unit it counts for."""
        return self.column is None

    def key(self, source: Any, unit: Any) -> Any:
        """The key of a row of `source` (the case, its facts, a summons' place) that counts
        for `unit`."""
        return unit if self.column is None else getattr(source, self.column)


GROUPINGS: dict[Dimension, Grouping] = {
    "street": Grouping("street_code", _named_by_code(Jurisdiction)),
    "community": Grouping("community_code", _named_by_code(Jurisdiction)),
    "segment": Grouping("segment_code", _named_by_code(RoadSegment)),
    "category": Grouping("category_code", _category_names, classes=_national_codes),
    "unit": Grouping(None, _named_by_code(Unit), basis="to_handle"),
}


@dataclass(frozen=True, slots=True)
class _Scope:
    """What one KPI query reads: the reader's sight, the period, the filters asked for."""

    principal: Principal
    period: Period
    street: str | None
    segment: str | None
    category: str | None
    unit: str | None
    unit_id: int | None

    def places(self) -> list[tuple[str, str]]:
        """(case column, value) of the place and category filters asked for."""
        asked = (("street_code", self.street), ("segment_code", self.segment),
                 ("category_code", self.category))  # fmt: skip
        return [(column, value) for column, value in asked if value is not None]


@dataclass(slots=True)
class _Tallies:
    """A report's tallies: each group's, and the total."""

    grouping: Grouping
    units: dict[int, str]
    #: The key the dimension's own filter asks for: rows of other keys count in the total only.
    own: str | None
    groups: defaultdict[str, Tally] = field(default_factory=lambda: defaultdict(Tally))
    total: Tally = field(default_factory=Tally)

    def of(self, key: Any) -> tuple[Tally, ...]:
        """The tallies a row of this key adds to: its group's (none for a case no unit
        counts for, or another unit than the one asked for) and the total."""
        label = self.units.get(key) if self.grouping.by_unit else (key or NONE_KEY)
        if label is None or (self.own is not None and label != self.own):
            return (self.total,)
        return (self.groups[label], self.total)

    def count(self, rows: Iterable[Any]) -> None:
        """Rows of a key and counts, summed per group in the database."""
        for row in rows:
            for tally in self.of(row.key):
                for name, n in row._mapping.items():
                    if name != "key" and n:
                        tally.add(name, n)

    def set_hours(self, rows: Iterable[Any]) -> None:
        """Each group's handling-hours percentiles as the database computed them; the row
        whose `whole` is 1 is the total's (`GROUPING SETS`)."""
        for row in rows:
            if row.median is None:  # the total of no rows: `GROUPING SETS` still gives it
                continue
            hours = (row.median, row.p90)
            if row.whole:
                self.total.hours_percentiles = hours
            elif len(tallies := self.of(row.key)) > 1:
                tallies[0].hours_percentiles = hours

    def add_hours(self, rows: Iterable[Any]) -> None:
        """Each task's handling hours, as its first feedback kept them, into its group."""
        for row in rows:
            if row.hours is not None:
                for tally in self.of(row.key):
                    tally.hours.append(row.hours)


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
    weighting = parse_weights(weights) if weights else settings.assessment_weights
    grouping = GROUPINGS[by]
    filters = {"street": street, "segment": segment, "category": category, "unit": unit}
    own = filters.get(by)
    if weights is None and all(v is None for k, v in filters.items() if k != by):
        frozen = _frozen(session, settings, principal, period, by, own, weighting)
        if frozen is not None:
            return frozen
    units = dict(session.execute(select(Unit.id, Unit.code)).all())
    scope = _Scope(principal, period, street, segment, category, unit, _unit_id(units, unit))
    tallies = _Tallies(grouping, units, own)
    _count_cases(session, scope, tallies)
    _count_whistles(session, scope, tallies)
    names = _names(session, grouping, list(tallies.groups))
    rows = [_row(key, names.get(key, key), tally, weighting, settings, grouping)
            for key, tally in tallies.groups.items()]  # fmt: skip
    rank_rows(rows)
    if grouping.classes is not None:
        classes = grouping.classes(session)
        for row in rows:
            row.national_code = classes.get(row.key)
    return KpiReport(
        by=by, date_from=date_from, date_to=date_to,
        as_of=period.cutoff, complete=period.cutoff == period.end,
        weights=weighting, min_cases=settings.assessment_min_cases, rows=rows,
        total=_row("total", "合计", tallies.total, weighting, settings, grouping),
    )  # fmt: skip


def _frozen(
    session: Session, settings: Settings, principal: Principal, period: Period, by: Dimension,
    own: str | None, weighting: dict[str, float],
) -> KpiReport | None:  # fmt: skip
    """The frozen report of a closed period, if any; of its `own` key only if asked."""
    frozen = snapshot(session, principal, period.date_from, period.date_to, f"kpis:{by}")
    if frozen is None:
        return None
    report = KpiReport.model_validate(frozen)
    if own is not None:
        report.rows = [r for r in report.rows if r.key == own]
        # As computed live: the total of what the filter keeps.
        report.total = (
            report.rows[0].model_copy(update={"key": "total", "name": "合计", "rank": None})
            if report.rows
            else _row("total", "合计", Tally(), weighting, settings, GROUPINGS[by])
        )
    return report


def _count_cases(session: Session, scope: _Scope, tallies: _Tallies) -> None:
    """The figures of the cases reported in the period, and the reports received in it."""
    period = scope.period
    if not FROM_FACTS:
        _from_events(session, scope, tallies)
    elif period.cutoff < period.end:  # running: the facts are as of now
        _from_facts(session, scope, tallies)
    else:
        # Over: the facts of the cases nothing changed since its end; of the others (those
        # still at work then: a few days' worth), the facts kept as of the end of their
        # month when the period ends with it, else their events up to its end.
        f = CaseFact
        changed = select(f.case_id).where(f.unit_id == CASE_ROW, f.changed_at >= period.cutoff,
                                          f.reported_at < period.end)  # fmt: skip
        if month_end(period.start) != period.end:
            _from_facts(session, scope, tallies, skip=changed)
            _from_events(session, scope, tallies, only=changed)
            return
        # The period ends with the month of each of its cases: the changed ones were copied
        # as of that end at their first change after it. One source: the facts of the
        # unchanged cases and the copies of the period's own, read as one table.
        kept = CaseFactAtMonthEnd
        in_period = (kept.reported_at >= period.start, kept.reported_at < period.end)
        copied = select(kept.case_id).where(kept.unit_id == CASE_ROW, *in_period)
        unchanged = select(*CaseFact.__table__.c).where(f.case_id.not_in(changed))
        copies = select(*kept.__table__.c).where(*in_period)
        as_of_end = union_all(unchanged, copies).subquery("as_of_end")
        # Replayed still: the period's changed cases without a copy (changed since a database
        # older than the copies), and earlier cases changed since whose reports came in the
        # period (a duplicate joining an older case counts under its lead as of the end).
        joined = select(Report.case_id).where(Report.received_at >= period.start,
                                              Report.received_at < period.cutoff)  # fmt: skip
        replayed = changed.where(
            f.case_id.not_in(copied), or_(f.reported_at >= period.start, f.case_id.in_(joined))
        )
        if not session.scalar(select(replayed.exists())):
            _from_facts(session, scope, tallies, facts=aliased(CaseFact, as_of_end))
            return
        _from_facts(session, scope, tallies, facts=aliased(CaseFact, as_of_end), skip=replayed)
        _from_events(session, scope, tallies, only=replayed)


def _fact_sums(f: Facts) -> list[Any]:
    """Every count of a group from the kept facts (`case_facts`, or their copy as of a
    month's end), as `_case_sums` and `_task_sums` count them from the events: the case's
    row (unit 0) gives the case counts, each dispatched unit's row its task's."""
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
        *_deadline_flags(standing, signed, sign_late, fed, late),
        func.sum(case((task, f.upheld), else_=0)).label("returns_upheld"),
        func.sum(case((task, f.refused), else_=0)).label("returns_refused"),
        func.sum(case((standing, f.extensions), else_=0)).label("extensions"),
    ]  # fmt: skip


def _from_facts(
    session: Session, scope: _Scope, tallies: _Tallies, *, facts: Any = CaseFact,
    skip: Any = None, only: Any = None,
) -> None:  # fmt: skip
    """The figures of a period from the facts kept as events happened (but of the cases
    `skip` selects; only of those `only` selects): one aggregate over the period's rows, the
    handling hours one by one, the reports."""
    f, period = facts, scope.period
    rows = [f.reported_at >= period.start, f.reported_at < period.end,
            scope.principal.path_filter(f.jurisdiction_path),
            *(getattr(f, column) == value for column, value in scope.places())]  # fmt: skip
    cases = [scope.principal.path_filter(Case.jurisdiction_path),
             *(getattr(Case, column) == value for column, value in scope.places())]  # fmt: skip
    if scope.unit_id is not None:
        # Cases the unit was dispatched to; of the tasks, that unit's only.
        theirs = aliased(facts)
        sent = select(theirs.case_id).where(theirs.unit_id == scope.unit_id,
                                            theirs.dispatched == 1)  # fmt: skip
        rows += [f.case_id.in_(sent.where(theirs.reported_at >= period.start,
                                          theirs.reported_at < period.end)),
                 or_(f.unit_id == CASE_ROW, f.unit_id == scope.unit_id)]  # fmt: skip
        cases.append(Case.id.in_(sent))
    if skip is not None:
        rows.append(f.case_id.not_in(skip))
        cases.append(Case.id.not_in(skip))
    if only is not None:
        rows.append(f.case_id.in_(only))
        cases.append(Case.id.in_(only))
    # A case's row counts for its lead, a task's for its unit.
    key = tallies.grouping.key(f, case((f.unit_id == CASE_ROW, f.lead_unit_id), else_=f.unit_id))
    tallies.count(session.execute(select(key.label("key"), *_fact_sums(f)).where(*rows)
                                  .group_by(key)))  # fmt: skip
    standing = and_(f.unit_id != CASE_ROW, f.dispatched == 1, f.cancelled == 0,
                    f.state == "working", f.fed_at.is_not(None),
                    f.fed_hours.is_not(None))  # fmt: skip
    if skip is None and only is None and computes_percentiles(session):
        # One source of hours for the whole period: their percentiles are computed where
        # the rows are, per group and for the total (`GROUPING SETS`), instead of sending
        # every task's hours. (Not in the counts' statement: an ordered-set aggregate
        # keeps PostgreSQL from hashing and parallelising that one.)
        tallies.set_hours(session.execute(
            select(key.label("key"), func.grouping(key).label("whole"),
                   func.percentile_cont(0.5).within_group(f.fed_hours).label("median"),
                   func.percentile_cont(0.9).within_group(f.fed_hours).label("p90"))
            .where(*rows, standing)
            .group_by(func.grouping_sets(key, tuple_()))
        ))  # fmt: skip
    else:
        tallies.add_hours(session.execute(
            select(key.label("key"), f.fed_hours.label("hours")).where(*rows, standing)
        ))  # fmt: skip
    lead = aliased(facts)
    report_key = tallies.grouping.key(Case, lead.lead_unit_id)
    tallies.count(session.execute(
        select(report_key.label("key"), func.count().label("reports"))
        .select_from(Report)
        .join(Case, Report.case_id == Case.id)
        .outerjoin(lead, and_(lead.case_id == Case.id, lead.unit_id == CASE_ROW))
        .where(Report.received_at >= period.start, Report.received_at < period.cutoff, *cases)
        .group_by(report_key)
    ))  # fmt: skip


def _from_events(session: Session, scope: _Scope, tallies: _Tallies, only: Any = None) -> None:
    """The figures of the cases reported in the period (those `only` selects), each case's
    events replayed up to the cutoff (a period that is over: later events must not move
    it); the reports received in the period (of those cases)."""
    period, grouping = scope.period, tallies.grouping
    # Scope and filters; a case's own period besides for the cases, not for the reports.
    filters = [scope.principal.path_filter(Case.jurisdiction_path),
               *(getattr(Case, column) == value for column, value in scope.places())]  # fmt: skip
    if scope.unit is not None:
        # Cases the unit was dispatched to before the cutoff (not later: a finished period
        # does not move).
        d = aliased(CaseEvent)
        filters.append(exists().where(
            d.case_id == Case.id, _gives_tasks(d), d.occurred_at < period.cutoff,
            json_list_has(d.detail, "units", literal(scope.unit)),
        ))  # fmt: skip
    if only is not None:
        filters.append(Case.id.in_(only))
    in_period = [Case.reported_at >= period.start, Case.reported_at < period.end, *filters]
    ids = select(Case.id).where(*in_period)
    # Every figure is summed per group in the database; only the handling hours come back
    # one by one (for the median and the 90th percentile).
    case_facts = _case_facts(ids, period.cutoff).subquery()
    tasks = _task_facts(ids, period.cutoff).subquery()
    leads = _leads(ids, period.cutoff, tasks).subquery()
    case_key = grouping.key(Case, leads.c.unit_id)
    task_key = grouping.key(Case, tasks.c.unit_id)
    per_case = (
        select(case_key.label("key"), *_case_sums(case_facts))
        .select_from(Case)
        .outerjoin(case_facts, case_facts.c.case_id == Case.id)
        .where(*in_period)
        .group_by(case_key)
    )
    if grouping.by_unit:
        per_case = per_case.outerjoin(leads, leads.c.case_id == Case.id)
    # With a unit asked for, the task figures are that unit's tasks only.
    own_tasks = [tasks.c.unit_id == scope.unit_id] if scope.unit_id is not None else []
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
               first_feedback.detail["working_hours"].as_float().label("hours"))
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
    tallies.count(session.execute(per_case))
    tallies.count(session.execute(per_task))
    tallies.add_hours(session.execute(hours))
    _count_reports(session, period, filters, tallies)


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
    session: Session, period: Period, filters: list[ColumnElement[bool]], tallies: _Tallies
) -> None:
    """Reports received in the period, under their case's key (a duplicate report may join
    a case of an earlier period: that case's lead as of this period's end)."""
    leads = _leads_of_reports(period) if tallies.grouping.by_unit else None
    key = tallies.grouping.key(Case, None if leads is None else leads.c.unit_id)
    query = (
        select(key.label("key"), func.count().label("reports"))
        .select_from(Report)
        .join(Case, Report.case_id == Case.id)
        .where(Report.received_at >= period.start, Report.received_at < period.cutoff, *filters)
        .group_by(key)
    )
    if leads is not None:
        query = query.outerjoin(leads, leads.c.case_id == Case.id)
    tallies.count(session.execute(query))


def _leads_of_reports(period: Period) -> Any:
    """The leads of the cases reported in the period, and of the earlier cases joined."""
    joined = select(Report.case_id).where(
        Report.received_at >= period.start, Report.received_at < period.cutoff
    )
    return _leads(joined, period.cutoff, _task_facts(joined, period.cutoff).subquery()).subquery()


class _SummonsPlace(NamedTuple):
    """Where a whistle's summons counts: its whistle's place and category."""

    street_code: str | None
    community_code: str | None
    segment_code: str | None
    category_code: str | None


def _count_whistles(session: Session, scope: _Scope, tallies: _Tallies) -> None:
    """Summonses of whistles blown in the period whose report-in time has come."""
    period = scope.period
    query = (
        select(WhistleSummons.unit_id, WhistleSummons.reported_at, Whistle.report_in_due_at,
               Whistle.jurisdiction_path, Whistle.category_code, RoadSegment.code.label("segment"))
        .join(Whistle, WhistleSummons.whistle_id == Whistle.id)
        .outerjoin(RoadSegment, Whistle.segment_id == RoadSegment.id)
        .where(Whistle.blown_at >= period.start, Whistle.blown_at < period.end,
               Whistle.report_in_due_at <= period.cutoff,
               scope.principal.path_filter(Whistle.jurisdiction_path))
    )  # fmt: skip
    asked = ((Whistle.category_code, scope.category), (RoadSegment.code, scope.segment),
             (WhistleSummons.unit_id, scope.unit_id))  # fmt: skip
    query = query.where(*(column == value for column, value in asked if value is not None))
    for row in session.execute(query):
        parts = row.jurisdiction_path.strip("/").split("/")
        place = _SummonsPlace(parts[1] if len(parts) > 1 else None,
                              parts[2] if len(parts) > 2 else None, row.segment,
                              row.category_code)  # fmt: skip
        if scope.street is not None and place.street_code != scope.street:
            continue
        on_time = row.reported_at is not None and row.reported_at <= row.report_in_due_at
        for tally in tallies.of(tallies.grouping.key(place, row.unit_id)):
            tally.add("whistles_due")
            tally.add("whistles_on_time", on_time)


def _names(session: Session, grouping: Grouping, keys: Iterable[str]) -> dict[str, str]:
    known = grouping.names(session, [k for k in keys if k != NONE_KEY])
    return {NONE_KEY: "（未关联）", **{code: name for code, name in known}}


def _row(
    key: str, name: str, tally: Tally, weights: dict[str, float], settings: Settings,
    grouping: Grouping,
) -> KpiRow:  # fmt: skip
    rates = tally.rates()
    median_h, p90_h = tally.handling_hours()
    basis = tally.get(grouping.basis)
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
