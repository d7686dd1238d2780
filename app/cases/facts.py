"""The KPI facts (考核事实表), kept as events happen: each event a case records changes its
row in `case_facts` and the rows of the units' tasks it concerns, in the step's own
transaction and in one statement (`keep`, called by `app.cases.service.record_event`, the
one place events are written). A running period's figures are one aggregate over these
rows (`app.assessment.service.kpis`); a period that is over is still computed from the
events up to its end, and a closed one read from its frozen copy.

The rules are those of `docs/kpis.md` as of now: first sign-for, feedback and overdue
mark of each unit; its task released or returned since its latest dispatch; the case's
status after its latest event; the unit it counts for. Each event gives a change (`change`);
each column says how a change merges into what is kept (`MERGE`), the same in SQL (`keep`)
and in Python (`rebuild`, for a city that imports its history or a database older than
the facts).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any, cast

from sqlalchemy import (
    Integer,
    String,
    Table,
    bindparam,
    delete,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy import case as when
from sqlalchemy.orm import Session

from app.cases.models import (
    Case,
    CaseEvent,
    CaseEventKind,
    CaseFact,
    CaseFactAtMonthEnd,
    CaseSource,
)
from app.core.database import UTCDateTime, upsert_for
from app.core.moments import month_end
from app.territory.models import Unit

#: The `unit_id` of a case's own row.
CASE_ROW = 0
K = CaseEventKind

PLACE = ("reported_at", "jurisdiction_path", "street_code", "community_code", "segment_code",
         "category_code")  # fmt: skip
#: How a change merges into the kept value: the case's place is copied each time; `latest`
#: keeps the newest value given; `any` is a flag once set; `first` keeps the first time
#: given; `sum` adds up; `last_time` keeps the latest time given. `fed_hours` goes with the
#: first `fed_at`; `lead_unit_id` is set by a dispatch (a unit's id) and cleared by that
#: unit's upheld return (its id, negated).
MERGE: dict[str, str] = {
    **dict.fromkeys(PLACE, "place"),
    "changed_at": "last_time", "status": "latest", "state": "latest",
    **dict.fromkeys(("registered", "rejected", "cancelled", "fed_back", "reworked", "overdue",
                     "dispatched"), "any"),
    **dict.fromkeys(("signed_at", "sign_late_at", "fed_at", "late_at"), "first"),
    "fed_hours": "fed_hours", "lead_unit_id": "lead",
    **dict.fromkeys(("upheld", "refused", "extensions"), "sum"),
}  # fmt: skip
NEUTRAL: dict[str, Any] = {
    name: 0 if how in ("any", "sum") else None for name, how in MERGE.items()
}
#: The unit events that concern a task (they carry the unit's `unit_id`).
_TASK_KINDS = frozenset({K.SIGNED_FOR, K.SIGN_FOR_OVERDUE, K.FED_BACK, K.OVERDUE, K.RELEASED,
                         K.RETURN_DECIDED, K.EXTENSION_DECIDED})  # fmt: skip
#: Events that open a case: its row is written even if they change no figure.
_OPENING = frozenset({K.REPORTED, K.WHISTLE_BLOWN})


@dataclass
class Change:
    """What one event changes: the case's row, and tasks' rows by unit (an id, or the code
    a dispatch names); `cancel` marks every row of the case."""

    case: dict[str, Any] = field(default_factory=dict)
    tasks: dict[int | str, dict[str, Any]] = field(default_factory=dict)
    cancel: bool = False


@dataclass(frozen=True)
class _Event:
    """What a step of `change` reads of one event."""

    to_status: str | None
    detail: dict[str, Any]
    #: The unit of a task event (`_TASK_KINDS`), else None.
    unit: Any


def _dispatched(out: Change, task: dict[str, Any], event: _Event) -> None:
    for code in event.detail["units"]:
        out.tasks[code] = {"dispatched": 1, "state": "working"}
    out.case["lead_unit_id"] = event.detail["units"][0]


def _whistle_blown(out: Change, task: dict[str, Any], event: _Event) -> None:
    if event.to_status is not None:  # the whistle's case opens dispatched
        _dispatched(out, task, event)


def _cancelled(out: Change, task: dict[str, Any], event: _Event) -> None:
    out.cancel = True


def _fed_hours(out: Change, task: dict[str, Any], event: _Event) -> None:
    task["fed_hours"] = event.detail.get("working_hours")


def _released(out: Change, task: dict[str, Any], event: _Event) -> None:
    task["state"] = "released"


def _return_decided(out: Change, task: dict[str, Any], event: _Event) -> None:
    if event.detail.get("upheld"):
        task["state"], task["upheld"] = "returned", 1
        out.case["lead_unit_id"] = -event.unit if isinstance(event.unit, int) else None
    else:
        task["refused"] = 1


def _extension_decided(out: Change, task: dict[str, Any], event: _Event) -> None:
    if event.detail.get("granted"):
        task["extensions"] = 1


#: The flag an event sets on its case's row.
_CASE_FLAGS = {K.REGISTERED: "registered", K.FIXED_ON_SPOT: "registered",
               K.REJECTED: "rejected", K.REWORK: "reworked", K.FED_BACK: "fed_back",
               K.OVERDUE: "overdue"}  # fmt: skip
#: The time an event records on its unit's task row: the event's.
_TASK_TIMES = {K.SIGNED_FOR: "signed_at", K.SIGN_FOR_OVERDUE: "sign_late_at",
               K.FED_BACK: "fed_at", K.OVERDUE: "late_at"}  # fmt: skip
#: What else an event changes, read from its detail.
_STEPS: dict[CaseEventKind, Callable[[Change, dict[str, Any], _Event], None]] = {
    K.DISPATCHED: _dispatched, K.WHISTLE_BLOWN: _whistle_blown, K.CANCELLED: _cancelled,
    K.FED_BACK: _fed_hours, K.RELEASED: _released, K.RETURN_DECIDED: _return_decided,
    K.EXTENSION_DECIDED: _extension_decided,
}  # fmt: skip


def change(
    source: str, kind: str, to_status: str | None, detail: dict[str, Any], at: datetime
) -> Change | None:
    """The change one event makes to the facts (None: none), as `tests/support/oracle.py`
    replays it: the status it leads to, the flag it sets on the case (`_CASE_FLAGS`), the
    time it records on its unit's task (`_TASK_TIMES`), and what its detail says
    (`_STEPS`)."""
    kind = K(kind)
    out = Change()
    if to_status is not None:
        out.case["status"] = str(to_status)
    if source == CaseSource.WHISTLE and kind in _OPENING:
        out.case["registered"] = 1  # a whistle's case is registered as it opens
    unit = detail.get("unit_id") if kind in _TASK_KINDS else None
    task: dict[str, Any] = out.tasks.setdefault(unit, {}) if isinstance(unit, int) else {}
    if kind in _CASE_FLAGS:
        out.case[_CASE_FLAGS[kind]] = 1
    if kind in _TASK_TIMES:
        task[_TASK_TIMES[kind]] = at
    if kind in _STEPS:
        _STEPS[kind](out, task, _Event(to_status, detail, unit))
    out.tasks = {u: t for u, t in out.tasks.items() if t}
    if not (out.case or out.tasks or out.cancel or kind in _OPENING):
        return None
    return out


def _place(case: Case) -> dict[str, Any]:
    return {name: getattr(case, name) for name in PLACE}


def keep(session: Session, case: Case, event: CaseEvent) -> None:
    """Merge what `event` changes into the case's facts: one statement, or none."""
    made = change(case.source, event.kind, event.to_status, event.detail or {},
                  event.occurred_at)  # fmt: skip
    if made is None:
        return
    end = month_end(case.reported_at)
    if event.occurred_at >= end:
        # The first change after the case's month ended: its facts as they stood at the
        # end are kept first (nothing is copied once they have changed since).
        session.execute(_copy_at_month_end(session.get_bind().dialect.name),
                        {"case_id": case.id, "month_end": end})  # fmt: skip
    if made.cancel:
        # Cancelling changes no other fact: every row of the case becomes void.
        session.execute(
            update(CaseFact).where(CaseFact.case_id == case.id).values(
                cancelled=1, status=when((CaseFact.unit_id == CASE_ROW, made.case.get("status")),
                                         else_=CaseFact.status),
                changed_at=when((CaseFact.unit_id == CASE_ROW, _later(
                    CaseFact.changed_at, literal(event.occurred_at, UTCDateTime()))),
                    else_=CaseFact.changed_at),
            )
        )  # fmt: skip
        return

    place = _place(case)
    lead = made.case.get("lead_unit_id")
    rows = [_parameters({**NEUTRAL, **made.case, **place, "changed_at": event.occurred_at},
                        case.id, CASE_ROW, lead)]  # fmt: skip
    rows += [_parameters({**NEUTRAL, **task, **place}, case.id, unit, None)
             for unit, task in made.tasks.items()]  # fmt: skip
    session.execute(_upsert(session.get_bind().dialect.name), rows)


def _parameters(
    row: dict[str, Any], case_id: int, unit: int | str, lead: int | str | None
) -> dict[str, Any]:
    """A fact row as `_upsert`'s parameters: a unit (the row's, the lead) is an id, or the
    code a dispatch names, which the statement looks up."""
    out = {f"p_{name}": row[name] for name in MERGE if name != "lead_unit_id"}
    out["p_case_id"] = case_id
    out["p_unit_id"], out["p_unit_code"] = (unit, None) if isinstance(unit, int) else (None, unit)
    out["p_lead_unit_id"], out["p_lead_code"] = (
        (None, lead) if isinstance(lead, str) else (lead, None)
    )
    return out


@cache
def _upsert(dialect: str) -> Any:
    """The one statement `keep` sends, built once per engine and run with each event's rows
    as parameters, so SQLAlchemy compiles it once: a multi-row `VALUES` is compiled anew
    for every statement (it was a third of a report's CPU time)."""
    table = cast(Table, CaseFact.__table__)
    values: dict[str, Any] = {
        name: bindparam(f"p_{name}", type_=table.c[name].type)
        for name in (*MERGE, "case_id")
        if name != "lead_unit_id"
    }
    values["unit_id"] = func.coalesce(
        bindparam("p_unit_id", type_=Integer()),
        _unit_id_of(bindparam("p_unit_code", type_=String())),
    )
    values["lead_unit_id"] = func.coalesce(
        bindparam("p_lead_unit_id", type_=Integer()),
        _unit_id_of(bindparam("p_lead_code", type_=String())))  # fmt: skip
    statement = upsert_for(dialect, table).values(values)
    return statement.on_conflict_do_update(
        index_elements=["case_id", "unit_id"], set_=_merged(statement.excluded)
    )


@cache
def _copy_at_month_end(dialect: str) -> Any:
    """Copy a case's fact rows into `case_facts_month_end`, if its own row has not changed
    since its month ended and no copy was kept yet."""
    facts, copy = cast(Table, CaseFact.__table__), cast(Table, CaseFactAtMonthEnd.__table__)
    own = facts.alias("own")
    unchanged = exists().where(
        own.c.case_id == facts.c.case_id,
        own.c.unit_id == CASE_ROW,
        own.c.changed_at < bindparam("month_end", type_=UTCDateTime()),
    )
    rows = select(*facts.c).where(facts.c.case_id == bindparam("case_id"), unchanged)
    statement = upsert_for(dialect, copy).from_select([c.name for c in facts.c], rows)
    return statement.on_conflict_do_nothing()


def _unit_id_of(code: Any) -> Any:
    return select(Unit.id).where(Unit.code == code).scalar_subquery()


def _later(kept: Any, given: Any) -> Any:
    return when((or_(kept.is_(None), given > kept), given), else_=kept)


def _merged(new: Any) -> dict[str, Any]:
    """`MERGE` in SQL: each column's kept value from the old row and the new one."""
    old = CaseFact.__table__.c
    out: dict[str, Any] = {}
    for name, how in MERGE.items():
        kept, given = old[name], new[name]
        if how == "place":
            out[name] = given
        elif how == "latest":
            out[name] = func.coalesce(given, kept)
        elif how == "any":
            out[name] = when((given == 1, 1), else_=kept)
        elif how == "first":
            out[name] = func.coalesce(kept, given)
        elif how == "sum":
            out[name] = kept + given
        elif how == "last_time":
            out[name] = _later(kept, given)
        elif how == "fed_hours":
            out[name] = when((old["fed_at"].is_(None), given), else_=kept)
        else:  # lead
            out[name] = when(
                (given.is_(None), kept), (given > 0, given),
                (kept == -given, literal(None)), else_=kept,
            )  # fmt: skip
    return out


def merge(row: dict[str, Any], given: dict[str, Any]) -> None:
    """`MERGE` in Python: merge the values `given` (a change's, and only those) into `row`
    (a full row; a new one starts from `NEUTRAL`), as the SQL above does."""
    if "fed_hours" in given and row["fed_at"] is not None:
        given = {k: v for k, v in given.items() if k != "fed_hours"}  # not the first feedback
    for name, g in given.items():
        how = MERGE[name]
        if how == "latest":
            if g is not None:
                row[name] = g
        elif how == "any":
            if g == 1:
                row[name] = 1
        elif how == "first":
            if row[name] is None:
                row[name] = g
        elif how == "sum":
            row[name] += g
        elif how == "last_time":
            if g is not None and (row[name] is None or g > row[name]):
                row[name] = g
        elif how == "lead":
            if g is not None and g > 0:
                row[name] = g
            elif g is not None and row[name] == -g:
                row[name] = None
        else:  # place, fed_hours (the first feedback's)
            row[name] = g


#: The columns `fold` reads of a case.
_CASE_COLUMNS = (Case.id, Case.source, *(getattr(Case, name) for name in PLACE))
_EVENT_COLUMNS = (CaseEvent.case_id, CaseEvent.kind, CaseEvent.to_status, CaseEvent.detail,
                  CaseEvent.occurred_at)  # fmt: skip


def at_month_end(case: Any, events: list[Any], units: dict[str, int]) -> list[dict[str, Any]]:
    """The fact rows `keep` copied for the case when its first change after its month's
    end came: its events before that end folded (none if no change came after it)."""
    end = month_end(case.reported_at)
    if not any(e.occurred_at >= end and change(case.source, e.kind, e.to_status, e.detail or {},
                                               e.occurred_at) is not None
               for e in events):  # fmt: skip
        return []
    # By time, not by id: an imported history need not be written in order.
    return list(fold(case, [e for e in events if e.occurred_at < end], units).values())


def fold(
    case: Any, events: list[Any], units: dict[str, int]
) -> dict[tuple[int, int], dict[str, Any]]:
    """A case's fact rows from its events in order (what `keep` leaves after each)."""
    rows: dict[tuple[int, int], dict[str, Any]] = {}
    place = {name: getattr(case, name) for name in PLACE}

    def row_of(unit_id: int) -> dict[str, Any]:
        row = rows.get((case.id, unit_id))
        if row is None:
            row = rows[(case.id, unit_id)] = {**NEUTRAL, **place, "case_id": case.id,
                                              "unit_id": unit_id}  # fmt: skip
        return row

    for e in events:
        made = change(case.source, e.kind, e.to_status, e.detail or {}, e.occurred_at)
        if made is None:
            continue
        if made.cancel:
            for (_, unit_id), row in rows.items():
                row["cancelled"] = 1
                if unit_id == CASE_ROW:
                    merge(row, {"status": made.case.get("status"), "changed_at": e.occurred_at})
            continue
        lead = made.case.get("lead_unit_id")
        if isinstance(lead, str):
            made.case["lead_unit_id"] = units.get(lead)
        merge(row_of(CASE_ROW), {**made.case, "changed_at": e.occurred_at})
        for unit, task in made.tasks.items():
            task_unit = unit if isinstance(unit, int) else units.get(unit)
            if task_unit is not None:  # else a unit since deleted: the SQL writes nothing either
                merge(row_of(task_unit), task)
    return rows


def recomputed(
    session: Session, case_ids: list[int]
) -> Iterator[tuple[type[CaseFact] | type[CaseFactAtMonthEnd], dict[str, Any]]]:
    """The fact rows of these cases, recomputed from their events, each with its table:
    the facts now, and those kept as of the end of a case's month."""
    units = dict(session.execute(select(Unit.code, Unit.id)).all())
    cases = session.execute(select(*_CASE_COLUMNS).where(Case.id.in_(case_ids))).all()
    events: dict[int, list[Any]] = {}
    for e in session.execute(
        select(*_EVENT_COLUMNS).where(CaseEvent.case_id.in_(case_ids)).order_by(CaseEvent.id)
    ):
        events.setdefault(e.case_id, []).append(e)
    for c in cases:
        history = events.get(c.id, [])
        for row in fold(c, history, units).values():
            yield CaseFact, row
        for row in at_month_end(c, history, units):
            yield CaseFactAtMonthEnd, row


def rebuild(session: Session, *, batch: int = 5000, month_end_copies: bool = True) -> int:
    """Recompute every fact from the events (in the caller's transaction); the number of
    rows written. For a city that imports its history, or after the facts were lost.
    `month_end_copies=False`: not the copies as of the months' ends (for the migration
    that made `case_facts`, older than their table)."""
    tables = (CaseFact, CaseFactAtMonthEnd) if month_end_copies else (CaseFact,)
    for table in tables:
        session.execute(delete(table))
    written = 0
    last = 0
    while True:
        ids = list(session.scalars(select(Case.id).where(Case.id > last).order_by(Case.id)
                                   .limit(batch)))  # fmt: skip
        if not ids:
            return written
        last = ids[-1]
        rows: dict[Any, list[dict[str, Any]]] = {table: [] for table in tables}
        for table, row in recomputed(session, ids):
            if table in rows:
                rows[table].append(row)
        for table, values in rows.items():
            if values:
                session.execute(insert(cast(Table, table.__table__)), values)
                written += len(values)
