"""Audit events: who did what to whose access, and when. The table and its event types are
the core's (`app.core.audit`, written by every domain); this package reads them."""

from __future__ import annotations

from app.core.audit import AuditEvent as AuditEvent
from app.core.audit import AuditEventType as AuditEventType
