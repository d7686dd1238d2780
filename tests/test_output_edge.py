"""Output at the edge: moments reach the local zone through `app.core.moments` (response
models' `LocalMoment`, or `to_local` for what is computed in local time), never through a
zone of a module's own; lists page with `app.core.pagination.Keyset`, never by hand."""

from __future__ import annotations

import ast
from pathlib import Path

APP = Path(__file__).resolve().parents[1] / "app"

#: Where converting to a zone is the module's job: the helpers themselves, and the working
#: calendar's arithmetic in its own zone.
ZONE_OWNERS = {"core/moments.py", "calendar/service.py"}
#: Conversions left where another part of issue 17 rewrites the code (how cases are opened:
#: the case number's local date, a routing decision's time). Shrinking is welcome: update.
KNOWN = {"cases/service.py": 1, "routing/service.py": 1}


def _to_utc(call: ast.Call) -> bool:
    """`.astimezone(UTC)` or `.astimezone(ZoneInfo("UTC"))`: storage's zone, not a local one."""
    if len(call.args) != 1:
        return False
    arg = call.args[0]
    if isinstance(arg, ast.Name) and arg.id == "UTC":
        return True
    return (
        isinstance(arg, ast.Call)
        and isinstance(arg.func, ast.Name)
        and arg.func.id == "ZoneInfo"
        and [a.value for a in arg.args if isinstance(a, ast.Constant)] == ["UTC"]
    )


def _local_conversions() -> dict[str, int]:
    found: dict[str, int] = {}
    for path in sorted(APP.rglob("*.py")):
        name = path.relative_to(APP).as_posix()
        if name in ZONE_OWNERS:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "astimezone"
                and not _to_utc(node)
            ):
                found[name] = found.get(name, 0) + 1
    return found


def test_moments_reach_the_local_zone_through_moments_only() -> None:
    found = _local_conversions()
    grown = {n: c for n, c in found.items() if c > KNOWN.get(n, 0)}
    assert not grown, f"use LocalMoment in the response model, or moments.to_local: {grown}"


def test_lists_page_with_the_one_keyset() -> None:
    """The tell-tale of a hand-written pager: fetching one row more than the page."""
    hand_rolled = [
        path.relative_to(APP).as_posix()
        for path in sorted(APP.rglob("*.py"))
        if path.relative_to(APP).as_posix() != "core/pagination.py"
        and "limit + 1" in path.read_text(encoding="utf-8")
    ]
    assert not hand_rolled, f"page with app.core.pagination.Keyset: {hand_rolled}"
