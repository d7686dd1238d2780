"""Webhook delivery errors as classes, not the exception's text.

Stored delivery errors were the exception's text ("ConnectError: [Errno 111] Connection
refused"): a map of the network for whoever reads the log. They become the classes
`app.notifications.models.DeliveryError` names; the downgrade leaves them so.

Revision ID: 5b65e2931f9a
Revises: 586f5f891814
Create Date: 2026-12-01 06:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '5b65e2931f9a'
down_revision: str | Sequence[str] | None = '586f5f891814'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CLASSES = ("address_refused", "unreachable", "timed_out", "bad_answer", "http_status",
           "webhook_deactivated")


def upgrade() -> None:
    deliveries = sa.table("webhook_deliveries", sa.column("last_error", sa.String))
    error = deliveries.c.last_error
    for pattern, error_class in (
        ("HTTP %", "http_status"),
        ("webhook deactivated", "webhook_deactivated"),
        ("%Timeout%", "timed_out"),
        ("ConnectError%", "unreachable"),
    ):
        op.execute(deliveries.update().where(error.like(pattern)).values(last_error=error_class))
    op.execute(
        deliveries.update().where(error.isnot(None), error.not_in(CLASSES))
        .values(last_error="bad_answer")
    )


def downgrade() -> None:
    pass  # the texts are gone, and the classes read well enough
