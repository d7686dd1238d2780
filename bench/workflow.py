"""Benchmark: the closed loop at a city's scale — one million cases on PostGIS.

    ./scripts/bench workflow [--cases 1000000] [--transitions 3000] [--clients 8] [--workers 2]

Generates, in SQL, a year of cases on the demo city (a fresh database each run): 75 %
closed, 5 % awaiting registration, 5 % awaiting dispatch, 15 % being handled; one lead
task per dispatched or closed case (urban management leads 30 % of them), a cooperating
task on a third; two history events per case. Open tasks' deadlines spread from ten days
ago to twenty days ahead, already swept up to a minute ago. Then measures:

1. a department's queue (`queues.unit_tasks`: open tasks by deadline, 50 per page, with
   their remaining working hours) for urban management: first page, next page, overdue
   only, one street only; in-process, and over HTTP;
2. the overdue sweep (`cases.sweep.sweep`): steady state (one minute's alarms), a second
   run (nothing to do), and catching up after the service was down for an hour;
3. sustained transitions over HTTP: register, dispatch and sign-for on distinct cases from
   `--clients` concurrent keep-alive connections (`bench.wire`, one asyncio loop) against
   `roadchief serve --workers N`.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import shutil
import time
from collections.abc import Callable
from datetime import timedelta

import httpx
import psutil
from sqlalchemy import select, text

from app.access.rules import Principal
from app.accounts.models import Role
from app.cases.queues import unit_tasks
from app.cases.sweep import sweep
from app.core.database import Database, utcnow
from app.settings import Settings
from app.territory.models import Jurisdiction, JurisdictionLevel, Unit
from bench.common import OUT, stats, timed
from bench.intake import fresh_database, prepare, server, token
from bench.wire import Connection, encode

GENERATE = """
WITH streets AS (
    SELECT array_agg(path ORDER BY id) AS paths, array_agg(code ORDER BY id) AS codes
    FROM jurisdictions WHERE level = 'street'
), cats AS (
    SELECT array_agg(code ORDER BY code) AS codes FROM categories
    WHERE NOT EXISTS (SELECT 1 FROM categories c2 WHERE c2.parent_id = categories.id)
)
INSERT INTO cases (id, number, status, source, category_code, urgency, description,
    reported_at, geom, jurisdiction_path, street_code, handle_due_at, fixed_on_spot,
    report_count, rework_count, urge_count, reopen_count, closed_at, version,
    created_at, updated_at)
SELECT g, 'B' || lpad(g::text, 9, '0'),
    CASE WHEN g % 20 = 0 THEN 'pending_registration' WHEN g % 20 = 1 THEN 'registered'
         WHEN g % 20 = 2 THEN 'dispatched' WHEN g % 20 IN (3, 4) THEN 'in_progress'
         ELSE 'closed' END,
    'report', cats.codes[1 + g % array_length(cats.codes, 1)], 'normal', '基准测试案件',
    now() - (g % 365) * interval '1 day' - (g % 997) * interval '1 minute',
    ST_SetSRID(ST_MakePoint(113.60 + (g % 1009) * 0.00005, 34.78 + (g % 1013) * 0.00005), 4326),
    streets.paths[1 + g % array_length(streets.paths, 1)],
    streets.codes[1 + g % array_length(streets.codes, 1)],
    NULL, false, 1, 0, 0, 0,
    CASE WHEN g % 20 >= 5 THEN now() - (g % 365) * interval '1 day' + interval '2 days' END,
    1, now(), now()
FROM generate_series(1, :n) AS g, streets, cats;

INSERT INTO case_tasks (case_id, unit_id, is_lead, status, assigned_at, sign_for_due_at,
    handle_due_at, handle_warn_at, escalation_level, extension_count, returns_refused)
SELECT c.id,
    CASE WHEN c.id % 10 < 3 THEN :lead ELSE units.ids[1 + c.id % array_length(units.ids, 1)] END,
    true,
    CASE c.status WHEN 'dispatched' THEN 'pending' WHEN 'in_progress' THEN 'signed'
                  ELSE 'done' END,
    now() - interval '3 days',
    now() - interval '3 days' + interval '2 hours',
    CASE WHEN c.status = 'closed' THEN c.reported_at + interval '2 days'
         ELSE now() + ((c.id % 43200) - 14400) * interval '1 minute' END,
    NULL, 0, 0, 0
FROM cases c, (SELECT array_agg(id ORDER BY id) AS ids FROM units
               WHERE kind <> 'command_centre') AS units
WHERE c.status IN ('dispatched', 'in_progress', 'closed');

INSERT INTO case_tasks (case_id, unit_id, is_lead, status, assigned_at, sign_for_due_at,
    handle_due_at, handle_warn_at, escalation_level, extension_count, returns_refused)
SELECT t.case_id, CASE WHEN t.unit_id = :other THEN :lead ELSE :other END, false,
    t.status, t.assigned_at, t.sign_for_due_at, t.handle_due_at, NULL, 0, 0, 0
FROM case_tasks t WHERE t.case_id % 3 = 0;

-- Warning point at 80 % of the term; everything due more than a minute ago was swept.
UPDATE case_tasks SET handle_warn_at = assigned_at + (handle_due_at - assigned_at) * 0.8;
UPDATE case_tasks SET
    sign_for_overdue_at = CASE WHEN status = 'pending' THEN sign_for_due_at END,
    warned_at = CASE WHEN handle_warn_at < now() - interval '1 minute' THEN handle_warn_at END,
    overdue_at = CASE WHEN handle_due_at < now() - interval '1 minute' THEN handle_due_at END,
    escalation_level = CASE WHEN handle_due_at < now() - interval '1 minute' THEN 2 ELSE 0 END
WHERE status IN ('pending', 'signed');
UPDATE case_tasks SET next_alarm_at = CASE
        WHEN overdue_at IS NOT NULL THEN NULL
        WHEN warned_at IS NOT NULL THEN handle_due_at
        ELSE handle_warn_at END
WHERE status IN ('pending', 'signed');
UPDATE cases c SET handle_due_at = t.handle_due_at FROM case_tasks t
WHERE t.case_id = c.id AND t.is_lead AND c.status IN ('dispatched', 'in_progress');

INSERT INTO case_events (case_id, occurred_at, kind, actor_role, to_status, photo_ids, detail)
SELECT id, reported_at, 'reported', 'road_chief', 'pending_registration', '[]', '{}'
FROM cases;
INSERT INTO case_events (case_id, occurred_at, kind, actor_role, from_status, to_status,
    photo_ids, detail)
SELECT id, reported_at + interval '1 hour', 'registered', 'dispatcher',
    'pending_registration', 'registered', '[]', '{}'
FROM cases WHERE status <> 'pending_registration';
SELECT setval(pg_get_serial_sequence('cases', 'id'), (SELECT max(id) FROM cases));
"""


def database_bytes(database: Database) -> int:
    with database.engine.connect() as conn:
        return int(conn.scalar(text("SELECT pg_database_size(current_database())")) or 0)


def generate(database: Database, n: int) -> dict[str, int]:
    empty = database_bytes(database)
    with database.sessions() as session:
        lead = session.scalar(select(Unit.id).where(Unit.code == "urban-management"))
        other = session.scalar(select(Unit.id).where(Unit.code == "transport"))
        for statement in filter(str.strip, GENERATE.split(";\n")):
            session.execute(text(statement), {"n": n, "lead": lead, "other": other})
        session.commit()
    with database.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    with database.sessions() as session:
        counts = {
            name: int(session.scalar(text(sql)) or 0)
            for name, sql in {
                "cases": "SELECT count(*) FROM cases",
                "tasks": "SELECT count(*) FROM case_tasks",
                "open tasks": "SELECT count(*) FROM case_tasks WHERE status IN "
                "('pending', 'signed')",
                "urban management's open tasks": "SELECT count(*) FROM case_tasks t JOIN "
                "units u ON u.id = t.unit_id WHERE u.code = 'urban-management' "
                "AND t.status IN ('pending', 'signed')",
                "events": "SELECT count(*) FROM case_events",
            }.items()
        }
    # The generated cases' footprint (cases, tasks, two events each; no reports, photos'
    # rows, inbox or outbox): a floor for capacity planning (README "Production").
    counts["MB per 10,000 cases (tables and indexes)"] = round(
        (database_bytes(database) - empty) / n * 10_000 / 1e6
    )
    return counts


def timed_ms(fn: Callable[[], object], n: int) -> str:
    s = timed(fn, n, warmup=5)
    return f"median {s.median_ms:6.1f} ms  p95 {s.p95_ms:6.1f} ms"


def queue_benchmarks(database: Database, settings: Settings, base: str) -> None:
    staff = Principal(
        kind="user", id=0, name="bench", roles=frozenset({Role.DEPARTMENT_STAFF}),
        unit_code="urban-management",
    )  # fmt: skip
    with database.sessions() as session:
        street = session.scalar(
            select(Jurisdiction.code).where(Jurisdiction.level == JurisdictionLevel.STREET)
        )

        def page(**filters: object) -> Callable[[], object]:
            def call() -> object:
                session.rollback()
                args = {"status": None, "category": None, "street": None,
                        "overdue": None, "cursor": None, **filters}  # fmt: skip
                return unit_tasks(session, settings, staff, unit_code=None, limit=50, **args)

            return call

        _, second = page()()
        print("  department queue (in-process, 50 per page, with remaining working hours)")
        print(f"    first page by deadline                {timed_ms(page(), 50)}")
        print(f"    next page (cursor)                    {timed_ms(page(cursor=second), 50)}")
        print(f"    overdue only                          {timed_ms(page(overdue=True), 50)}")
        print(f"    one street office's cases             "
              f"{timed_ms(page(street=street), 50)}")  # fmt: skip
    headers = {"Authorization": f"Bearer {token(base, 'demo-staff')}"}
    with httpx.Client(base_url=base, headers=headers, timeout=60) as client:

        def http_page() -> object:
            response = client.get("/api/v1/tasks", params={"limit": 50})
            response.raise_for_status()
            return response

        print(f"    over HTTP, GET /api/v1/tasks?limit=50 {timed_ms(http_page, 50)}")
    # The console's page of the same queue: the API's token as the console's session cookie
    # (httpx sends no Secure cookie over plain HTTP, so the header is written by hand).
    cookie = {"Cookie": f"rc_console_access={token(base, 'demo-staff')}"}
    with httpx.Client(base_url=base, headers=cookie, timeout=60) as client:

        def console_page() -> object:
            response = client.get("/console/tasks")
            response.raise_for_status()
            return response

        print(f"    console page, GET /console/tasks      {timed_ms(console_page, 50)}")
    # The centre's console pages over the same cases (issue 19): the day's alarms (a search
    # page, each case read as the API shows it) and the map's clustered cases.
    centre = {"Cookie": f"rc_console_access={token(base, 'demo-dispatcher')}"}
    with httpx.Client(base_url=base, headers=centre, timeout=120) as client:
        for label, url in (
            ("console alarms, GET /console/alarms", "/console/alarms"),
            ("console map, GET /console/map/cases.geojson", "/console/map/cases.geojson"),
        ):

            def console_get(url: str = url) -> object:
                response = client.get(url)
                response.raise_for_status()
                return response

            print(f"    {label} {timed_ms(console_get, 10)}")


def sweep_benchmarks(database: Database, settings: Settings) -> None:
    print("  overdue sweep over every open task")
    for label, now in (
        ("steady state (the last minute's alarms)", utcnow()),
        ("second run (nothing due)", utcnow()),
        ("after an hour without sweeping", utcnow() + timedelta(hours=1)),
    ):
        with database.sessions() as session:
            started = time.perf_counter()
            run = sweep(session, settings, now=now)
            elapsed = time.perf_counter() - started
        per = f"  ({run.total / elapsed:.0f} events/s)" if run.total else ""
        print(f"    {label:<38}{elapsed * 1000:8.1f} ms  {run.total:5d} events{per}")


def transition_benchmark(base: str, database: Database, total: int, clients: int) -> None:
    with database.sessions() as session:
        numbers = list(
            session.scalars(
                text(
                    "SELECT number FROM cases WHERE status = 'pending_registration' "
                    "ORDER BY id LIMIT :n"
                ),
                {"n": total // 3},
            )
        )
    dispatcher = {"Authorization": f"Bearer {token(base, 'demo-dispatcher')}"}
    staff = {"Authorization": f"Bearer {token(base, 'demo-staff')}"}
    steps = [
        ("register", dispatcher, {}, 1),
        ("dispatch", dispatcher, {"units": ["urban-management"], "reason": "基准"}, 2),
        ("sign_for", staff, {}, 3),
    ]
    latencies: list[float] = []
    port = int(base.rsplit(":", 1)[1])

    async def walk(chunk: list[str]) -> None:
        for number in chunk:
            # A connection per case: eight kept for the whole run stay with whichever
            # worker accepted them, often one worker with six (seen: 89 % and 16 % CPU).
            connection = await Connection.open(port)
            try:
                for action, headers, body, version in steps:
                    raw = encode(
                        "POST",
                        f"/api/v1/cases/{number}/actions/{action}",
                        {**headers, "If-Match": f'"{version}"'},
                        body,
                    )
                    started = time.perf_counter()
                    status, answer = await connection.send(raw)
                    latencies.append(time.perf_counter() - started)
                    if status != 200:
                        raise SystemExit(f"{number} {action}: {answer[:300]!r}")
            finally:
                await connection.close()

    async def walk_all() -> None:
        await asyncio.gather(*(walk(numbers[i::clients]) for i in range(clients)))

    started = time.perf_counter()
    asyncio.run(walk_all())
    rate = len(latencies) / (time.perf_counter() - started)
    s = stats(latencies)
    print(
        f"  transitions over HTTP, {clients} clients        {rate:6.1f} /s  "
        f"latency median {s.median_ms:.1f} ms p95 {s.p95_ms:.1f} ms  (n={s.n})"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--transitions", type=int, default=3000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    media = OUT / "workflow-media"
    shutil.rmtree(media, ignore_errors=True)
    url = fresh_database("postgis", "workflow")
    settings = prepare(url, media)
    database = Database.from_settings(settings)
    print(
        f"workflow benchmark: PostGIS, Python {platform.python_version()}, "
        f"{psutil.cpu_count()} CPUs, {args.workers} server worker(s)"
    )
    started = time.perf_counter()
    counts = generate(database, args.cases)
    print(f"  generated in {time.perf_counter() - started:.0f} s: "
          + ", ".join(f"{v:,} {k}" for k, v in counts.items()))  # fmt: skip
    with server(url, media, args.workers, ROADCHIEF_BACKGROUND_INTERVAL_SECONDS="0") as (base, _):
        queue_benchmarks(database, settings, base)
        sweep_benchmarks(database, settings)
        transition_benchmark(base, database, args.transitions, args.clients)
    database.dispose()


if __name__ == "__main__":
    main()
