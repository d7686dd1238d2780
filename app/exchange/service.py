"""The exchange with a city's 数字城管 platform (数字化城市管理信息系统).

Out: every case that changed since a cursor, whole (its stage, national class, place,
photos as links, its history), oldest change first; the cursor is the last history event
seen, so a platform that polls with the cursor it was given misses nothing and gets each
change once per poll. In: the platform's cases, each filed through the same intake as a
phone's report (placing, routing, duplicates) and linked to its platform number; a
number already imported is answered with its case and changes nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, StringConstraints
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.access.rules import Permission, Principal
from app.cases.models import CASE_STATUS_NAMES, Case, CaseEvent, CaseSource, CaseTask
from app.cases.schemas import CasePlaceTimes
from app.core.coords import PointIn
from app.core.errors import Problem, ProblemBody
from app.core.inputs import Moment
from app.core.moments import LocalMoment
from app.core.pagination import Keyset
from app.exchange.models import PlatformCase
from app.media.service import photo_url
from app.reports.models import Report, ReportPhoto
from app.reports.schemas import LinkedReportIn
from app.reports.service import file_report
from app.routing.models import Category
from app.routing.schemas import CategoryCode
from app.standards.codes import current_edition
from app.standards.service import NationalCode, category_named, national_class
from app.territory.models import Unit

if TYPE_CHECKING:
    from app.settings import Settings

PlatformNumber = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)
]

#: The exchange follows the case history in event order.
BY_EVENT = Keyset(CaseEvent.id)


class ExchangeNational(BaseModel):
    edition: str
    kind: str
    code: str
    major_code: str
    major_name: str
    minor_code: str | None
    minor_name: str | None


class ExchangeEvent(BaseModel):
    id: int
    kind: str
    occurred_at: LocalMoment
    from_status: str | None
    to_status: str | None
    note: str | None
    actor_role: str | None
    photo_urls: list[str]


class ExchangeCase(CasePlaceTimes):
    """One case as the platform receives it."""

    number: str
    platform_number: str | None = Field(description="平台案件编号, when it came from there.")
    source: str
    status: str
    stage: str = Field(description="The status in Chinese (待立案, 处置中 …).")
    category_code: str
    category_name: str
    national: ExchangeNational | None = Field(
        description="Its class in the deployment's edition; null where the table has no code."
    )
    urgency: str
    description: str
    lead_unit: str | None
    photo_urls: list[str]
    history: list[ExchangeEvent]


class ExchangePage(BaseModel):
    cases: list[ExchangeCase]
    next_cursor: str | None = Field(
        description="Send it as `since` next time (also when this page was the last: the "
        "cursor of the latest change seen); null while no case has changed yet (call again "
        "without `since`)."
    )


def _absolute(base_url: str, photo_id: int) -> str:
    return base_url.rstrip("/") + photo_url(photo_id, "display")


def export_cases(
    session: Session,
    settings: Settings,
    principal: Principal,
    *,
    since: str | None,
    limit: int,
    base_url: str,
) -> ExchangePage:
    principal.require(Permission.CASES_READ)
    # Not a page of rows but of the cases changed since an event (`since`): the cursor is
    # the last event seen; only its decoding is the pager's.
    seen = BY_EVENT.decode(since)
    after = seen[0] if seen else 0
    events = session.execute(
        select(CaseEvent.id, CaseEvent.case_id)
        .join(Case, Case.id == CaseEvent.case_id)
        .where(CaseEvent.id > after, principal.path_filter(Case.jurisdiction_path))
        .order_by(CaseEvent.id)
        .limit(limit * 20)
    ).all()
    order: list[int] = []
    last = after
    for event_id, case_id in events:
        if case_id not in order:
            if len(order) == limit:
                break
            order.append(case_id)
        last = event_id
    cases = {c.id: c for c in session.scalars(select(Case).where(Case.id.in_(order)))}
    rows = [_exchange_case(session, cases[i], base_url) for i in order]
    return ExchangePage(cases=rows, next_cursor=BY_EVENT.encode([last]) if last else None)


def _exchange_case(session: Session, case: Case, base_url: str) -> ExchangeCase:
    category = session.scalar(select(Category).where(Category.code == case.category_code))
    cls = national_class(category) if category is not None else None
    platform = session.scalar(
        select(PlatformCase.platform_number).where(PlatformCase.case_id == case.id).limit(1)
    )
    lead = session.scalar(
        select(Unit.code)
        .join(CaseTask, CaseTask.unit_id == Unit.id)
        .where(CaseTask.case_id == case.id, CaseTask.is_lead.is_(True))
    )
    photos: list[str] = []
    for photo_id, links in session.execute(
        select(ReportPhoto.photo_id, Report.media_urls)
        .select_from(Report)
        .outerjoin(ReportPhoto, ReportPhoto.report_id == Report.id)
        .where(Report.case_id == case.id)
        .order_by(Report.id, ReportPhoto.position)
    ).all():
        for url in ([_absolute(base_url, photo_id)] if photo_id else []) + list(links or []):
            if url not in photos:
                photos.append(url)
    history = [
        ExchangeEvent(
            id=e.id,
            kind=e.kind.value,
            occurred_at=e.occurred_at,
            from_status=e.from_status.value if e.from_status else None,
            to_status=e.to_status.value if e.to_status else None,
            note=e.note,
            actor_role=e.actor_role,
            photo_urls=[_absolute(base_url, p) for p in e.photo_ids],
        )
        for e in session.scalars(
            select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(CaseEvent.id)
        )
    ]
    return ExchangeCase(
        **dict(CasePlaceTimes.model_validate(case)),
        number=case.number or "",
        platform_number=platform,
        source=case.source.value,
        status=case.status.value,
        stage=CASE_STATUS_NAMES[case.status],
        category_code=case.category_code,
        category_name=category.name if category else case.category_code,
        national=ExchangeNational(
            edition=current_edition().key,
            kind=cls.kind,
            code=cls.code,
            major_code=cls.major_code,
            major_name=cls.major_name,
            minor_code=cls.minor_code,
            minor_name=cls.minor_name,
        )
        if cls
        else None,
        urgency=case.urgency.value,
        description=case.description,
        lead_unit=lead,
        photo_urls=photos,
        history=history,
    )


# --- import --------------------------------------------------------------------------------------


class PlatformCaseIn(PointIn):
    """One case of the platform: its number, what and where, its photos as links."""

    model_config = ConfigDict(extra="forbid")

    platform_number: PlatformNumber = Field(examples=["JH2026111800123"])
    category_code: CategoryCode | None = Field(default=None, examples=["roads.manhole"])
    national_code: NationalCode | None = Field(
        default=None,
        description="The class in the deployment's edition (`event:0401`), instead of "
        "`category_code`.",
    )
    description: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)
    ]
    reported_at: Moment
    photo_urls: list[HttpUrl] = Field(default_factory=list, max_length=30)


class PlatformImport(BaseModel):
    model_config = ConfigDict(extra="forbid")
    cases: list[PlatformCaseIn] = Field(min_length=1, max_length=500)


class PlatformImportResult(BaseModel):
    platform_number: str
    status: int = Field(description="201 imported, 200 imported before, else the refusal's.")
    case_number: str | None = None
    duplicate: bool = Field(default=False, description="Joined a case already open.")
    problem: ProblemBody | None = None


class PlatformImportOut(BaseModel):
    items: list[PlatformImportResult]


def _imported(session: Session, number: str) -> PlatformImportResult | None:
    row = session.execute(
        select(Case.number)
        .join(PlatformCase, PlatformCase.case_id == Case.id)
        .where(PlatformCase.platform_number == number)
    ).first()
    return (
        None
        if row is None
        else PlatformImportResult(platform_number=number, status=200, case_number=row[0])
    )


def import_cases(
    session: Session, settings: Settings, principal: Principal, batch: PlatformImport
) -> PlatformImportOut:
    """Each platform case on its own (one bad case refuses only itself); a number
    already imported, now or by a racing import, is answered and never filed twice."""
    principal.require(Permission.EXCHANGE_IMPORT)
    results = []
    for item in batch.cases:
        done = _imported(session, item.platform_number)
        if done is not None:
            results.append(done)
            continue
        try:
            body = LinkedReportIn(
                category_code=category_named(session, item.category_code, item.national_code),
                description=item.description,
                lon=item.lon,
                lat=item.lat,
                coordinate_system=item.coordinate_system,
                device_time=item.reported_at,
                media_urls=item.photo_urls,
            )
            receipt = file_report(session, settings, principal, body, source=CaseSource.PLATFORM)
            case_id = session.scalar(select(Case.id).where(Case.number == receipt.case_number))
            assert case_id is not None
            session.add(
                PlatformCase(
                    platform_number=item.platform_number,
                    case_id=case_id,
                    record=item.model_dump(mode="json"),
                )
            )
            session.commit()
        except Problem as problem:
            session.rollback()
            results.append(
                PlatformImportResult(
                    platform_number=item.platform_number,
                    status=problem.status,
                    problem=ProblemBody.model_validate(problem.body()),
                )
            )
            continue
        except IntegrityError:
            session.rollback()  # another import took this number first
            again = _imported(session, item.platform_number)
            assert again is not None
            results.append(again)
            continue
        results.append(
            PlatformImportResult(
                platform_number=item.platform_number,
                status=201,
                case_number=receipt.case_number,
                duplicate=receipt.duplicate,
            )
        )
    return PlatformImportOut(items=results)
