"""Accounts and access: users, roles, scopes, sign-in, API keys (账号与权限)."""
