"""Notifications: an in-app inbox per user, and signed webhooks fed by an outbox."""
