"""`roadchief users ...`: manage accounts from the server's shell (the first admin, too).

The CLI acts as the system itself: no principal, audited with `via: cli`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer
from sqlalchemy.orm import Session

from app.accounts.models import Role
from app.accounts.schemas import UserCreate, UserOut, UserUpdate
from app.core.clitools import run_service

if TYPE_CHECKING:
    from app.settings import Settings

users_cli = typer.Typer(
    help="User accounts (the first admin, roles, scope, segments).", no_args_is_help=True
)

PasswordOption = Annotated[
    str,
    typer.Option(
        prompt=True,
        hide_input=True,
        confirmation_prompt=True,
        envvar="ROADCHIEF_NEW_PASSWORD",
        help="Prompted for when not given (or set ROADCHIEF_NEW_PASSWORD).",
    ),
]
RolesOption = Annotated[list[Role], typer.Option("--role", help="Repeat for several roles.")]
ScopeOption = Annotated[
    list[str] | None, typer.Option("--jurisdiction", help="Scope root code; repeat for several.")
]


def _user_id(session: Session, username: str) -> int:
    from app.accounts.service import user_by_username

    return user_by_username(session, username).id


@users_cli.command("create-admin")
def create_admin(
    username: str,
    password: PasswordOption,
    display_name: Annotated[str, typer.Option(help="Shown in the app.")] = "系统管理员",
) -> None:
    """Create an administrator (how the first admin comes to exist)."""
    from app.accounts.service import create_user

    user = run_service(
        lambda s, st: create_user(
            s,
            st,
            None,
            UserCreate(
                username=username, display_name=display_name, password=password, roles=[Role.ADMIN]
            ),
        )
    )
    typer.echo(f"created admin {user.username} (id {user.id})")


@users_cli.command("create")
def create(
    username: str,
    display_name: Annotated[str, typer.Option(help="Full name.")],
    password: PasswordOption,
    role: RolesOption,
    jurisdiction: ScopeOption = None,
    chief_level: Annotated[
        int | None, typer.Option(min=1, max=3, help="Road chiefs: 1, 2 or 3.")
    ] = None,
    unit: Annotated[str | None, typer.Option(help="Department staff: unit code.")] = None,
    phone: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Create a user with roles and scope."""
    from app.accounts.service import create_user

    data = UserCreate(
        username=username,
        display_name=display_name,
        password=password,
        phone=phone,
        roles=role,
        chief_level=chief_level,
        unit_code=unit,
        jurisdiction_codes=jurisdiction or [],
    )
    user = run_service(lambda s, st: create_user(s, st, None, data))
    typer.echo(f"created {user.username} (id {user.id}): {', '.join(user.roles)}")


def _update(username: str, data: UserUpdate) -> None:
    from app.accounts.service import update_user

    user = run_service(lambda s, st: update_user(s, st, None, _user_id(s, username), data))
    scope = ", ".join(j.code for j in user.jurisdictions) or "all"
    typer.echo(
        f"{user.username}: roles {', '.join(user.roles)}; scope {scope}; "
        f"{'active' if user.is_active else 'disabled'}"
    )


@users_cli.command("disable")
def disable(username: str) -> None:
    """Disable an account: it can no longer sign in and its refresh tokens die."""
    _update(username, UserUpdate(is_active=False))


@users_cli.command("enable")
def enable(username: str) -> None:
    """Enable a disabled account again."""
    _update(username, UserUpdate(is_active=True))


@users_cli.command("set-roles")
def set_roles(
    username: str,
    role: RolesOption,
    chief_level: Annotated[int | None, typer.Option(min=1, max=3)] = None,
    unit: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Replace a user's roles (with the chief level or unit they need)."""
    _update(username, UserUpdate(roles=role, chief_level=chief_level, unit_code=unit))


@users_cli.command("set-scope")
def set_scope(
    username: str, codes: Annotated[list[str], typer.Argument(help="Jurisdiction codes.")]
) -> None:
    """Replace the roots of a user's scope."""
    _update(username, UserUpdate(jurisdiction_codes=codes))


@users_cli.command("reset-password")
def reset_password(username: str, password: PasswordOption) -> None:
    """Set a new password; the user must change it at next sign-in."""
    from app.accounts.service import reset_password as reset

    run_service(lambda s, st: reset(s, st, None, _user_id(s, username), password))
    typer.echo(f"{username}: password reset; every sign-in of this account has ended")


@users_cli.command("link-segments")
def link_segments(
    username: str,
    codes: Annotated[list[str], typer.Argument(help="Road segment codes: the complete list.")],
    reassign: Annotated[bool, typer.Option(help="Take segments from another chief.")] = False,
) -> None:
    """Set the road segments a road chief owns at their level."""
    from app.accounts.service import set_chief_segments

    segments = run_service(
        lambda s, st: set_chief_segments(s, None, _user_id(s, username), codes, reassign=reassign)
    )
    typer.echo(f"{username}: {len(segments)} segments")


@users_cli.command("list")
def list_users() -> None:
    """Every user, one per line."""
    from app.access.rules import SYSTEM
    from app.accounts.service import list_users as list_all

    def page(after: str | None) -> Callable[[Session, Settings], tuple[list[UserOut], str | None]]:
        return lambda session, _: list_all(
            session, SYSTEM, role=None, unit_code=None, active=None, q=None, limit=500, cursor=after
        )

    cursor = None
    while True:
        users, cursor = run_service(page(cursor))
        for u in users:
            scope = ",".join(j.code for j in u.jurisdictions) or "all"
            state = "" if u.is_active else "  (disabled)"
            typer.echo(f"{u.id:>5}  {u.username:<20} {','.join(u.roles):<28} {scope}{state}")
        if cursor is None:
            break
