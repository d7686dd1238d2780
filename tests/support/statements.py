"""Counting the SQL statements a request sends (like Django's `assertNumQueries`).

The budget is what production pays: the test's savepoints (the test session's commits and
rollbacks) and SQLite's `BEGIN` are transaction control, not work, and are left out.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, event

_CONTROL = re.compile(r"\s*(SAVEPOINT|RELEASE SAVEPOINT|ROLLBACK TO SAVEPOINT|BEGIN)\b", re.I)


class Statements:
    """The statements sent on one engine while `counting()` is open."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sent: list[str] = []
        self._on = False
        event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if self._on and not _CONTROL.match(statement):
            self.sent.append(statement)

    def close(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._seen)

    @contextmanager
    def counting(self) -> Iterator[list[str]]:
        """`with statements.counting() as sent: ...`; `sent` holds their text."""
        self.sent = []
        self._on = True
        try:
            yield self.sent
        finally:
            self._on = False

    @contextmanager
    def exactly(self, budget: int) -> Iterator[list[str]]:
        """Fails unless the block sends exactly `budget` statements (fewer too: then lower
        the budget, so the gain is kept)."""
        with self.counting() as sent:
            yield sent
        assert len(sent) == budget, described(sent, budget)


def described(sent: list[str], budget: int) -> str:
    lines = [f"{len(sent)} statements sent, budget {budget}:"]
    lines += [f"  {i}. {' '.join(s.split())[:160]}" for i, s in enumerate(sent, 1)]
    return "\n".join(lines)
