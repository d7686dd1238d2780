"""Writing notifications for a case event, reading and marking a user's inbox, webhooks.

A step's notifications and its outbox message are written in the step's own transaction:
what committed was announced, and nothing is announced that did not commit.
"""

from __future__ import annotations

import base64
import secrets
import uuid
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from sqlalchemy import String, and_, bindparam, exists, func, or_, select, update
from sqlalchemy.orm import Session

from app.access.rules import Permission, Principal, SignedIn
from app.accounts.models import Role, SegmentChief, User, UserJurisdiction, UserRole
from app.accounts.service import load_user, principal_for_user
from app.audit.models import AuditEventType
from app.audit.service import record
from app.cases.models import (
    ACTIVE_TASK_STATUSES,
    Case,
    CaseEvent,
    CaseTask,
    TaskStatus,
)
from app.cases.relations import may_verify
from app.core.database import rows_changed, utcnow
from app.core.errors import NotFound
from app.core.moments import local_isoformat
from app.core.pagination import Keyset
from app.notifications.audiences import AUDIENCES, NEXT_STEP, Audience
from app.notifications.egress import check_webhook_url
from app.notifications.models import (
    DeliveryError,
    DeliveryStatus,
    Notification,
    OutboxMessage,
    Webhook,
    WebhookDelivery,
)
from app.notifications.schemas import (
    DeliveryOut,
    NotificationOut,
    WebhookCreate,
    WebhookCreated,
    WebhookOut,
)
from app.territory.models import Jurisdiction, RoadSegment

if TYPE_CHECKING:
    from app.settings import Settings

#: Inbox messages and webhook deliveries, newest first.
NEWEST_MESSAGE_FIRST = Keyset(Notification.id, descending=True)
NEWEST_DELIVERY_FIRST = Keyset(WebhookDelivery.id, descending=True)


def active_users_with_role(role: Role) -> Any:
    """SQL: the ids of active users holding `role`."""
    return select(User.id).where(
        User.is_active.is_(True),
        exists().where(UserRole.user_id == User.id, UserRole.role == role),
    )


def _segment_chiefs(level: Any) -> Any:
    """SQL: the road chiefs of `level` on the case's segment (`:segment_code`); None: of
    its first level, the lowest rank present: the one who walks it."""
    on_segment = and_(
        SegmentChief.segment_id == RoadSegment.id, RoadSegment.code == bindparam("segment_code")
    )
    if level is None:
        level = (
            select(func.max(SegmentChief.level)).where(on_segment).correlate(None).scalar_subquery()
        )
    return select(SegmentChief.user_id).where(on_segment, SegmentChief.level == level)


def _staff_of_tasks(statuses: Collection[TaskStatus]) -> Any:
    """SQL: the active staff of the units whose task on the case is in `statuses`."""
    units = select(CaseTask.unit_id).where(
        CaseTask.case_id == bindparam("case_id"), CaseTask.status.in_(sorted(statuses))
    )
    return active_users_with_role(Role.DEPARTMENT_STAFF).where(User.unit_id.in_(units))


#: Each audience's users, built once and asked with the case's values (`_audience_values`):
#: every event asks one or two of them.
_AUDIENCE_QUERIES: dict[Audience, Any] = {
    # Scope roots holding the case's place: the jurisdiction path starts with the root's.
    Audience.DISPATCHERS: active_users_with_role(Role.DISPATCHER).where(
        exists().where(
            UserJurisdiction.user_id == User.id,
            UserJurisdiction.jurisdiction_id == Jurisdiction.id,
            bindparam("path", type_=String()).startswith(Jurisdiction.path),
        )
    ),
    Audience.TASK_UNITS: _staff_of_tasks(ACTIVE_TASK_STATUSES),
    Audience.RELEASED_UNITS: _staff_of_tasks({TaskStatus.RELEASED}),
    Audience.ACTED_UNIT: active_users_with_role(Role.DEPARTMENT_STAFF).where(
        User.unit_id == bindparam("unit_id")
    ),
    Audience.REPORTER: select(User.id).where(User.id == bindparam("reporter_id")),
    Audience.VERIFIERS: select(User.id).where(
        or_(User.id == bindparam("reporter_id"), User.id.in_(_segment_chiefs(None)))
    ),
    Audience.ESCALATION: _segment_chiefs(bindparam("level")),
}


def _audience_values(case: Case, event: CaseEvent) -> dict[str, Any]:
    return {
        "case_id": case.id,
        "path": case.jurisdiction_path,
        "unit_id": event.detail.get("unit_id"),
        "reporter_id": case.reporter_user_id,
        "segment_code": case.segment_code,
        "level": event.detail.get("chief_level", 0),
    }


def messages(session: Session, case: Case, event: CaseEvent) -> dict[int, str]:
    """Who hears of the event (never its actor), each with what they must now do: the
    first of the event's audiences (`AUDIENCES`) that holds them decides their message."""
    told: dict[int, str] = {}
    values: dict[str, Any] | None = None
    for audience, title in AUDIENCES[event.kind]:
        if audience is Audience.NEXT_IF_MOVED:
            if event.to_status is None or event.to_status not in NEXT_STEP:
                continue
            audience, title = NEXT_STEP[event.to_status]
        assert title is not None  # only NEXT_IF_MOVED takes NEXT_STEP's message
        values = values or _audience_values(case, event)
        found = set(session.scalars(_AUDIENCE_QUERIES[audience], values))
        if audience is Audience.VERIFIERS:  # asked only if they may: `may_verify`
            found = {u for u in found if _may_verify(session, u, case)}
        for user_id in sorted(found - told.keys()):
            told[user_id] = title.format(number=case.number)
    told.pop(event.actor_user_id, None)  # type: ignore[arg-type]
    return told


def _may_verify(session: Session, user_id: int, case: Case) -> bool:
    user = load_user(session, user_id)
    return user is not None and may_verify(session, principal_for_user(user), case)


def event_payload(case: Case, event: CaseEvent) -> dict[str, Any]:
    """What a webhook receives about a case event (times in the deployment's zone)."""
    return {
        "case": {
            "number": case.number,
            "status": case.status.value,
            "version": case.version,
            "category_code": case.category_code,
            "urgency": case.urgency.value,
            "street_code": case.street_code,
            "segment_code": case.segment_code,
        },
        "event": {
            "id": event.id,
            "kind": event.kind.value,
            "occurred_at": local_isoformat(event.occurred_at),
            "actor_user_id": event.actor_user_id,
            "actor_role": event.actor_role,
            "from_status": event.from_status.value if event.from_status else None,
            "to_status": event.to_status.value if event.to_status else None,
            "note": event.note,
            "detail": event.detail,
        },
    }


def notify_case_event(session: Session, settings: Settings, case: Case, event: CaseEvent) -> None:
    """Inbox messages for the people concerned, and the event for every webhook that
    wants it; added to the session (the caller commits with the step)."""
    if event.id is None:
        session.flush()
    for user_id, title in sorted(messages(session, case, event).items()):
        session.add(
            Notification(
                user_id=user_id,
                created_at=event.occurred_at,
                kind=event.kind.value,
                case_id=case.id,
                case_number=case.number,
                event_id=event.id,
                title=title,
                body=event.note,
            )
        )
    enqueue(session, f"case.{event.kind.value}", event_payload(case, event))


#: The active webhooks and what each wants, as rows: asked at every event, usually of none.
_ACTIVE_HOOKS = select(Webhook.id, Webhook.event_types).where(Webhook.active.is_(True))


def enqueue(session: Session, event_type: str, data: dict[str, Any]) -> None:
    """Put a message in the outbox for every active webhook that wants its type."""
    hook_ids = [
        h.id
        for h in session.execute(_ACTIVE_HOOKS)
        if not h.event_types or event_type in h.event_types
    ]
    if not hook_ids:
        return
    now = utcnow()
    message = OutboxMessage(
        message_id=f"msg_{uuid.uuid4().hex}",
        event_type=event_type,
        payload={"type": event_type, "timestamp": local_isoformat(now), "data": data},
        created_at=now,
    )
    session.add(message)
    session.flush()
    for hook_id in hook_ids:
        session.add(
            WebhookDelivery(
                webhook_id=hook_id,
                message_id=message.id,
                status=DeliveryStatus.PENDING,
                attempts=0,
                next_attempt_at=now,
            )
        )


# --- the inbox ---------------------------------------------------------------------------


def inbox(
    session: Session,
    settings: Settings,
    principal: SignedIn,
    *,
    unread: bool | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[NotificationOut], str | None, int]:
    """The caller's messages, newest first, and how many are unread."""
    user_id = principal.user_id
    query = select(Notification).where(Notification.user_id == user_id)
    if unread is not None:
        query = query.where(
            Notification.read_at.is_(None) if unread else Notification.read_at.isnot(None)
        )
    rows, next_cursor = NEWEST_MESSAGE_FIRST.scalars(session, query, limit=limit, cursor=cursor)
    unread_count = session.scalar(
        select(func.count()).where(Notification.user_id == user_id, Notification.read_at.is_(None))
    )
    items = [NotificationOut.model_validate(n) for n in rows]
    return items, next_cursor, unread_count or 0


def mark_read(session: Session, principal: SignedIn, notification_id: int | None) -> int:
    """Mark one message (or, with None, all) of the caller's as read; how many changed."""
    user_id = principal.user_id
    query = update(Notification).where(
        Notification.user_id == user_id, Notification.read_at.is_(None)
    )
    if notification_id is not None:
        if (
            session.scalar(
                select(Notification.id).where(
                    Notification.id == notification_id, Notification.user_id == user_id
                )
            )
            is None
        ):
            raise NotFound("消息不存在")
        query = query.where(Notification.id == notification_id)
    changed = rows_changed(session.execute(query.values(read_at=utcnow())))
    session.commit()
    return int(changed or 0)


# --- webhooks (admin) --------------------------------------------------------------------


def _webhook_out(hook: Webhook) -> WebhookOut:
    return WebhookOut.model_validate(hook)


def create_webhook(
    session: Session, settings: Settings, principal: Principal, body: WebhookCreate
) -> WebhookCreated:
    """Add a webhook; 422 when its URL leads inside (delivery checks again each time)."""
    principal.require(Permission.WEBHOOKS_MANAGE)
    check_webhook_url(str(body.url), settings.webhook_allowed_networks)
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    hook = Webhook(
        name=body.name,
        url=str(body.url),
        secret=secret,
        event_types=sorted(set(body.event_types)),
        active=True,
        created_by_user_id=principal.user_id,
    )
    session.add(hook)
    session.flush()
    record(session, AuditEventType.WEBHOOK_CREATED, actor=principal, webhook_id=hook.id,
           url=hook.url)  # fmt: skip
    session.commit()
    return WebhookCreated(**_webhook_out(hook).model_dump(), secret=secret)


def list_webhooks(session: Session, principal: Principal) -> list[WebhookOut]:
    principal.require(Permission.WEBHOOKS_MANAGE)
    return [_webhook_out(h) for h in session.scalars(select(Webhook).order_by(Webhook.id))]


def _webhook(session: Session, webhook_id: int) -> Webhook:
    hook = session.get(Webhook, webhook_id)
    if hook is None:
        raise NotFound("Webhook 不存在")
    return hook


def deactivate_webhook(session: Session, principal: Principal, webhook_id: int) -> None:
    """Stop sending to it; what is queued for it is dropped (kept as failed, for the log)."""
    principal.require(Permission.WEBHOOKS_MANAGE)
    hook = _webhook(session, webhook_id)
    hook.active = False
    session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.webhook_id == hook.id,
            WebhookDelivery.status == DeliveryStatus.PENDING,
        )
        .values(status=DeliveryStatus.FAILED, last_error=DeliveryError.WEBHOOK_DEACTIVATED)
    )
    record(session, AuditEventType.WEBHOOK_DEACTIVATED, actor=principal, webhook_id=hook.id)
    session.commit()


def list_deliveries(
    session: Session,
    settings: Settings,
    principal: Principal,
    webhook_id: int,
    *,
    status: DeliveryStatus | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[DeliveryOut], str | None]:
    """A webhook's deliveries, newest first: what was sent, how often, what came back."""
    principal.require(Permission.WEBHOOKS_MANAGE)
    _webhook(session, webhook_id)
    query = (
        select(WebhookDelivery, OutboxMessage)
        .join(OutboxMessage, WebhookDelivery.message_id == OutboxMessage.id)
        .where(WebhookDelivery.webhook_id == webhook_id)
    )
    if status is not None:
        query = query.where(WebhookDelivery.status == status)
    rows, next_cursor = NEWEST_DELIVERY_FIRST.rows(session, query, limit=limit, cursor=cursor)
    items = [
        DeliveryOut(
            id=d.id,
            message_id=m.message_id,
            event_type=m.event_type,
            status=d.status,
            attempts=d.attempts,
            next_attempt_at=d.next_attempt_at if d.status is DeliveryStatus.PENDING else None,
            last_attempt_at=d.last_attempt_at,
            last_status_code=d.last_status_code,
            last_error=DeliveryError(d.last_error) if d.last_error else None,
            delivered_at=d.delivered_at,
        )
        for d, m in rows
    ]
    return items, next_cursor
