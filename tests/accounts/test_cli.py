"""The first admin comes from the server's shell; then the API takes over."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from typer.testing import CliRunner

from app.accounts.models import Role, User
from app.accounts.signin import login
from app.audit.models import AuditEvent, AuditEventType
from app.cli import cli
from app.settings import get_settings


def test_first_admin_is_created_by_the_cli_and_can_sign_in(empty_database: Any) -> None:
    runner = CliRunner()
    weak = runner.invoke(
        cli, ["users", "create-admin", "root"], env={"ROADCHIEF_NEW_PASSWORD": "root"}
    )
    assert weak.exit_code == 1
    assert "weak_password" in weak.output

    made = runner.invoke(
        cli, ["users", "create-admin", "root"], input="City#Admin2026\nCity#Admin2026\n"
    )
    assert made.exit_code == 0, made.output
    assert "created admin root" in made.output

    with empty_database.sessions() as session:
        [user] = session.scalars(select(User)).all()
        assert (user.username, user.roles) == ("root", [Role.ADMIN])
        pair = login(session, get_settings(), "root", "City#Admin2026", "127.0.0.1")
        assert pair.access_token
        created = session.scalar(
            select(AuditEvent).where(AuditEvent.event == AuditEventType.USER_CREATED)
        )
        assert created is not None
        assert created.detail["via"] == "cli"

    again = runner.invoke(
        cli, ["users", "create-admin", "root"], env={"ROADCHIEF_NEW_PASSWORD": "City#Admin2026"}
    )
    assert again.exit_code == 1
    assert "username_taken" in again.output

    listed = runner.invoke(cli, ["users", "list"])
    assert "root" in listed.output
    assert runner.invoke(cli, ["users", "disable", "root"]).exit_code == 0
    with empty_database.sessions() as session:
        assert session.scalar(select(User.is_active)) is False
