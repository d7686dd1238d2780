"""Assessors read from a streaming replica: a real primary and hot standby on loopback.

Every statement is traced to the server that ran it (by the port of the connection that
ran it, and whether that server is in recovery), so "reads went to the standby" and
"writes never did" are observed, not assumed. With replay paused the standby's data is
observably old: an answer from it says how old; past the limit the read goes to the primary.
"""

from __future__ import annotations

import os
import re
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError

from app.access.rules import SYSTEM
from app.core.database import Database, create_replica_engine, utcnow
from app.core.deps import DATA_AS_OF, READ_FROM, REPLICA_LAG, replica_readers
from app.core.schema import run_migrations
from app.demo.loader import load_demo_city
from app.demo.users import DEMO_PASSWORD, create_demo_users
from app.main import create_app
from app.routing.shipped import load_shipped_routing
from app.settings import Settings
from tests.support import Headers
from tests.support.databases import ENGINES, TEST_SECRET_KEY
from tests.support.photos import jpeg
from tests.support.places import on_segment
from tests.support.replica import Pair, primary_and_standby, server_binaries
from tests.support.reports import multipart, report_body

SHANGHAI = ZoneInfo("Asia/Shanghai")
#: The staleness the stories allow: short, so that pausing replay soon exceeds it.
MAX_LAG = 0.5
#: The routes that may read from the replica (README "Read replica" lists them).
REPLICA_ROUTES = {
    "/api/v1/assessment/kpis",
    "/api/v1/assessment/cases",
    "/api/v1/assessment/cases/export.{fmt}",
    "/api/v1/assessment/heatmap",
    "/api/v1/assessment/inspection-scores",
    "/api/v1/assessment/rankings",
    "/api/v1/assessment/district-score",
}
#: Tables the figures come from (who asks is looked up elsewhere: users, tokens).
FIGURES = re.compile(r"\b(cases|case_\w+|inspection\w*|assessment_\w+)\b", re.I)
WRITES = re.compile(r"^\s*(INSERT|UPDATE|DELETE|CREATE|ALTER|DROP|TRUNCATE)\b", re.I)


def test_only_get_routes_read_through_the_replica_session() -> None:
    app = create_app(Settings(database_url="sqlite:///:memory:", secret_key=TEST_SECRET_KEY))
    readers = replica_readers(app)
    assert {r.path for r in readers} == REPLICA_ROUTES
    assert all(r.methods <= {"GET", "HEAD"} for r in readers)
    document = app.openapi()
    for path in REPLICA_ROUTES:
        headers = document["paths"][path]["get"]["responses"]["200"]["headers"]
        assert set(headers) == {READ_FROM, DATA_AS_OF, REPLICA_LAG}


def test_a_read_url_needs_postgresql_on_both_sides() -> None:
    primary, replica = "postgresql+psycopg://u@db1/r", "postgresql+psycopg://u@db2/r"
    assert Settings(database_url=primary, database_read_url=replica).database_read_url == replica
    assert Settings(database_url=primary, database_read_url="").database_read_url is None
    with pytest.raises(ValidationError, match="PostgreSQL too"):
        Settings(database_url="sqlite:///var/x.sqlite3", database_read_url=replica)
    with pytest.raises(ValidationError, match="database_read_url"):
        Settings(database_url=primary, database_read_url="sqlite:///var/copy.sqlite3")


def test_without_a_replica_reads_say_they_come_from_the_primary(
    client: TestClient, as_user: Headers
) -> None:
    """Both engines, as deployed without ROADCHIEF_DATABASE_READ_URL."""
    day = utcnow().astimezone(SHANGHAI).date().isoformat()
    period = {"from": day, "to": day}
    before = utcnow()
    for url, params in (
        ("/api/v1/assessment/kpis", {"by": "street", **period}),
        ("/api/v1/assessment/cases/export.csv", period),
    ):
        answer = client.get(url, params=params, headers=as_user("demo-assessor"))
        assert answer.status_code == 200, answer.text
        assert answer.headers[READ_FROM] == "primary"
        assert answer.headers[REPLICA_LAG] == "0.000"
        as_of = datetime.fromisoformat(answer.headers[DATA_AS_OF])
        assert as_of.utcoffset() == SHANGHAI.utcoffset(as_of.replace(tzinfo=None))
        assert before <= as_of <= utcnow()


# --- a primary and its standby ------------------------------------------------------------


@dataclass
class Trace:
    """Every statement the app's engines send, with the server that received it."""

    in_recovery: dict[int, bool]
    statements: list[tuple[bool, str]] = field(default_factory=list)

    def listen(self, database: Database) -> None:
        for engine in (database.engine, database.replica):
            event.listen(engine, "before_cursor_execute", self._record)

    def _record(self, conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        port = conn.connection.dbapi_connection.info.port
        self.statements.append((self.in_recovery[port], statement))

    def on_standby(self) -> list[str]:
        return [s for standby, s in self.statements if standby]

    def on_primary(self) -> list[str]:
        return [s for standby, s in self.statements if not standby]


@dataclass
class City:
    pair: Pair
    database: Database
    settings: Settings
    trace: Trace
    tmp: Path

    def app(self, max_lag_seconds: float = MAX_LAG) -> FastAPI:
        """The service on the primary and the standby, with this staleness allowed."""
        database = Database(
            self.database.engine, self.database.replica, max_lag_seconds=max_lag_seconds
        )
        return create_app(self.settings, database)


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Iterator[City]:
    if "postgis" not in ENGINES:
        pytest.skip("PostgreSQL is not among ROADCHIEF_TEST_ENGINES")
    binaries = server_binaries()
    if binaries is None:
        if os.environ.get("ROADCHIEF_TEST_PG_BIN"):
            raise RuntimeError("ROADCHIEF_TEST_PG_BIN holds no initdb, pg_ctl, pg_basebackup")
        pytest.skip("no PostgreSQL server binaries (initdb, pg_basebackup) on this machine")
    tmp = tmp_path_factory.mktemp("replica")
    with primary_and_standby(binaries) as pair:
        settings = Settings(
            database_url=pair.primary_url,
            database_read_url=plain_role(pair),
            database_read_max_lag_seconds=MAX_LAG,
            log_format="console",
            media_dir=tmp / "media",
            secret_key=TEST_SECRET_KEY,
            argon2_time_cost=1,
            argon2_memory_kib=1024,
            background_interval_seconds=0,
        )
        database = Database.from_settings(settings)
        run_migrations(database.engine, "head")
        with database.sessions() as session:
            list(load_demo_city(session, settings))
            create_demo_users(session, settings)
            load_shipped_routing(session, SYSTEM)
        ports = {}
        for engine, standby in ((pair.primary, False), (pair.standby, True)):
            with engine.connect() as conn:
                assert conn.execute(text("SELECT pg_is_in_recovery()")).scalar_one() is standby
                ports[engine.url.port] = standby
        trace = Trace(ports)
        trace.listen(database)
        pair.wait_for_replay()
        try:
            yield City(pair, database, settings, trace, tmp)
        finally:
            database.dispose()


def plain_role(pair: Pair) -> str:
    """The standby's URL for a role that is no superuser (as deployed: the staleness check
    must work without privileges), which may read and write all data (so that a refused
    write is refused for being on the standby, not for want of a grant)."""
    with pair.primary.connect() as conn:
        if int(conn.execute(text("SHOW server_version_num")).scalar_one()) < 140_000:
            return pair.standby_url  # pg_read_all_data and pg_write_all_data came in 14
        conn.execute(text("CREATE ROLE roadchief_app LOGIN"))
        conn.execute(text("GRANT pg_read_all_data, pg_write_all_data TO roadchief_app"))
    return pair.standby_url.replace("//postgres@", "//roadchief_app@")


def sign_in(client: TestClient, username: str) -> dict[str, str]:
    form = {"grant_type": "password", "username": username, "password": DEMO_PASSWORD}
    answer = client.post("/api/v1/auth/token", data=form)
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def report(city: City, client: TestClient, category: str) -> str:
    """A chief's report through the API: a new case (of its own category: not a duplicate
    of another story's), written on the primary."""
    with city.database.sessions() as session:
        spot = on_segment(session, chief="demo-chief-3")
    client.headers.update(sign_in(client, "demo-chief-3"))
    body = report_body(spot, category_code=category)
    answer = multipart(client, body, [jpeg(seed=len(city.trace.statements))])
    del client.headers["Authorization"]
    assert answer.status_code == 201, answer.text
    number: str = answer.json()["case_number"]
    return number


def today() -> dict[str, str]:
    """Yesterday to tomorrow: today's cases, even when the story runs over midnight."""
    day = utcnow().astimezone(SHANGHAI).date()
    return {"from": f"{day - timedelta(days=1)}", "to": f"{day + timedelta(days=1)}"}


def found(client: TestClient, headers: dict[str, str]) -> tuple[list[str], Any]:
    """The case numbers an assessor finds today, and the answer's headers."""
    answer = client.get("/api/v1/assessment/cases", params=today(), headers=headers)
    assert answer.status_code == 200, answer.text
    return [row["number"] for row in answer.json()["items"]], answer.headers


def standby_replay(pair: Pair) -> tuple[datetime, float]:
    """The standby's last replayed commit, and how many seconds ago that was by its clock
    (the suite's clock may be travelling; the servers' is not)."""
    query = "SELECT t, EXTRACT(EPOCH FROM now() - t) FROM pg_last_xact_replay_timestamp() AS t"
    with pair.standby.connect() as conn:
        moment, ago = conn.execute(text(query)).one()
        return moment, float(ago)


def test_assessment_reads_go_to_the_standby_and_writes_to_the_primary(city: City) -> None:
    trace = city.trace
    with TestClient(city.app(), raise_server_exceptions=False) as client:
        trace.statements.clear()
        number = report(city, client, "roads.surface")
        assessor = sign_in(client, "demo-assessor")
        writes = [s for s in trace.statements if WRITES.match(s[1])]
        assert writes  # the intake wrote, all of it on the primary
        assert not [s for standby, s in writes if standby]
        assert trace.on_standby() == []  # sign-in and intake read and wrote on the primary

        city.pair.wait_for_replay()
        month = utcnow().astimezone(SHANGHAI)
        for url, params in (
            ("/api/v1/assessment/cases", today()),
            ("/api/v1/assessment/kpis", {"by": "street", **today()}),
            ("/api/v1/assessment/cases/export.csv", today()),
            ("/api/v1/assessment/heatmap", {"level": "segment", **today()}),
            ("/api/v1/assessment/inspection-scores", {"by": "street", **today()}),
            ("/api/v1/assessment/rankings", {"kind": "street", "period": f"{month:%Y-%m}"}),
            ("/api/v1/assessment/district-score", {"period": f"{month:%Y-%m}"}),
        ):
            trace.statements.clear()
            answer = client.get(url, params=params, headers=assessor)
            assert answer.status_code == 200, (url, answer.text)
            assert answer.headers[READ_FROM] == "replica", url
            assert 0 <= float(answer.headers[REPLICA_LAG]) <= MAX_LAG
            as_of = datetime.fromisoformat(answer.headers[DATA_AS_OF])
            assert as_of.utcoffset() == SHANGHAI.utcoffset(as_of.replace(tzinfo=None))
            # The figures were read on the standby; the primary only heard who asks.
            assert [s for s in trace.on_standby() if FIGURES.search(s)], url
            assert not [s for s in trace.on_primary() if FIGURES.search(s)], url
            assert not [s for s in trace.on_standby() if WRITES.match(s)], url
            if url.endswith("export.csv"):
                assert number in answer.text
        assert number in found(client, assessor)[0]


def test_the_standby_refuses_writes_of_a_read_session(city: City) -> None:
    city.pair.wait_for_replay()
    chosen = city.database.replica_session()
    assert chosen is not None
    session, _ = chosen
    with session, pytest.raises(DBAPIError, match="read-only transaction"):
        session.execute(text("UPDATE users SET username = username"))


def test_a_promoted_replica_still_reads_in_read_only_transactions(city: City) -> None:
    """A replica promoted to primary (no longer in recovery) is current, and still only
    read: its transactions begin READ ONLY."""
    promoted = create_replica_engine(city.pair.primary_url, city.settings)
    try:
        chosen = Database(city.database.engine, promoted).replica_session()
        assert chosen is not None
        session, staleness = chosen
        assert (staleness.source, staleness.lag_seconds) == ("replica", 0.0)
        with session, pytest.raises(DBAPIError, match="read-only transaction"):
            session.execute(text("UPDATE users SET username = username"))
    finally:
        promoted.dispose()


def test_a_stale_standby_says_how_stale_and_past_the_limit_the_primary_answers(
    city: City,
) -> None:
    pair = city.pair
    lenient, strict = city.app(max_lag_seconds=3600), city.app()
    with TestClient(lenient) as slow, TestClient(strict) as exact:
        assessor = sign_in(exact, "demo-assessor")
        with pair.standby.connect() as conn:
            conn.execute(text("SELECT pg_wal_replay_pause()"))
        try:
            number = report(city, exact, "clean.illegal_ads")
            pair.wait_for_receipt()  # received, not replayed: the standby is behind
            stale_as_of, _ = standby_replay(pair)

            # Allowed to be an hour behind: the standby answers without the new case, and
            # says its data holds the changes up to its last replayed commit.
            city.trace.statements.clear()
            numbers, headers = found(slow, assessor)
            assert number not in numbers
            assert headers[READ_FROM] == "replica"
            assert datetime.fromisoformat(headers[DATA_AS_OF]) == stale_as_of
            assert 0 < float(headers[REPLICA_LAG]) <= standby_replay(pair)[1]
            assert city.trace.on_standby()

            # Held to MAX_LAG: once the standby is further behind, the primary answers.
            while standby_replay(pair)[1] <= MAX_LAG:
                time.sleep(0.05)  # the lag grows with the clock while replay is paused
            city.trace.statements.clear()
            numbers, headers = found(exact, assessor)
            assert number in numbers
            assert (headers[READ_FROM], headers[REPLICA_LAG]) == ("primary", "0.000")
            asked = city.trace.on_standby()  # how far behind it is, and nothing more
            assert len(asked) == 1
            assert "pg_last_xact_replay_timestamp()" in asked[0]
        finally:
            with pair.standby.connect() as conn:
                conn.execute(text("SELECT pg_wal_replay_resume()"))

        # Caught up again: the standby answers, with the case.
        pair.wait_for_replay()
        numbers, headers = found(exact, assessor)
        assert number in numbers
        assert headers[READ_FROM] == "replica"


def test_a_replica_that_does_not_answer_leaves_the_reads_to_the_primary(city: City) -> None:
    nowhere = _closed_port()
    replica = create_replica_engine(
        f"postgresql+psycopg://postgres@127.0.0.1:{nowhere}/roadchief", city.settings
    )
    database = Database(city.database.engine, replica, max_lag_seconds=3600)
    try:
        with TestClient(create_app(city.settings, database)) as client:
            assessor = sign_in(client, "demo-assessor")
            for _ in range(2):  # the second does not even try: the replica rests a while
                _, headers = found(client, assessor)
                assert headers[READ_FROM] == "primary"
    finally:
        replica.dispose()


def _closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port
