"""Admins' pages (管理员): users, the audit log, webhooks, routing tables and road
chiefs' segments."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import urlencode

import yaml
from fastapi import File, Form, Query, Request, UploadFile
from fastapi.responses import Response
from pydantic import ValidationError

from app.access.rules import Permission, Principal
from app.accounts import service as accounts
from app.accounts.models import Role
from app.audit import service as audit
from app.audit.models import AuditEventType
from app.cases.models import CaseEventKind
from app.console.deps import CsrfField, Me, console_router, redirect_back
from app.console.pages import render
from app.console.session import PREFIX, check_csrf
from app.core.bodies import MULTIPART_FRAMING_BYTES, body_limit
from app.core.deps import SessionDep, SettingsDep
from app.core.errors import Problem
from app.core.inputs import DatabaseId
from app.notifications import service as notifications
from app.notifications.schemas import OTHER_EVENT_TYPES, WebhookCreate
from app.routing import rule_sets
from app.routing import service as routing
from app.routing.schemas import RouteRequest, RuleSetDocument
from app.routing.service import routing_context

if TYPE_CHECKING:
    from app.settings import Settings

router = console_router()


@router.get("/admin/users")
def users_page(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    me: Me,
    role: Annotated[Role | None, Query()] = None,
    q: Annotated[str | None, Query(max_length=50)] = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    """Users in the admin's scope (`accounts.service.list_users`, as the admin API)."""
    items, next_cursor = accounts.list_users(
        session, me, role=role, unit_code=None, active=None, q=q or None, limit=50,
        cursor=cursor or None,
    )  # fmt: skip
    more = (
        urlencode({"role": role or "", "q": q or "", "cursor": next_cursor})
        if next_cursor
        else None
    )
    return render(
        request, settings, "users.html", me, items=items, role=role, q=q or "", more=more,
        roles=list(Role),
    )  # fmt: skip


@router.get("/admin/audit")
def audit_page(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    me: Me,
    event: Annotated[AuditEventType | None, Query()] = None,
    user: Annotated[str | None, Query(max_length=100)] = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    """The security audit log (审计日志), newest first (`audit.service.list_events`)."""
    items, next_cursor = audit.list_events(
        session, settings, me, event=event, user=user or None, since=None, until=None,
        limit=100, cursor=cursor or None,
    )  # fmt: skip
    more = (
        urlencode({"event": event or "", "user": user or "", "cursor": next_cursor})
        if next_cursor
        else None
    )
    return render(
        request, settings, "audit.html", me, items=items, event=event, user=user or "",
        more=more, events=list(AuditEventType),
    )  # fmt: skip


#: Event types a webhook may ask for, as `WebhookCreate` knows them.
WEBHOOK_EVENT_TYPES = sorted(f"case.{kind.value}" for kind in CaseEventKind) + list(
    OTHER_EVENT_TYPES
)


def _webhooks_page(
    request: Request,
    session: Any,
    settings: Settings,
    me: Principal,
    *,
    created: Any = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request, settings, "webhooks.html", me, status_code=status_code,
        items=notifications.list_webhooks(session, me), created=created, error=error,
        event_types=WEBHOOK_EVENT_TYPES,
    )  # fmt: skip


@router.get("/admin/webhooks")
def webhooks_page(request: Request, session: SessionDep, settings: SettingsDep, me: Me) -> Response:
    """Webhooks (`notifications.service.list_webhooks`, as the admin API)."""
    return _webhooks_page(request, session, settings, me)


@router.post("/admin/webhooks")
def add_webhook(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    me: Me,
    name: Annotated[str, Form(max_length=100)],
    url: Annotated[str, Form(max_length=2000)],
    event_types: Annotated[list[str] | None, Form(alias="event_type", max_length=60)] = None,
    csrf: CsrfField = None,
) -> Response:
    """Add one (`create_webhook`); its signing secret is shown on the answer, once."""
    check_csrf(request, settings, csrf)
    try:
        body = WebhookCreate(name=name, url=url, event_types=event_types or [])  # type: ignore[arg-type]
        created = notifications.create_webhook(session, settings, me, body)
    except ValidationError as invalid:
        return _webhooks_page(
            request, session, settings, me, status_code=422,
            error="；".join(str(e["msg"]) for e in invalid.errors()),
        )  # fmt: skip
    except Problem as problem:
        if problem.status == 403:
            raise
        return _webhooks_page(
            request, session, settings, me, status_code=problem.status,
            error=problem.detail or problem.title,
        )  # fmt: skip
    return _webhooks_page(request, session, settings, me, created=created)


@router.post("/admin/webhooks/{webhook_id}/remove")
def remove_webhook(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    me: Me,
    webhook_id: DatabaseId,
    csrf: CsrfField = None,
) -> Response:
    """Stop one (`deactivate_webhook`, as `DELETE /api/v1/admin/webhooks/{id}`)."""
    check_csrf(request, settings, csrf)
    notifications.deactivate_webhook(session, me, webhook_id)
    return redirect_back(f"{PREFIX}/admin/webhooks", "done")


#: A routing table upload, at most (the shipped ones are a few tens of kilobytes).
MAX_RULE_SET_BYTES = 2 * 1024 * 1024


def _routing_page(
    request: Request,
    session: Any,
    settings: Settings,
    me: Principal,
    *,
    status_code: int = 200,
    **context: Any,
) -> Response:
    versions = rule_sets.list_rule_sets(session, me)
    return render(
        request, settings, "routing.html", me, status_code=status_code, versions=versions,
        categories=routing_context(session).taxonomy, **context,
    )  # fmt: skip


@router.get("/admin/routing")
def routing_page(request: Request, session: SessionDep, settings: SettingsDep, me: Me) -> Response:
    """The routing table's versions (分拨规则): upload and check a new one, try a point
    against any version, activate one, roll back, all through `routing.rule_sets` and
    `routing.service.dry_run` as the admin API."""
    me.require(Permission.ROUTING_MANAGE)
    return _routing_page(request, session, settings, me)


def _read_document(upload: UploadFile) -> RuleSetDocument:
    """A YAML (or JSON) routing table, as the shipped ones are written."""
    raw = upload.file.read(MAX_RULE_SET_BYTES + 1)
    if len(raw) > MAX_RULE_SET_BYTES:
        raise RuleSetUnreadable(f"文件超过 {MAX_RULE_SET_BYTES // 1024 // 1024} MB")
    try:
        data = yaml.safe_load(raw.decode("utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError) as bad:
        raise RuleSetUnreadable(f"无法读取 YAML/JSON：{bad}") from None
    return RuleSetDocument.model_validate(data)


class RuleSetUnreadable(Problem):
    code = "rule_set_unreadable"
    status = 422
    title = "分拨规则文件无法读取"


@router.post("/admin/routing/upload")
@body_limit(lambda s: MAX_RULE_SET_BYTES + MULTIPART_FRAMING_BYTES)
def upload_routing(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    me: Me,
    document: Annotated[UploadFile, File()],
    mode: Annotated[Literal["validate", "upload", "activate"], Form()] = "validate",
    reason: Annotated[str | None, Form(max_length=500)] = None,
    csrf: CsrfField = None,
) -> Response:
    """Check a table (`validate_rule_set`), or store it as a draft or at once in force
    (`upload_rule_set`): refused whole, its errors listed beside the form."""
    check_csrf(request, settings, csrf)
    me.require(Permission.ROUTING_MANAGE)
    try:
        parsed = _read_document(document)
        if mode == "validate":
            check = rule_sets.validate_rule_set(session, me, parsed)
            return _routing_page(
                request, session, settings, me, status_code=200 if check.valid else 422,
                check=check, checked_name=parsed.name,
            )  # fmt: skip
        stored = rule_sets.upload_rule_set(
            session, me, parsed, activate=mode == "activate", reason=reason or None
        )
    except ValidationError as invalid:
        return _routing_page(
            request, session, settings, me, status_code=422,
            error="文件内容不符合分拨规则格式",
            field_errors=[(".".join(map(str, e["loc"])), str(e["msg"])) for e in invalid.errors()],
        )  # fmt: skip
    except Problem as problem:
        if problem.status in (401, 403):
            raise
        return _routing_page(
            request, session, settings, me, status_code=problem.status,
            error=problem.detail or problem.title,
            field_errors=[(".".join(map(str, e.loc)), e.message) for e in problem.errors or []],
        )  # fmt: skip
    return redirect_back(f"{PREFIX}/admin/routing?stored={stored.version}", "done")


@router.post("/admin/routing/dry-run")
def routing_dry_run(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    me: Me,
    category_code: Annotated[str, Form(max_length=100)],
    lon: Annotated[float, Form()],
    lat: Annotated[float, Form()],
    version: Annotated[int | None, Form()] = None,
    asset_code: Annotated[str | None, Form(max_length=64)] = None,
    csrf: CsrfField = None,
) -> Response:
    """Where would a problem at this point go, under this version (`routing.service.dry_run`,
    nothing stored)."""
    check_csrf(request, settings, csrf)
    me.require(Permission.ROUTING_MANAGE)
    asked = {"category_code": category_code, "lon": lon, "lat": lat, "version": version,
             "asset_code": asset_code or ""}  # fmt: skip
    try:
        body = RouteRequest(
            category_code=category_code, lon=lon, lat=lat, rule_set_version=version,
            asset_code=asset_code or None,
        )  # fmt: skip
        decision = routing.dry_run(session, me, settings, body)
    except ValidationError as invalid:
        return _routing_page(
            request, session, settings, me, status_code=422, asked=asked,
            error="；".join(str(e["msg"]) for e in invalid.errors()),
        )  # fmt: skip
    except Problem as problem:
        if problem.status in (401, 403):
            raise
        return _routing_page(
            request, session, settings, me, status_code=problem.status, asked=asked,
            error=problem.detail or problem.title,
        )  # fmt: skip
    return _routing_page(request, session, settings, me, decision=decision, asked=asked)


@router.post("/admin/routing/{version}/activate")
def activate_routing(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    me: Me,
    version: DatabaseId,
    reason: Annotated[str | None, Form(max_length=500)] = None,
    csrf: CsrfField = None,
) -> Response:
    check_csrf(request, settings, csrf)
    rule_sets.activate_rule_set(session, me, version, reason or None)
    return redirect_back(f"{PREFIX}/admin/routing", "done")


@router.post("/admin/routing/rollback")
def roll_back_routing(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    me: Me,
    reason: Annotated[str | None, Form(max_length=500)] = None,
    csrf: CsrfField = None,
) -> Response:
    check_csrf(request, settings, csrf)
    rule_sets.roll_back_rule_set(session, me, reason or None)
    return redirect_back(f"{PREFIX}/admin/routing", "done")


@router.get("/admin/users/{user_id}/segments")
def chief_segments_page(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    me: Me,
    user_id: DatabaseId,
) -> Response:
    """A road chief's segments (路长责任路段), as `GET /api/v1/admin/users/{id}/segments`."""
    return _segments_page(request, session, settings, me, user_id)


def _segments_page(
    request: Request,
    session: Any,
    settings: Settings,
    me: Principal,
    user_id: int,
    *,
    status_code: int = 200,
    error: str | None = None,
    field_errors: list[str] | None = None,
    conflicts: list[dict[str, str]] | None = None,
    asked: str | None = None,
) -> Response:
    user = accounts.get_user(session, me, user_id)
    segments = accounts.get_chief_segments(session, me, user_id)
    return render(
        request, settings, "chief_segments.html", me, status_code=status_code, user=user,
        segments=segments, error=error, field_errors=field_errors or [],
        conflicts=conflicts or [],
        asked=asked if asked is not None else "\n".join(s.code for s in segments),
    )  # fmt: skip


@router.post("/admin/users/{user_id}/segments")
def set_chief_segments(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    me: Me,
    user_id: DatabaseId,
    segment_codes: Annotated[str, Form(max_length=20000)] = "",
    reassign: Annotated[str | None, Form(max_length=5)] = None,
    csrf: CsrfField = None,
) -> Response:
    """Make these exactly the chief's segments (`set_chief_segments`): one code a line;
    segments another chief of the level holds move only with `reassign`."""
    check_csrf(request, settings, csrf)
    codes = [c.strip() for c in segment_codes.replace(",", "\n").splitlines() if c.strip()]
    try:
        accounts.set_chief_segments(session, me, user_id, codes, reassign=reassign == "true")
    except Problem as problem:
        if problem.status in (401, 403, 404):
            raise
        return _segments_page(
            request, session, settings, me, user_id, status_code=problem.status,
            error=problem.detail or problem.title,
            field_errors=[e.message for e in problem.errors or []],
            conflicts=problem.extra.get("conflicts") or [], asked="\n".join(codes),
        )  # fmt: skip
    return redirect_back(f"{PREFIX}/admin/users/{user_id}/segments", "done")
