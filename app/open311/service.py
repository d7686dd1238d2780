"""Open311 GeoReport v2 on top of roadchief's own rules.

A service is a leaf of the taxonomy; a request is a report filed through the same intake
as the phone's (`app.reports.service.file_report`: placing, routing, duplicates, photos
rule, one transaction) with the same idempotency; a request's status is its case's. An
`api_key` is an API key of this service with `access: open311`; its jurisdictions bound
where it may report and what it reads. Everything here answers plain data; the router
renders it as XML or JSON (`render`).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVarTuple

from geoalchemy2.shape import to_shape
from pydantic import BaseModel, ValidationError
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from app.access.rules import Permission, Principal
from app.accounts.api_keys import principal_from_api_key
from app.cases.models import (
    CASE_STATUS_NAMES,
    FINISHED_STATUSES,
    Case,
    CaseEvent,
    CaseEventKind,
    CaseStatus,
    CaseTask,
)
from app.cases.service import record_event
from app.core.database import utcnow
from app.core.errors import Problem, field_errors_from_pydantic
from app.core.idempotency import Replay, run_idempotent
from app.core.moments import to_local
from app.media.service import photo_url
from app.open311.errors import Open311Error, from_problem
from app.open311.models import Open311Request, Open311Update
from app.open311.settings import Open311Settings
from app.open311.statuses import (
    EXTENDED_STATUSES,
    basic_status,
    extended_status,
    update_fits,
)
from app.reports.models import Report, ReportPhoto
from app.reports.schemas import LinkedReportIn
from app.reports.service import file_report
from app.routing.models import Category, RoutingDecision
from app.standards.service import aliases, national_class
from app.territory.locator import place_point
from app.territory.models import Asset, Jurisdiction, JurisdictionLevel, RoadSegment, Unit

if TYPE_CHECKING:
    from app.settings import Settings

SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
#: The spec's cap on one `GET requests` answer, and its longest date window.
MAX_REQUESTS = 1000
MAX_WINDOW = timedelta(days=90)
#: Event kinds an Open311 client sees as updates: the case's steps and posted updates.
UPDATE_KINDS = frozenset(
    {
        CaseEventKind.REPORTED,
        CaseEventKind.FIXED_ON_SPOT,
        CaseEventKind.REGISTERED,
        CaseEventKind.REJECTED,
        CaseEventKind.DISPATCHED,
        CaseEventKind.SIGNED_FOR,
        CaseEventKind.FED_BACK,
        CaseEventKind.VERIFIED,
        CaseEventKind.REWORK,
        CaseEventKind.HUNG_UP,
        CaseEventKind.RESUMED,
        CaseEventKind.REOPENED,
        CaseEventKind.CANCELLED,
        CaseEventKind.EXTERNAL_UPDATE,
    }
)
EVENT_NAMES = {
    CaseEventKind.REPORTED: "上报",
    CaseEventKind.FIXED_ON_SPOT: "当场整改",
    CaseEventKind.REGISTERED: "立案",
    CaseEventKind.REJECTED: "不予立案",
    CaseEventKind.DISPATCHED: "派遣",
    CaseEventKind.SIGNED_FOR: "签收",
    CaseEventKind.FED_BACK: "处置反馈",
    CaseEventKind.VERIFIED: "核查通过，结案",
    CaseEventKind.REWORK: "核查不通过，返工",
    CaseEventKind.HUNG_UP: "挂账",
    CaseEventKind.RESUMED: "恢复处置",
    CaseEventKind.REOPENED: "重新打开",
    CaseEventKind.CANCELLED: "撤销",
    CaseEventKind.EXTERNAL_UPDATE: "外部系统更新",
}


_Row = TypeVarTuple("_Row")


def _blank(value: str | None) -> str | None:
    """An empty parameter is an absent one."""
    if value is None:
        return None
    value = value.strip()
    return value or None


def _csv(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


# --- who is asking, and where ----------------------------------------------------------------


def key_principal(session: Session, api_key: str | None) -> Principal:
    """The key's principal; the spec's 403 for a missing, unknown or revoked key."""
    api_key = _blank(api_key)
    if api_key is None:
        raise Open311Error(403, "api_key was not provided")
    try:
        return principal_from_api_key(session, api_key, utcnow())
    except Problem:
        raise Open311Error(403, "api_key is invalid, revoked or expired") from None


def reader(session: Session, options: Open311Settings, api_key: str | None) -> Principal | None:
    """Who reads: a key's holder (their scope), or None for the public's view."""
    if _blank(api_key) is None and not options.read_requires_key:
        return None
    return key_principal(session, api_key)


@dataclass(frozen=True, slots=True)
class District:
    code: str
    name: str
    path: str


def district(session: Session, jurisdiction_id: str | None) -> District:
    """`jurisdiction_id` names a district (区/县级市); optional while there is only one."""
    code = _blank(jurisdiction_id)
    query = select(Jurisdiction).where(Jurisdiction.level == JurisdictionLevel.DISTRICT)
    if code is None:
        rows = session.scalars(query.limit(2)).all()
        if len(rows) != 1:
            raise Open311Error(400, "jurisdiction_id was not provided")
        row = rows[0]
    else:
        found = session.scalar(query.where(Jurisdiction.code == code))
        if found is None:
            raise Open311Error(404, f"jurisdiction_id not found: {code}")
        row = found
    return District(row.code, row.name, row.path)


# --- services ----------------------------------------------------------------------------------


def _leaves(session: Session) -> list[tuple[Category, Category | None]]:
    parent = Category.__table__.alias("parent")
    rows = session.execute(
        select(Category, parent.c.name)
        .outerjoin(parent, parent.c.id == Category.parent_id)
        .where(Category.is_group.is_(False), Category.active.is_(True))
        .order_by(Category.path)
    ).all()
    return [(row[0], row[1]) for row in rows]


def service_list(session: Session, settings: Settings) -> list[dict[str, Any]]:
    services = []
    for category, group in _leaves(session):
        national = national_class(category)
        keywords = [category.name_en]
        if national is not None:
            keywords += [national.code, national.major_name]
            keywords += [national.minor_name] if national.minor_name else []
        services.append(
            {
                "service_code": category.code,
                "service_name": category.name,
                "description": category.description or category.name_en,
                "metadata": True,
                "type": "realtime",
                "keywords": ", ".join(keywords),
                "group": group,
            }
        )
    return services


def resolve_service(session: Session, settings: Settings, code: str | None) -> Category:
    """A leaf by its code or its national code alias (404 when neither names one)."""
    code = _blank(code)
    if code is None:
        raise Open311Error(400, "service_code was not provided")
    code = aliases(session).get(code, code)
    row = session.scalar(
        select(Category).where(
            Category.code == code, Category.is_group.is_(False), Category.active.is_(True)
        )
    )
    if row is None:
        raise Open311Error(404, f"service_code not found: {code}")
    return row


URGENCY_NAMES = {"critical": "特急", "urgent": "紧急", "normal": "一般"}
COORDINATE_SYSTEMS = {"wgs84": "WGS 84（GPS）", "gcj02": "GCJ-02（高德、腾讯、微信地图）"}


def _list(values: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "name": v} for k, v in values.items()]


def attributes(category: Category) -> list[dict[str, Any]]:
    """What the category needs, as GeoReport attributes (see README "Open311")."""
    limits = category.time_limits.get(category.default_urgency.value, {})
    result: list[dict[str, Any]] = [
        {
            "variable": False,
            "code": "time_limit",
            "datatype": "text",
            "required": False,
            "datatype_description": None,
            "order": 1,
            "description": f"默认紧急程度“{URGENCY_NAMES[category.default_urgency.value]}”，"
            f"处置时限 {limits.get('handle', '—')} 个工作小时",
        },
        {
            "variable": True,
            "code": "urgency",
            "datatype": "singlevaluelist",
            "required": False,
            "datatype_description": "不填则按该类问题的默认紧急程度",
            "order": 2,
            "description": "紧急程度",
            "values": _list(URGENCY_NAMES),
        },
        {
            "variable": True,
            "code": "coordinate_system",
            "datatype": "singlevaluelist",
            "required": False,
            "datatype_description": "lat/long 的坐标系，不填为 WGS 84",
            "order": 3,
            "description": "坐标系",
            "values": _list(COORDINATE_SYSTEMS),
        },
    ]
    if category.asset_types:
        result.append(
            {
                "variable": True,
                "code": "asset_code",
                "datatype": "string",
                "required": False,
                "datatype_description": "部件编号或 17 位部件标识码",
                "order": 4,
                "description": "涉及的部件（如井盖编号）：其权属单位牵头处置",
            }
        )
    if category.photo_required:
        result.append(
            {
                "variable": True,
                "code": "media_url",
                "datatype": "string",
                "required": True,
                "datatype_description": "照片的网址；也可用标准参数 media_url",
                "order": 5,
                "description": "该类问题须附现场照片",
            }
        )
    return result


def service_definition(session: Session, settings: Settings, code: str) -> dict[str, Any]:
    category = resolve_service(session, settings, code)
    return {"service_code": category.code, "attributes": attributes(category)}


# --- POST requests -----------------------------------------------------------------------------


class Open311Receipt(BaseModel):
    """What a `POST requests` answers (kept for idempotent replays)."""

    service_request_id: str
    token: str
    service_notice: str
    account_id: str | None


@dataclass(frozen=True, slots=True)
class RequestForm:
    """The form of a `POST requests`, empty values already absent."""

    fields: Mapping[str, str]
    attributes: Mapping[str, list[str]]

    def get(self, name: str) -> str | None:
        return _blank(self.fields.get(name))


CLIENT_FIELDS = (
    "email", "device_id", "account_id", "first_name", "last_name", "phone",
    "address_string", "address_id",
)  # fmt: skip


def _throttle(
    session: Session, options: Open311Settings, principal: Principal, now: datetime
) -> None:
    since = now - timedelta(minutes=1)
    posted = (
        session.scalar(
            select(func.count())
            .select_from(Open311Request)
            .where(Open311Request.api_key_id == principal.id, Open311Request.created_at > since)
        )
        or 0
    )
    posted += (
        session.scalar(
            select(func.count())
            .select_from(Open311Update)
            .where(Open311Update.api_key_id == principal.id, Open311Update.created_at > since)
        )
        or 0
    )
    if posted >= options.rate_per_minute:
        raise Open311Error(
            429,
            f"too many requests: at most {options.rate_per_minute} a minute per api_key",
            headers={"Retry-After": "60"},
        )


def _location(session: Session, form: RequestForm, place: District) -> tuple[float, float] | None:
    """lat/long, else `address_id` (a road segment or asset code), else `address_string`
    (a road segment's name, or its road's): the spec's three ways; None when none given."""
    lat, lon = form.get("lat"), form.get("long")
    if lat is not None or lon is not None:
        try:
            return float(lon or ""), float(lat or "")
        except ValueError:
            raise Open311Error(400, "lat and long must both be given as numbers") from None
    address_id = form.get("address_id")
    if address_id is not None:
        segment = session.scalar(select(RoadSegment).where(RoadSegment.code == address_id))
        if segment is not None:
            point = to_shape(segment.geom).interpolate(0.5, normalized=True)
            return point.x, point.y
        asset = session.scalar(select(Asset).where(Asset.code == address_id))
        if asset is not None:
            point = to_shape(asset.geom)
            return point.x, point.y
        raise Open311Error(404, f"address_id not found: {address_id}")
    address = form.get("address_string")
    if address is not None:
        segment = session.scalar(
            select(RoadSegment)
            .where((RoadSegment.name == address) | (RoadSegment.road_name == address))
            .order_by(RoadSegment.name != address, RoadSegment.code)
            .limit(1)
        )
        if segment is None:
            raise Open311Error(
                400, f"address_string cannot be placed: no road named {address!r}; send lat/long"
            )
        point = to_shape(segment.geom).interpolate(0.5, normalized=True)
        return point.x, point.y
    return None


def _checked_attributes(category: Category, form: RequestForm) -> dict[str, Any]:
    defined = {a["code"]: a for a in attributes(category) if a["variable"]}
    unknown = sorted(set(form.attributes) - set(defined))
    if unknown:
        raise Open311Error(400, f"attribute not defined for {category.code}: {', '.join(unknown)}")
    values: dict[str, Any] = {}
    for code, attribute in defined.items():
        given = [v for v in (_blank(v) for v in form.attributes.get(code, [])) if v]
        if not given:
            continue
        if attribute["datatype"] == "singlevaluelist":
            keys = {v["key"] for v in attribute["values"]}
            if len(given) > 1 or given[0] not in keys:
                raise Open311Error(
                    400, f"attribute[{code}] must be one of {', '.join(sorted(keys))}"
                )
        values[code] = given[0]
    media = [m for m in (form.get("media_url"), values.get("media_url")) if m]
    if "media_url" in defined and not media:
        raise Open311Error(400, "required attribute missing: media_url (a photo of the problem)")
    values["media_urls"] = list(dict.fromkeys(media))
    return values


def _check_place(
    session: Session,
    settings: Settings,
    principal: Principal,
    place: District,
    lon: float,
    lat: float,
) -> None:
    """The point must lie in the district named, and in the key's jurisdictions."""
    try:
        places = place_point(session, settings, lon, lat)
    except Problem as problem:
        raise from_problem(problem) from None
    codes = [p.code for p in places]
    if codes[0] != place.code:
        raise Open311Error(400, f"the location is not in jurisdiction {place.code}")
    path = "/" + "/".join(codes) + "/"
    if not any(path.startswith(root) for root in principal.scope_paths):
        raise Open311Error(403, "api_key is not valid for this location's jurisdiction")


def create_request(
    session: Session,
    settings: Settings,
    options: Open311Settings,
    form: RequestForm,
    idempotency_key: str | None,
) -> Open311Receipt:
    principal = key_principal(session, form.get("api_key"))
    if Permission.OPEN311_SUBMIT not in principal.permissions:
        raise Open311Error(403, "api_key may read but not submit requests")
    now = utcnow()
    place = district(session, form.get("jurisdiction_id"))
    category = resolve_service(session, settings, form.get("service_code"))
    location = _location(session, form, place)
    if location is None:
        raise Open311Error(
            400, "location was not provided: send lat/long, address_string or address_id"
        )
    values = _checked_attributes(category, form)
    description = form.get("description") or category.name
    try:
        body = LinkedReportIn(
            category_code=category.code,
            description=description,
            lon=location[0],
            lat=location[1],
            coordinate_system=values.get("coordinate_system", "wgs84"),
            urgency=values.get("urgency"),
            asset_code=values.get("asset_code"),
            device_time=now,
            media_urls=values["media_urls"],
        )
    except ValidationError as exc:
        errors = field_errors_from_pydantic(exc.errors())
        raise Open311Error(400, "; ".join(f"{e.loc[0]}: {e.message}" for e in errors)) from None
    _throttle(session, options, principal, now)
    _check_place(session, settings, principal, place, body.lon, body.lat)
    client = {name: form.get(name) for name in CLIENT_FIELDS if form.get(name) is not None}

    def create() -> Open311Receipt:
        receipt = file_report(session, settings, principal, body)
        session.add(
            Open311Request(
                token=secrets.token_hex(16),
                api_key_id=principal.id,
                report_id=receipt.report_id,
                case_id=session.scalar(select(Case.id).where(Case.number == receipt.case_number)),
                created_at=now,
                client_fields=client,
            )
        )
        session.flush()
        token = session.scalar(
            select(Open311Request.token).where(Open311Request.report_id == receipt.report_id)
        )
        lead = receipt.lead_units[0].name if receipt.lead_units else "指挥中心"
        notice = (
            f"已并入同一问题的案件 {receipt.case_number}（重复上报）"
            if receipt.duplicate
            else f"已受理，由{lead}牵头处置"
        )
        if receipt.handle_due_at is not None:
            notice += f"，处置时限至 {to_local(receipt.handle_due_at):%Y-%m-%d %H:%M}"
        return Open311Receipt(
            service_request_id=receipt.case_number,
            token=token or "",
            service_notice=notice,
            account_id=client.get("account_id"),
        )

    # Form fields minus the key: the same request resent with the same Idempotency-Key
    # is answered again; the key itself is the caller.
    fingerprint = ReportFingerprint(
        form={k: v for k, v in form.fields.items() if k != "api_key"},
        attributes=dict(form.attributes),
    )
    try:
        result = run_idempotent(
            session, principal.ref, "open311.requests.create", idempotency_key, fingerprint,
            create, status_code=200,
        )  # fmt: skip
    except Problem as problem:
        raise from_problem(problem) from None
    # Open311 answers in its own formats, so the stored answer is rendered again as data.
    return result.as_model(Open311Receipt) if isinstance(result, Replay) else result


class ReportFingerprint(BaseModel):
    form: dict[str, str]
    attributes: dict[str, list[str]]


# --- GET requests ------------------------------------------------------------------------------


def parse_datetime(name: str, value: str | None) -> datetime | None:
    value = _blank(value)
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Open311Error(400, f"{name} is not a W3C date-time: {value}") from None
    if moment.tzinfo is None:
        raise Open311Error(400, f"{name} needs a time zone (2026-11-18T10:00:00+08:00 or …Z)")
    return moment


def window(start: str | None, end: str | None) -> tuple[datetime, datetime]:
    """`start_date`/`end_date`: at most 90 days apart; the most recent 90 days by default."""
    since, until = parse_datetime("start_date", start), parse_datetime("end_date", end)
    if since is None and until is None:
        until = utcnow()
    if since is None:
        assert until is not None
        since = until - MAX_WINDOW
    if until is None:
        until = since + MAX_WINDOW
    if until < since:
        raise Open311Error(400, "end_date is before start_date")
    if until - since > MAX_WINDOW:
        raise Open311Error(400, "start_date and end_date may be at most 90 days apart")
    return since, until


def _scoped(query: Select[*_Row], principal: Principal | None, place: District) -> Select[*_Row]:
    query = query.where(Case.jurisdiction_path.startswith(place.path, autoescape=True))
    if principal is not None:
        query = query.where(principal.path_filter(Case.jurisdiction_path))
    return query


def _names(session: Session, model: Any, codes: set[str]) -> dict[str, str]:
    if not codes:
        return {}
    return dict(session.execute(select(model.code, model.name).where(model.code.in_(codes))).all())


def _request_rows(
    session: Session, cases: Sequence[Case], base_url: str, place: District
) -> list[dict[str, Any]]:
    ids = [c.id for c in cases]
    if not ids:
        return []
    categories = dict(
        session.execute(
            select(Category.code, Category.name).where(
                Category.code.in_({c.category_code for c in cases})
            )
        ).all()
    )
    updated = dict(
        session.execute(
            select(CaseEvent.case_id, func.max(CaseEvent.occurred_at))
            .where(CaseEvent.case_id.in_(ids))
            .group_by(CaseEvent.case_id)
        ).all()
    )
    leads = dict(
        session.execute(
            select(CaseTask.case_id, Unit.name)
            .join(Unit, Unit.id == CaseTask.unit_id)
            .where(CaseTask.case_id.in_(ids), CaseTask.is_lead.is_(True))
        ).all()
    )
    routed = dict(
        session.execute(
            select(Case.id, RoutingDecision.lead_unit_codes)
            .join(RoutingDecision, RoutingDecision.id == Case.routing_decision_id)
            .where(Case.id.in_(ids))
        ).all()
    )
    unit_names = _names(session, Unit, {c[0] for c in routed.values() if c})
    photos: dict[int, str] = {}
    for case_id, photo_id, links in session.execute(
        select(Report.case_id, ReportPhoto.photo_id, Report.media_urls)
        .outerjoin(ReportPhoto, ReportPhoto.report_id == Report.id)
        .where(Report.case_id.in_(ids))
        .order_by(Report.id, ReportPhoto.position)
    ).all():
        if case_id in photos:
            continue
        if photo_id is not None:
            photos[case_id] = base_url.rstrip("/") + photo_url(photo_id, "display")
        elif links:
            photos[case_id] = links[0]
    places = _names(
        session,
        Jurisdiction,
        {code for c in cases for code in (c.street_code, c.community_code) if code},
    )
    segments = _names(session, RoadSegment, {c.segment_code for c in cases if c.segment_code})
    rows = []
    for case in cases:
        point = to_shape(case.geom)
        address = [
            segments.get(case.segment_code or ""),
            places.get(case.community_code or ""),
            places.get(case.street_code or ""),
            place.name,
        ]
        lead = leads.get(case.id) or (
            unit_names.get(routed[case.id][0]) if routed.get(case.id) else None
        )
        last = updated.get(case.id)
        rows.append(
            {
                "service_request_id": case.number,
                "status": basic_status(case.status),
                "status_notes": CASE_STATUS_NAMES[case.status],
                "service_name": categories.get(case.category_code, case.category_code),
                "service_code": case.category_code,
                "description": case.description,
                "agency_responsible": lead,
                "service_notice": None,
                "requested_datetime": to_local(case.reported_at),
                "updated_datetime": to_local(last) if last else None,
                "expected_datetime": to_local(case.handle_due_at) if case.handle_due_at else None,
                "address": "，".join(a for a in address if a),
                "address_id": case.segment_code,
                "zipcode": None,
                "lat": point.y,
                "long": point.x,
                "media_url": photos.get(case.id),
            }
        )
    return rows


def list_requests(
    session: Session,
    settings: Settings,
    options: Open311Settings,
    params: Mapping[str, str],
    base_url: str,
) -> list[dict[str, Any]]:
    principal = reader(session, options, params.get("api_key"))
    place = district(session, params.get("jurisdiction_id"))
    query = _scoped(select(Case), principal, place)
    numbers = _csv(params.get("service_request_id"))
    if numbers:  # overrides every other filter
        query = query.where(Case.number.in_(numbers))
    else:
        codes = [
            resolve_service(session, settings, c).code for c in _csv(params.get("service_code"))
        ]
        if codes:
            query = query.where(Case.category_code.in_(codes))
        since, until = window(params.get("start_date"), params.get("end_date"))
        query = query.where(Case.reported_at >= since, Case.reported_at <= until)
        statuses = _csv(params.get("status"))
        wrong = sorted(set(statuses) - {"open", "closed"})
        if wrong:
            raise Open311Error(400, f"status must be open or closed, not {', '.join(wrong)}")
        if statuses and len(set(statuses)) == 1:
            finished = Case.status.in_(sorted(FINISHED_STATUSES))
            query = query.where(finished if statuses[0] == "closed" else ~finished)
    cases = session.scalars(
        query.order_by(Case.reported_at.desc(), Case.id.desc()).limit(MAX_REQUESTS)
    ).all()
    return _request_rows(session, cases, base_url, place)


def get_request(
    session: Session,
    settings: Settings,
    options: Open311Settings,
    number: str,
    params: Mapping[str, str],
    base_url: str,
) -> list[dict[str, Any]]:
    principal = reader(session, options, params.get("api_key"))
    place = district(session, params.get("jurisdiction_id"))
    case = session.scalar(_scoped(select(Case), principal, place).where(Case.number == number))
    if case is None:
        raise Open311Error(404, f"service_request_id not found: {number}")
    return _request_rows(session, [case], base_url, place)


def token_request(session: Session, token: str, params: Mapping[str, str]) -> list[dict[str, Any]]:
    place = district(session, params.get("jurisdiction_id"))
    row = session.execute(
        select(Case.number)
        .join(Open311Request, Open311Request.case_id == Case.id)
        .where(Open311Request.token == token, Case.jurisdiction_path.startswith(place.path))
    ).first()
    if row is None:
        raise Open311Error(404, f"token not found: {token}")
    return [{"service_request_id": row[0], "token": token}]


# --- the mySociety updates extension -----------------------------------------------------------


def _reject_reasons(session: Session, case_ids: Sequence[int]) -> dict[int, str | None]:
    rows = session.execute(
        select(CaseEvent.case_id, CaseEvent.detail)
        .where(CaseEvent.case_id.in_(case_ids), CaseEvent.kind == CaseEventKind.REJECTED)
        .order_by(CaseEvent.id)
    ).all()
    return {case_id: (detail or {}).get("reason") for case_id, detail in rows}


def list_updates(
    session: Session,
    settings: Settings,
    options: Open311Settings,
    params: Mapping[str, str],
    base_url: str,
) -> list[dict[str, Any]]:
    principal = reader(session, options, params.get("api_key"))
    place = district(session, params.get("jurisdiction_id"))
    since, until = window(params.get("start_date"), params.get("end_date"))
    query = _scoped(
        select(CaseEvent, Case.number).join(Case, Case.id == CaseEvent.case_id), principal, place
    ).where(
        CaseEvent.kind.in_(sorted(UPDATE_KINDS)),
        CaseEvent.occurred_at >= since,
        CaseEvent.occurred_at <= until,
    )
    rows = session.execute(
        query.order_by(CaseEvent.occurred_at, CaseEvent.id).limit(MAX_REQUESTS)
    ).all()
    reasons = _reject_reasons(session, list({e.case_id for e, _ in rows}))
    # Each event reads as the stage it left the case in (an event without a move keeps
    # the stage its case was in: replayed in order).
    stage: dict[int, CaseStatus] = {}
    updates = []
    for event, number in rows:
        if event.to_status is not None:
            stage[event.case_id] = event.to_status
        status = stage.get(event.case_id) or _status_before(session, event)
        stage[event.case_id] = status
        note = event.note or ""
        description = EVENT_NAMES.get(event.kind, event.kind.value) + (f"：{note}" if note else "")
        media = (event.detail or {}).get("media_url") or (
            base_url.rstrip("/") + photo_url(event.photo_ids[0], "display")
            if event.photo_ids
            else ""
        )
        updates.append(
            {
                "update_id": str(event.id),
                "service_request_id": number,
                "status": extended_status(status, reasons.get(event.case_id)),
                "updated_datetime": to_local(event.occurred_at),
                "description": description,
                "media_url": media,
            }
        )
    return updates


def _status_before(session: Session, event: CaseEvent) -> CaseStatus:
    """The case's stage when an event that moves nothing happened."""
    moved = session.scalar(
        select(CaseEvent.to_status)
        .where(
            CaseEvent.case_id == event.case_id,
            CaseEvent.id < event.id,
            CaseEvent.to_status.is_not(None),
        )
        .order_by(CaseEvent.id.desc())
        .limit(1)
    )
    return moved or CaseStatus.PENDING_REGISTRATION


def post_update(
    session: Session, settings: Settings, options: Open311Settings, form: RequestForm
) -> dict[str, str]:
    """An external system's update: a note in the case's history when its status fits
    the case's stage (see `statuses`), refused otherwise. Resent: answered, not doubled."""
    principal = key_principal(session, form.get("api_key"))
    if Permission.OPEN311_SUBMIT not in principal.permissions:
        raise Open311Error(403, "api_key may read but not post updates")
    place = district(session, form.get("jurisdiction_id"))
    number = form.get("service_request_id")
    if number is None:
        raise Open311Error(400, "service_request_id was not provided")
    external_id = form.get("update_id")
    if external_id is None or len(external_id) > 64:
        raise Open311Error(
            400, "update_id (the client's own id, up to 64 characters) was not provided"
        )
    posted = (form.get("status") or "").lower()
    if posted not in EXTENDED_STATUSES:
        raise Open311Error(400, f"status must be one of {', '.join(EXTENDED_STATUSES)}")
    case = session.scalar(_scoped(select(Case), principal, place).where(Case.number == number))
    if case is None:
        raise Open311Error(404, f"service_request_id not found: {number}")
    stored = session.scalar(
        select(Open311Update).where(
            Open311Update.api_key_id == principal.id, Open311Update.external_id == external_id
        )
    )
    if stored is not None:
        return {"update_id": str(stored.case_event_id)}
    reason = _reject_reasons(session, [case.id]).get(case.id)
    if not update_fits(case, posted, reason):
        current = extended_status(case.status, reason)
        raise Open311Error(
            400,
            f"status {posted} does not fit: the case is {current} "
            f"({CASE_STATUS_NAMES[case.status]}); its steps are taken in roadchief",
        )
    when = parse_datetime("updated_datetime", form.get("updated_datetime")) or utcnow()
    now = utcnow()
    _throttle(session, options, principal, now)
    description = form.get("description") or ""
    media_url = form.get("media_url")
    event = record_event(
        session, settings, case, CaseEventKind.EXTERNAL_UPDATE,
        note=description or None, actor_role="api_key",
        detail={"api_key": principal.name, "update_id": external_id, "status": posted,
                "updated_datetime": when.isoformat(), "media_url": media_url},
    )  # fmt: skip
    session.add(
        Open311Update(
            api_key_id=principal.id,
            external_id=external_id,
            case_id=case.id,
            case_event_id=event.id,
            created_at=now,
        )
    )
    session.commit()
    return {"update_id": str(event.id)}
