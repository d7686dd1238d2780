"""Case search for assessors, and the same filtered cases as CSV, XLSX and GeoJSON exports
and as a heat map per grid cell or road segment.

One filter model serves them all: the page an assessor reads is the file they export.
Pages are ordered by report time then id, newest first: both are fixed at intake, so a
cursor stays valid however many cases change state in the meantime.
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

import xlsxwriter
from geoalchemy2.shape import to_shape
from pydantic import BaseModel, ConfigDict, Field
from shapely.geometry import mapping
from sqlalchemy import ColumnElement, exists, func, select
from sqlalchemy.orm import Session

from app.access.rules import Permission, Principal
from app.assessment.schemas import CaseRow
from app.assessment.service import UnknownFilter, period_of
from app.cases.models import (
    CASE_STATUS_NAMES,
    STAGE_OF_STATUS,
    Case,
    CaseEvent,
    CaseEventKind,
    CaseStatus,
    CaseTask,
    TaskStatus,
    stage_due_at,
)
from app.core.inputs import Day
from app.core.moments import to_local
from app.core.pagination import Keyset
from app.routing.models import Urgency
from app.routing.schemas import UnitBrief
from app.routing.service import routing_context
from app.standards.service import national_codes
from app.territory.models import GridCell, Jurisdiction, RoadSegment, Unit

if TYPE_CHECKING:
    from app.settings import Settings

MAX_SEARCH_PAGE = 200
#: Search pages show the newest report first; exports list the oldest first.
NEWEST_FIRST = Keyset(Case.reported_at, Case.id, descending=True)
OLDEST_FIRST = Keyset(Case.reported_at, Case.id)
URGENCY_NAMES = {Urgency.CRITICAL: "特急", Urgency.URGENT: "紧急", Urgency.NORMAL: "一般"}


class CaseFilter(BaseModel):
    """What an assessor may filter cases on; anything else in the query is refused."""

    model_config = ConfigDict(extra="forbid")

    date_from: Day = Field(alias="from", description="Reported on or after (local day).")
    date_to: Day = Field(alias="to", description="Reported on or before (local day).")
    street: str | None = None
    community: str | None = None
    grid_cell: str | None = None
    segment: str | None = None
    unit: str | None = Field(default=None, description="A department that had a task.")
    category: str | None = Field(default=None, description="A category, or a group of them.")
    status: list[CaseStatus] = Field(default_factory=list)
    urgency: Urgency | None = None
    overdue: bool | None = Field(default=None, description="A task was marked overdue.")
    reworked: bool | None = None
    returned: bool | None = Field(default=None, description="A return was decided on it.")
    reporter_role: str | None = Field(default=None, examples=["road_chief"])


class CaseSearch(CaseFilter):
    limit: int = Field(default=50, ge=1, le=MAX_SEARCH_PAGE)
    cursor: str | None = Field(default=None, description="`next_cursor` of the last page.")


class HeatmapFilter(CaseFilter):
    level: Literal["grid_cell", "segment"] = "grid_cell"


def _check_code(session: Session, column: Any, value: str | None, what: str) -> None:
    if value is not None and session.scalar(select(column).where(column == value)) is None:
        raise UnknownFilter(f"{what}“{value}”不存在", value=value)


def conditions(
    session: Session, settings: Settings, principal: Principal, f: CaseFilter
) -> list[ColumnElement[bool]]:
    """The WHERE clauses of a filter, its codes checked (422 for one that does not exist)."""
    principal.require(Permission.CASES_READ)
    period = period_of(settings, f.date_from, f.date_to)
    where: list[ColumnElement[bool]] = [
        Case.reported_at >= period.start,
        Case.reported_at < period.end,
        Case.number.is_not(None),
        principal.path_filter(Case.jurisdiction_path),
    ]
    _check_code(session, Jurisdiction.code, f.street, "街道")
    _check_code(session, Jurisdiction.code, f.community, "社区")
    _check_code(session, GridCell.code, f.grid_cell, "网格")
    _check_code(session, RoadSegment.code, f.segment, "路段")
    for column, value in ((Case.street_code, f.street), (Case.community_code, f.community),
                          (Case.grid_cell_code, f.grid_cell), (Case.segment_code, f.segment),
                          (Case.urgency, f.urgency)):  # fmt: skip
        if value is not None:
            where.append(column == value)
    if f.category is not None:
        node = routing_context(session).taxonomy.get(f.category)
        if node is None:
            raise UnknownFilter(f"问题类别“{f.category}”不存在", value=f.category)
        where.append(
            Case.category_code.startswith(f"{f.category}.", autoescape=True)
            if node.is_group
            else Case.category_code == f.category
        )
    if f.unit is not None:
        unit_id = session.scalar(select(Unit.id).where(Unit.code == f.unit))
        if unit_id is None:
            raise UnknownFilter(f"单位“{f.unit}”不存在", value=f.unit)
        where.append(exists().where(CaseTask.case_id == Case.id, CaseTask.unit_id == unit_id))
    if f.status:
        where.append(Case.status.in_(f.status))
    if f.overdue is not None:
        late = exists().where(CaseTask.case_id == Case.id, CaseTask.overdue_at.is_not(None))
        where.append(late if f.overdue else ~late)
    if f.reworked is not None:
        where.append(Case.rework_count > 0 if f.reworked else Case.rework_count == 0)
    if f.returned is not None:
        back = exists().where(CaseEvent.case_id == Case.id,
                              CaseEvent.kind == CaseEventKind.RETURN_DECIDED)  # fmt: skip
        where.append(back if f.returned else ~back)
    if f.reporter_role is not None:
        where.append(exists().where(CaseEvent.case_id == Case.id,
                                    CaseEvent.kind == CaseEventKind.REPORTED,
                                    CaseEvent.actor_role == f.reporter_role))  # fmt: skip
    return where


#: What a row needs, read as columns (no ORM objects: an export reads 100,000 of them).
_COLUMNS = (
    Case.id, Case.number, Case.status, Case.source, Case.category_code, Case.urgency,
    Case.description, Case.reported_at, Case.handle_due_at, Case.verify_due_at, Case.closed_at,
    Case.street_code,
    Case.community_code, Case.grid_cell_code, Case.segment_code, Case.rework_count,
    Case.report_count, func.ST_X(Case.geom).label("lon"), func.ST_Y(Case.geom).label("lat"),
)  # fmt: skip


#: A task in one of these no longer makes its unit one of the case's handlers (承办单位).
_LET_GO = (TaskStatus.RELEASED, TaskStatus.RETURNED)


def _rows(session: Session, cases: Sequence[Any]) -> list[CaseRow]:
    """The cases as rows, with the names of what they code, their units (lead first) and
    overdue marks: a handful of queries per batch."""
    ids = [c.id for c in cases]
    tasks: dict[int, list[tuple[bool, UnitBrief, bool, bool]]] = {}
    if ids:
        for case_id, is_lead, status, late, code, name, kind in session.execute(
            select(CaseTask.case_id, CaseTask.is_lead, CaseTask.status,
                   CaseTask.overdue_at.is_not(None), Unit.code, Unit.name, Unit.kind)
            .join(Unit, CaseTask.unit_id == Unit.id)
            .where(CaseTask.case_id.in_(ids))
            .order_by(CaseTask.case_id, CaseTask.is_lead.desc(), CaseTask.id)
        ):  # fmt: skip
            unit = UnitBrief(code=code, name=name, kind=kind)
            tasks.setdefault(case_id, []).append((is_lead, unit, status in _LET_GO, late))
    places = _place_names(session, cases)
    taxonomy = routing_context(session).taxonomy
    national = national_codes(session)
    rows = []
    for c in cases:
        held = tasks.get(c.id, [])
        leads = [unit for lead, unit, _, _ in held if lead]
        category = taxonomy.get(c.category_code)
        cls = national.get(c.category_code)
        due = stage_due_at(c.status, c.handle_due_at, c.verify_due_at)
        rows.append(
            CaseRow(
                number=c.number or "", status=c.status, source=c.source,
                category_code=c.category_code, category_name=category.name if category else None,
                national_code=cls.code if cls else None,
                national_name=(cls.minor_name or cls.major_name) if cls else None,
                urgency=c.urgency, description=c.description,
                reported_at=c.reported_at, handle_due_at=c.handle_due_at,
                stage=STAGE_OF_STATUS.get(c.status), stage_due_at=due, closed_at=c.closed_at,
                street_code=c.street_code, street_name=places.get(c.street_code),
                community_code=c.community_code, community_name=places.get(c.community_code),
                grid_cell_code=c.grid_cell_code,
                segment_code=c.segment_code, segment_name=places.get(c.segment_code),
                lead_unit=leads[0] if leads else None,
                units=[unit for _, unit, gone, _ in held if not gone],
                released_units=[unit for _, unit, gone, _ in held if gone],
                overdue=any(late for _, _, _, late in held), rework_count=c.rework_count,
                report_count=c.report_count, lon=c.lon, lat=c.lat,
            )
        )  # fmt: skip
    return rows


def _place_names(session: Session, cases: Sequence[Any]) -> dict[str | None, str]:
    """The names of the street offices, communities and segments of these cases, by code
    (the codes of jurisdictions and segments are distinct)."""
    jurisdictions = {code for c in cases for code in (c.street_code, c.community_code) if code}
    segments = {c.segment_code for c in cases if c.segment_code}
    names: dict[str | None, str] = {}
    for query in (
        select(Jurisdiction.code, Jurisdiction.name).where(Jurisdiction.code.in_(jurisdictions)),
        select(RoadSegment.code, RoadSegment.name).where(RoadSegment.code.in_(segments)),
    ):
        names.update((code, name) for code, name in session.execute(query))
    return names


def search(
    session: Session,
    settings: Settings,
    principal: Principal,
    f: CaseFilter,
    *,
    limit: int,
    cursor: str | None,
) -> tuple[list[CaseRow], str | None]:
    """One page of the filtered cases, newest report first."""
    query = select(*_COLUMNS).where(*conditions(session, settings, principal, f))
    cases, next_cursor = NEWEST_FIRST.rows(session, query, limit=limit, cursor=cursor)
    return _rows(session, cases), next_cursor


# --- exports -------------------------------------------------------------------------------


def _local_text(moment: datetime | None) -> str:
    """A moment as an export's cell: local wall-clock time, as people read it."""
    return f"{to_local(moment):%Y-%m-%d %H:%M:%S}" if moment else ""


def _names(units: list[UnitBrief]) -> str:
    return "、".join(u.name for u in units)


#: Export columns: the Chinese header and how to read it off a row. What a row codes comes
#: with its name (the name first, for people; the code beside it, for programs).
COLUMNS: tuple[tuple[str, Any], ...] = (
    ("案件编号", lambda r: r.number),
    ("状态", lambda r: CASE_STATUS_NAMES[r.status]),
    ("问题类别", lambda r: r.category_name or ""),
    ("问题类别编码", lambda r: r.category_code),
    ("国标分类", lambda r: r.national_name or ""),
    ("国标分类编码", lambda r: r.national_code or ""),
    ("紧急程度", lambda r: URGENCY_NAMES[r.urgency]),
    ("问题描述", lambda r: r.description),
    ("上报时间", lambda r: _local_text(r.reported_at)),
    ("处置时限", lambda r: _local_text(r.handle_due_at)),
    ("当前环节时限", lambda r: _local_text(r.stage_due_at)),
    ("结案时间", lambda r: _local_text(r.closed_at)),
    ("街道", lambda r: r.street_name or ""),
    ("街道编码", lambda r: r.street_code or ""),
    ("社区", lambda r: r.community_name or ""),
    ("社区编码", lambda r: r.community_code or ""),
    ("网格编码", lambda r: r.grid_cell_code or ""),
    ("路段", lambda r: r.segment_name or ""),
    ("路段编码", lambda r: r.segment_code or ""),
    ("主办单位", lambda r: r.lead_unit.name if r.lead_unit else ""),
    ("主办单位编码", lambda r: r.lead_unit.code if r.lead_unit else ""),
    ("承办单位", lambda r: _names(r.units)),
    ("承办单位编码", lambda r: "、".join(u.code for u in r.units)),
    ("已释放或退回单位", lambda r: _names(r.released_units)),
    ("是否超期", lambda r: "是" if r.overdue else "否"),
    ("返工次数", lambda r: r.rework_count),
    ("上报次数", lambda r: r.report_count),
    ("经度", lambda r: round(r.lon, 7)),
    ("纬度", lambda r: round(r.lat, 7)),
)
EXPORT_BATCH = 1000


def _all_rows(
    session: Session, settings: Settings, where: list[ColumnElement[bool]]
) -> Iterator[list[CaseRow]]:
    """Every filtered case, oldest first, a batch at a time (memory stays flat)."""
    query = select(*_COLUMNS).where(*where)
    cursor: str | None = None
    while True:
        cases, cursor = OLDEST_FIRST.rows(session, query, limit=EXPORT_BATCH, cursor=cursor)
        if cases:
            yield _rows(session, cases)
        if cursor is None:
            return


def export_csv(
    session: Session, settings: Settings, principal: Principal, f: CaseFilter
) -> Iterator[bytes]:
    """UTF-8 with a byte-order mark, so that Excel opens the Chinese headers right."""
    where = conditions(session, settings, principal, f)

    def generate() -> Iterator[bytes]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow([name for name, _ in COLUMNS])
        yield ("\ufeff" + buffer.getvalue()).encode()
        for batch in _all_rows(session, settings, where):
            buffer.seek(0)
            buffer.truncate()
            writer.writerows([[_inert(get(r)) for _, get in COLUMNS] for r in batch])
            yield buffer.getvalue().encode()

    return generate()


def _inert(value: Any) -> Any:
    """A text cell that a spreadsheet would run as a formula gets a leading quote (OWASP's
    advice against CSV injection); numbers are left alone. `;` too: where it is the list
    separator, `;=...` opens an empty cell and then a formula."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", ";", "\t", "\r"):
        return "'" + value
    return value


def export_xlsx(
    session: Session, settings: Settings, principal: Principal, f: CaseFilter
) -> Iterator[bytes]:
    """An Excel workbook written row by row (XlsxWriter's constant-memory mode) to a
    temporary file, then streamed."""
    where = conditions(session, settings, principal, f)

    def generate() -> Iterator[bytes]:
        with tempfile.NamedTemporaryFile(suffix=".xlsx") as spool:
            # Text stays text: a description like "=HYPERLINK(...)" is never a formula.
            book = xlsxwriter.Workbook(spool.name, {
                "constant_memory": True, "strings_to_formulas": False, "strings_to_urls": False,
            })  # fmt: skip
            sheet = book.add_worksheet("案件")
            bold = book.add_format({"bold": True})
            for col, (name, _) in enumerate(COLUMNS):
                sheet.write(0, col, name, bold)
            row = 1
            for batch in _all_rows(session, settings, where):
                for r in batch:
                    for col, (_, get) in enumerate(COLUMNS):
                        sheet.write(row, col, get(r))
                    row += 1
            book.close()
            spool.seek(0)
            while chunk := spool.read(64 * 1024):
                yield chunk

    return generate()


def export_geojson(
    session: Session, settings: Settings, principal: Principal, f: CaseFilter
) -> Iterator[bytes]:
    where = conditions(session, settings, principal, f)

    def generate() -> Iterator[bytes]:
        yield b'{"type":"FeatureCollection","features":['
        first = True
        for batch in _all_rows(session, settings, where):
            for r in batch:
                feature = {
                    "type": "Feature", "id": r.number,
                    "geometry": {"type": "Point", "coordinates": [r.lon, r.lat]},
                    "properties": r.model_dump(mode="json", exclude={"lon", "lat"}),
                }  # fmt: skip
                yield (b"" if first else b",") + json.dumps(feature, ensure_ascii=False).encode()
                first = False
        yield b"]}"

    return generate()


def heatmap(
    session: Session,
    settings: Settings,
    principal: Principal,
    f: CaseFilter,
    level: Literal["grid_cell", "segment"],
) -> dict[str, Any]:
    """Counts of the filtered cases per grid cell (万米单元格) or road segment, as GeoJSON
    of the cells or segments that have any."""
    where = conditions(session, settings, principal, f)
    key = Case.grid_cell_code if level == "grid_cell" else Case.segment_code
    per_key = select(key, func.count()).where(*where, key.is_not(None)).group_by(key)
    counts = dict(session.execute(per_key).all())
    model = GridCell if level == "grid_cell" else RoadSegment
    features = []
    for code, geom in session.execute(
        select(model.code, model.geom).where(model.code.in_(list(counts))).order_by(model.code)
    ):
        features.append({"type": "Feature", "id": code, "geometry": mapping(to_shape(geom)),
                         "properties": {"code": code, "cases": counts[code]}})  # fmt: skip
    features.sort(key=lambda x: (-x["properties"]["cases"], x["id"]))
    return {"type": "FeatureCollection", "level": level, "features": features,
            "max_cases": max(counts.values(), default=0)}  # fmt: skip
