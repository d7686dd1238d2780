"""The audit log of security events (安全审计日志)."""
