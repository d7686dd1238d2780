"""The inbox (站内消息) of the signed-in user, and the admins' webhooks."""

from __future__ import annotations

from fastapi import Response, status

from app.access.deps import PrincipalDep, SignedInDep
from app.core.deps import SessionDep, SettingsDep
from app.core.errors import NotFound, problem_responses
from app.core.inputs import DatabaseId
from app.core.pagination import DEFAULT_PAGE_SIZE, Cursor, Page, PageSize
from app.core.routes import api_router
from app.notifications import service
from app.notifications.egress import WebhookAddressRefused
from app.notifications.models import DeliveryStatus
from app.notifications.schemas import (
    DeliveryOut,
    InboxPage,
    MarkedRead,
    WebhookCreate,
    WebhookCreated,
    WebhookOut,
)

router = api_router(prefix="/api/v1/inbox", tags=["inbox"])
admin_router = api_router(prefix="/api/v1/admin/webhooks", tags=["admin: webhooks"])


@router.get(
    "",
    summary="My messages, newest first: what I must act on, and what I should know",
    response_model=InboxPage,
    responses=problem_responses(),
)
def read_inbox(
    session: SessionDep,
    settings: SettingsDep,
    principal: SignedInDep,
    unread: bool | None = None,
    limit: PageSize = DEFAULT_PAGE_SIZE,
    cursor: Cursor = None,
) -> InboxPage:
    items, next_cursor, unread_count = service.inbox(
        session, settings, principal, unread=unread, limit=limit, cursor=cursor
    )
    return InboxPage(items=items, next_cursor=next_cursor, unread_count=unread_count)


@router.post(
    "/{notification_id}/read",
    summary="Mark one message as read",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(NotFound),
)
def mark_one_read(
    session: SessionDep, principal: SignedInDep, notification_id: DatabaseId
) -> Response:
    service.mark_read(session, principal, notification_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/read-all",
    summary="Mark all my messages as read",
    response_model=MarkedRead,
    responses=problem_responses(),
)
def mark_all_read(session: SessionDep, principal: SignedInDep) -> MarkedRead:
    return MarkedRead(marked=service.mark_read(session, principal, None))


@admin_router.post(
    "",
    summary="Add a webhook: case events are POSTed to it, signed (Standard Webhooks)",
    status_code=status.HTTP_201_CREATED,
    response_model=WebhookCreated,
    responses=problem_responses(WebhookAddressRefused),
)
def create_webhook(
    session: SessionDep, settings: SettingsDep, principal: PrincipalDep, body: WebhookCreate
) -> WebhookCreated:
    """The URL must lead to a public address (or one `ROADCHIEF_WEBHOOK_ALLOWED_NETWORKS`
    names): `422 webhook_address_refused` otherwise, checked again at each delivery."""
    return service.create_webhook(session, settings, principal, body)


@admin_router.get(
    "",
    summary="The webhooks",
    response_model=list[WebhookOut],
    responses=problem_responses(),
)
def list_webhooks(session: SessionDep, principal: PrincipalDep) -> list[WebhookOut]:
    return service.list_webhooks(session, principal)


@admin_router.delete(
    "/{webhook_id}",
    summary="Stop a webhook (its deliveries stay readable)",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(NotFound),
)
def deactivate_webhook(
    session: SessionDep, principal: PrincipalDep, webhook_id: DatabaseId
) -> Response:
    service.deactivate_webhook(session, principal, webhook_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@admin_router.get(
    "/{webhook_id}/deliveries",
    summary="A webhook's deliveries, newest first, with attempts and answers",
    response_model=Page[DeliveryOut],
    responses=problem_responses(NotFound),
)
def list_deliveries(
    session: SessionDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    webhook_id: DatabaseId,
    status: DeliveryStatus | None = None,
    limit: PageSize = DEFAULT_PAGE_SIZE,
    cursor: Cursor = None,
) -> Page[DeliveryOut]:
    items, next_cursor = service.list_deliveries(
        session, settings, principal, webhook_id, status=status, limit=limit, cursor=cursor
    )
    return Page(items=items, next_cursor=next_cursor)
