"""One runner at a time for a whole background job, across every server of a deployment.

Most jobs claim their rows one by one (a conditional UPDATE, or `FOR UPDATE SKIP LOCKED`),
so servers share the work and none is done twice. A job that reads much before it writes
(closing an assessment period, measuring patrols again) would still be computed by every
server before one of them wins the write; `job_lock` lets one server run it while the
others skip this round. On PostgreSQL it is a transaction-level advisory lock
(`pg_try_advisory_xact_lock`) held on a connection of its own for the job's length: when
the job ends, or its process dies and the connection drops, the lock goes with it, so a
killed server never leaves a job locked. On SQLite there is one database file and one
writer at a time, and the rows' own claims keep the work single: the lock is always
granted.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, func, select


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for the job's name (the advisory lock's argument)."""
    return int.from_bytes(
        hashlib.sha256(f"roadchief:{name}".encode()).digest()[:8], "big", signed=True
    )


@contextmanager
def job_lock(engine: Engine, name: str) -> Iterator[bool]:
    """True if this process may run the job `name` now; False if another server is."""
    if engine.dialect.name != "postgresql":
        yield True
        return
    with engine.connect() as conn, conn.begin() as transaction:
        got = bool(conn.scalar(select(func.pg_try_advisory_xact_lock(lock_key(name)))))
        try:
            yield got
        finally:
            transaction.rollback()  # ends the transaction: the lock is released
