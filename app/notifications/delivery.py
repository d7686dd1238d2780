"""Delivering the outbox to webhooks: signed, retried with growing pauses, never lost.

Each message is signed as Standard Webhooks specify (`webhook-id`, `webhook-timestamp`,
`webhook-signature`: HMAC-SHA256 with the webhook's secret), so receivers can verify it
with any Standard Webhooks library and deduplicate on `webhook-id`. A 2xx answer delivers
it; anything else (or no answer) tries again after the next pause in `RETRY_PAUSES`, up to
`webhook_max_attempts`, then gives up (status `failed`, visible to admins).

A delivery is claimed before sending (its next attempt moved past the send's timeout), so
two workers never send it at once, and a worker that dies mid-send leaves it to be retried.
Deliveries go only to allowed addresses and each attempt is capped in time
(`app.notifications.egress`); what went wrong is kept as a class (`DeliveryError`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import httpx
from sqlalchemy import select, update
from sqlalchemy.orm import Session
from standardwebhooks.webhooks import Webhook as Signer

from app.core.database import rows_changed, utcnow
from app.core.metrics import WEBHOOK_ATTEMPTS, WEBHOOK_GIVEN_UP
from app.notifications.egress import AddressRefused, guarded_client
from app.notifications.models import (
    DeliveryError,
    DeliveryStatus,
    OutboxMessage,
    Webhook,
    WebhookDelivery,
)

if TYPE_CHECKING:
    from app.settings import Settings

#: Pause before attempt n+1 after n failed ones (the last repeats).
RETRY_PAUSES = tuple(
    timedelta(seconds=s) for s in (30, 120, 600, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600)
)


@dataclass
class DeliveryRun:
    delivered: int = 0
    retrying: int = 0
    failed: int = 0


def _pause(attempts: int) -> timedelta:
    return RETRY_PAUSES[min(attempts, len(RETRY_PAUSES)) - 1]


def signed_request(
    hook: Webhook, message: OutboxMessage, now: datetime
) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(message.payload, ensure_ascii=False, separators=(",", ":"))
    signature = Signer(hook.secret).sign(message.message_id, now, body)
    headers = {
        "content-type": "application/json",
        "user-agent": "roadchief-webhooks/1",
        "webhook-id": message.message_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
    }
    return body.encode(), headers


def attempt(
    client: httpx.Client, url: str, body: bytes, headers: dict[str, str]
) -> tuple[int | None, DeliveryError | None]:
    """Send once: the answer's status code, and why it failed if it did. Only the status
    line and headers are read: a receiver's body, however large, stays where it is."""
    try:
        with client.stream("POST", url, content=body, headers=headers) as answer:
            status_code = answer.status_code
    except httpx.TimeoutException:
        return None, DeliveryError.TIMED_OUT
    except httpx.ConnectError as exc:
        if isinstance(exc.__cause__, AddressRefused):
            return None, DeliveryError.ADDRESS_REFUSED
        return None, DeliveryError.UNREACHABLE
    except (httpx.HTTPError, httpx.InvalidURL):
        return None, DeliveryError.BAD_ANSWER
    return status_code, None if 200 <= status_code < 300 else DeliveryError.HTTP_STATUS


def webhook_client(settings: Settings) -> httpx.Client:
    """The client deliveries go through: allowed addresses only, each attempt capped."""
    return guarded_client(settings.webhook_allowed_networks, settings.webhook_timeout_seconds)


def deliver_due(
    session: Session,
    settings: Settings,
    client: httpx.Client,
    *,
    limit: int = 200,
    now: datetime | None = None,
) -> DeliveryRun:
    """Send every delivery whose moment has come (at most `limit`); report how it went.

    No transaction stays open while a receiver is waited for: the claim and the outcome
    are each a short write of their own.
    """
    now = now or utcnow()
    run = DeliveryRun()
    due = session.execute(
        select(WebhookDelivery.id, WebhookDelivery.next_attempt_at)
        .where(
            WebhookDelivery.status == DeliveryStatus.PENDING,
            WebhookDelivery.next_attempt_at <= now,
        )
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
        .limit(limit)
    ).all()
    session.rollback()
    lease = timedelta(seconds=settings.webhook_timeout_seconds * 2 + 30)
    for delivery_id, seen in due:
        claimed = rows_changed(
            session.execute(
                update(WebhookDelivery)
                .where(
                    WebhookDelivery.id == delivery_id,
                    WebhookDelivery.status == DeliveryStatus.PENDING,
                    WebhookDelivery.next_attempt_at == seen,
                )
                # The lease runs from this claim (a long run must not hand out stale leases).
                .values(next_attempt_at=utcnow() + lease)
            )
        )
        if claimed != 1:
            session.rollback()
            continue  # another worker has it
        delivery = session.get(WebhookDelivery, delivery_id)
        assert delivery is not None
        hook = session.get(Webhook, delivery.webhook_id)
        message = session.get(OutboxMessage, delivery.message_id)
        assert hook is not None
        assert message is not None
        url = hook.url
        body, headers = signed_request(hook, message, utcnow())
        session.commit()
        status_code, error = attempt(client, url, body, headers)
        WEBHOOK_ATTEMPTS.labels(error.value if error else "delivered").inc()
        finished = utcnow()
        delivery.attempts += 1
        delivery.last_attempt_at, delivery.last_status_code = finished, status_code
        delivery.last_error = error
        if error is None:
            delivery.status, delivery.delivered_at = DeliveryStatus.DELIVERED, finished
            run.delivered += 1
        elif delivery.attempts >= settings.webhook_max_attempts:
            delivery.status = DeliveryStatus.FAILED
            WEBHOOK_GIVEN_UP.inc()
            run.failed += 1
        else:
            delivery.next_attempt_at = finished + _pause(delivery.attempts)
            run.retrying += 1
        session.commit()
    return run
