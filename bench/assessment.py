"""Benchmark: assessment at a city's scale — a million cases and 50,000 inspections on PostGIS.

    ./scripts/bench assessment [--cases 1000000] [--inspections 50000] [--reuse]

Generates, in SQL, a year of cases on the demo city (a fresh database each run), each with
the history the KPIs read: reported, registered, dispatched to a lead unit (and a
cooperating one for a third), signed for, fed back (with its working hours), verified and
closed for 85 %; 10 % of the tasks marked overdue before their feedback, 2 % with an
extension granted, 1 % with a return decided, 1 % reworked. 50,000 inspections of random
segments over the year, three deductions each, charged to units. Then measures, in-process:

0. rebuilding the KPI facts from those events (`roadchief assessment rebuild-facts`: the
   generator writes events in SQL, as a city importing its history would);
1. the KPIs of one street office for last month (`assessment.service.kpis`), live;
2. the monthly ranking of all street offices for last month (`assessment.rankings.ranking`:
   the month's KPIs and inspection scores, and the month before's for "last place twice");
3. closing last month (`assessment.periods.close_period`), then 1 and 2 again, frozen;
4. a running period (the 30 days to today: the current month has only begun when the data
   is made, and is as big as a month), read from the kept facts and, for comparison, by
   replaying the events (as before issue 18): one street office's KPIs, every street's,
   every unit's, and the ranking's scoring of every street office (`rankings._scored`: the
   KPIs and inspection scores; the period before is frozen, so read in milliseconds);
5. a CSV export of 100,000 cases (`assessment.search.export_csv`), streamed, with the
   process's peak resident memory before and during it.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import time
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import psutil
from sqlalchemy import create_engine, delete, func, make_url, select, text
from sqlalchemy.exc import OperationalError

from app.access.rules import SYSTEM, Principal
from app.accounts.service import principal_for_user, user_by_username
from app.assessment import service
from app.assessment.models import AssessmentPeriod, AssessmentSnapshot
from app.assessment.periods import close_period
from app.assessment.rankings import _scored, ranking
from app.assessment.search import CaseFilter, export_csv
from app.assessment.service import kpis
from app.cases.facts import rebuild
from app.cases.models import CaseFactAtMonthEnd
from app.core.database import Database, utcnow
from app.core.schema import run_migrations
from app.settings import Settings
from app.territory.models import Jurisdiction, JurisdictionLevel, Unit
from bench.common import OUT, timed
from bench.intake import SECRET, PeakMemory, fresh_database, prepare

GENERATE = """
WITH streets AS (
    SELECT array_agg(path ORDER BY id) AS paths, array_agg(code ORDER BY id) AS codes
    FROM jurisdictions WHERE level = 'street'
), cats AS (
    SELECT array_agg(code ORDER BY code) AS codes FROM categories
    WHERE NOT EXISTS (SELECT 1 FROM categories c2 WHERE c2.parent_id = categories.id)
), segs AS (
    SELECT array_agg(code ORDER BY id) AS codes FROM road_segments
)
INSERT INTO cases (id, number, status, source, category_code, urgency, description,
    reported_at, geom, jurisdiction_path, street_code, segment_code, handle_due_at, fixed_on_spot,
    report_count, rework_count, urge_count, reopen_count, closed_at, version,
    created_at, updated_at)
SELECT g, 'A' || lpad(g::text, 9, '0'),
    CASE WHEN g % 20 < 17 THEN 'closed' WHEN g % 20 = 17 THEN 'in_progress'
         WHEN g % 20 = 18 THEN 'dispatched' ELSE 'rejected' END,
    'report', cats.codes[1 + g % array_length(cats.codes, 1)], 'normal', '基准测试案件',
    now() - interval '2 hours' - (g % 365) * interval '1 day' - (g % 997) * interval '1 minute',
    ST_SetSRID(ST_MakePoint(113.60 + (g % 1009) * 0.00005, 34.78 + (g % 1013) * 0.00005), 4326),
    streets.paths[1 + g % array_length(streets.paths, 1)],
    streets.codes[1 + g % array_length(streets.codes, 1)],
    segs.codes[1 + g % array_length(segs.codes, 1)],
    NULL, false, 1, CASE WHEN g % 100 = 7 THEN 1 ELSE 0 END, 0, 0, NULL, 1, now(), now()
FROM generate_series(1, :n) AS g, streets, cats, segs;
UPDATE cases SET closed_at = reported_at + interval '2 days' WHERE status = 'closed';

INSERT INTO case_tasks (case_id, unit_id, is_lead, status, assigned_at, sign_for_due_at,
    handle_due_at, escalation_level, extension_count, returns_refused, done_at)
SELECT c.id, units.ids[1 + c.id % array_length(units.ids, 1)], true,
    CASE c.status WHEN 'dispatched' THEN 'pending' WHEN 'in_progress' THEN 'signed'
                  ELSE 'done' END,
    c.reported_at + interval '1 hour', c.reported_at + interval '3 hours',
    c.reported_at + interval '1 day', 0, 0, 0,
    CASE WHEN c.status = 'closed' THEN c.reported_at + interval '20 hours' END
FROM cases c, (SELECT array_agg(id ORDER BY id) AS ids FROM units
               WHERE kind <> 'command_centre') AS units
WHERE c.status <> 'rejected';
INSERT INTO case_tasks (case_id, unit_id, is_lead, status, assigned_at, sign_for_due_at,
    handle_due_at, escalation_level, extension_count, returns_refused, done_at)
SELECT t.case_id, CASE WHEN t.unit_id = :other THEN :lead ELSE :other END, false, t.status,
    t.assigned_at, t.sign_for_due_at, t.handle_due_at, 0, 0, 0, t.done_at
FROM case_tasks t WHERE t.case_id % 3 = 0;

INSERT INTO case_events (case_id, occurred_at, kind, actor_role, to_status, photo_ids, detail)
SELECT id, reported_at, 'reported', 'road_chief', 'pending_registration', '[]', '{}' FROM cases;
INSERT INTO case_events (case_id, occurred_at, kind, actor_role, from_status, to_status,
    photo_ids, detail)
SELECT id, reported_at + interval '30 minutes',
    CASE WHEN status = 'rejected' THEN 'rejected' ELSE 'registered' END, 'dispatcher',
    'pending_registration', CASE WHEN status = 'rejected' THEN 'rejected' ELSE 'registered' END,
    '[]', '{}'
FROM cases;
INSERT INTO case_events (case_id, occurred_at, kind, actor_role, from_status, to_status,
    photo_ids, detail)
SELECT t.case_id, t.assigned_at, 'dispatched', 'dispatcher', 'registered', 'dispatched', '[]',
    json_build_object('units', (SELECT json_agg(u.code ORDER BY o.is_lead DESC, o.id)
                                FROM case_tasks o JOIN units u ON u.id = o.unit_id
                                WHERE o.case_id = t.case_id))
FROM case_tasks t WHERE t.is_lead;
INSERT INTO case_events (case_id, occurred_at, kind, actor_role, photo_ids, detail)
SELECT case_id, assigned_at + interval '1 hour', 'signed_for', 'department_staff', '[]',
    json_build_object('unit_id', unit_id)
FROM case_tasks WHERE status IN ('signed', 'done');
INSERT INTO case_events (case_id, occurred_at, kind, actor_role, photo_ids, detail)
SELECT case_id, handle_due_at + interval '1 minute', 'overdue', 'system', '[]',
    json_build_object('unit_id', unit_id)
FROM case_tasks WHERE case_id % 10 = 3;
INSERT INTO case_events (case_id, occurred_at, kind, actor_role, photo_ids, detail)
SELECT case_id, done_at, 'fed_back', 'department_staff', '[]',
    json_build_object('unit_id', unit_id, 'working_hours', 5 + case_id % 17)
FROM case_tasks WHERE status = 'done';
INSERT INTO case_events (case_id, occurred_at, kind, actor_role, photo_ids, detail)
SELECT case_id, assigned_at + interval '4 hours', 'extension_decided', 'dispatcher', '[]',
    json_build_object('unit_id', unit_id, 'granted', true)
FROM case_tasks WHERE case_id % 50 = 11;
INSERT INTO case_events (case_id, occurred_at, kind, actor_role, photo_ids, detail)
SELECT case_id, assigned_at + interval '3 hours', 'return_decided', 'dispatcher', '[]',
    json_build_object('unit_id', unit_id, 'upheld', false)
FROM case_tasks WHERE case_id % 100 = 13;
INSERT INTO case_events (case_id, occurred_at, kind, actor_role, from_status, to_status,
    photo_ids, detail)
SELECT id, reported_at + interval '21 hours', 'rework', 'road_chief', 'awaiting_verification',
    'in_progress', '[]', '{}'
FROM cases WHERE rework_count > 0;
INSERT INTO case_events (case_id, occurred_at, kind, actor_role, from_status, to_status,
    photo_ids, detail)
SELECT id, closed_at, 'verified', 'road_chief', 'awaiting_verification', 'closed', '[]', '{}'
FROM cases WHERE status = 'closed';
SELECT setval(pg_get_serial_sequence('cases', 'id'), (SELECT max(id) FROM cases));

INSERT INTO inspections (id, user_id, segment_id, jurisdiction_path, started_at, ended_at,
    received_at, note, checklist_name, deducted, score)
SELECT g, :assessor, s.id, j.path, now() - (g % 365) * interval '1 day' - interval '3 hours',
    now() - (g % 365) * interval '1 day' - interval '2 hours', now(), NULL, 'bench',
    (g % 7) * 1.5, 100 - (g % 7) * 1.5
FROM generate_series(1, :inspections) AS g
JOIN road_segments s
    ON s.id = (SELECT min(id) FROM road_segments) + g % (SELECT count(*) FROM road_segments)
JOIN jurisdictions j ON j.id = s.street_id;
INSERT INTO inspection_deductions (inspection_id, item_code, category_code, count, points,
    geom, distance_m, unit_id)
SELECT i.id, 'R01', 'R', 1, 0.5 * k, ST_SetSRID(ST_MakePoint(113.6, 34.8), 4326), 5,
    units.ids[1 + (i.id + k) % array_length(units.ids, 1)]
FROM inspections i, generate_series(1, 3) AS k,
    (SELECT array_agg(id ORDER BY id) AS ids FROM units WHERE kind <> 'command_centre') AS units;
SELECT setval(pg_get_serial_sequence('inspections', 'id'), (SELECT max(id) FROM inspections))
"""


def generate(database: Database, cases: int, inspections: int) -> dict[str, int]:
    from app.accounts.models import User

    with database.sessions() as session:
        ids = dict(session.execute(select(Unit.code, Unit.id)).all())
        assessor = session.scalar(select(User.id).where(User.username == "demo-assessor"))
        for statement in filter(str.strip, GENERATE.split(";\n")):
            session.execute(text(statement), {
                "n": cases, "inspections": inspections, "lead": ids["urban-management"],
                "other": ids["transport"], "assessor": assessor,
            })  # fmt: skip
        session.commit()
    with database.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    with database.sessions() as session:
        return {
            table: int(session.scalar(text(f"SELECT count(*) FROM {table}")) or 0)
            for table in ("cases", "case_tasks", "case_events", "inspections",
                          "inspection_deductions")
        }  # fmt: skip


def kept_database(cases: int) -> str | None:
    """The URL of the database an earlier run generated with this many cases and whose
    facts it rebuilt, if there is one (`--reuse` with `ROADCHIEF_BENCH_POSTGRES_URL` set
    to a server of one's own: `scripts/bench`'s throwaway cluster goes with each run)."""
    admin = make_url(os.environ["ROADCHIEF_BENCH_POSTGRES_URL"])
    url = admin.set(database="roadchief_bench_assessment")
    try:
        with create_engine(url).connect() as c:
            kept = c.execute(text("SELECT count(*) FROM cases")).scalar()
            facts = c.execute(text("SELECT count(*) FROM case_facts")).scalar()
    except OperationalError:
        return None
    return url.render_as_string(hide_password=False) if kept == cases and facts else None


def measure(session: Any, what: str, fn: Callable[[], Any], n: int) -> None:
    """Time `fn` from the kept facts (after issue 18), from the facts with PostgreSQL's
    parallel query off (on this loaded 2-core VM, starting its workers costs more than the
    aggregate), and replaying the events (before)."""
    for source in ("facts", "facts, no parallel query", "replay"):
        service.FROM_FACTS = source != "replay"
        workers = 0 if source == "facts, no parallel query" else 2

        def once(workers: int = workers) -> Any:
            session.rollback()
            session.execute(text(f"SET max_parallel_workers_per_gather = {workers}"))
            return fn()

        took = timed(once, n if source != "replay" else max(2, n // 4), warmup=1).line()
        print(f"  {what}, {source}: {took}")
    service.FROM_FACTS = True
    session.rollback()
    session.execute(text("RESET max_parallel_workers_per_gather"))


def running(
    session: Any, settings: Settings, assessor: Principal, street: str | None, today: date
) -> None:
    """A running period's figures (the 30 days to today)."""
    first = today - timedelta(days=29)
    report = kpis(session, settings, assessor, by="street", date_from=first, date_to=today,
                  street=street)  # fmt: skip
    row = report.rows[0]
    print(f"  running period {first}..{today}: {row.counts['cases']:,} cases of {street}, "
          f"{report.total.counts['cases']:,} in all, {report.total.counts['dispatched']:,} "
          "tasks")  # fmt: skip
    measure(session, "running: KPIs of one street office", lambda: kpis(
        session, settings, assessor, by="street", date_from=first, date_to=today,
        street=street), 20)  # fmt: skip
    for by in ("street", "unit"):
        measure(session, f"running: KPIs by {by}, whole district", lambda by=by: kpis(
            session, settings, assessor, by=by, date_from=first, date_to=today), 10)  # fmt: skip
    measure(session, "running: ranking scores of every street office", lambda: _scored(
        session, settings, assessor, "street", first, today), 10)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--inspections", type=int, default=50_000)
    parser.add_argument("--export-rows", type=int, default=100_000)
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="keep the database a previous run generated (same --cases) and measure only "
        "the running period: generating and rebuilding a million cases takes most of an hour",
    )
    parser.add_argument(
        "--skip-last-month",
        action="store_true",
        help="skip the live figures of last month (replayed, as before)",
    )
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    media = OUT / "assessment-media"
    shutil.rmtree(media, ignore_errors=True)
    print(f"assessment benchmark: PostGIS, Python {platform.python_version()}, "
          f"{psutil.cpu_count()} CPUs")  # fmt: skip
    reused = kept_database(args.cases) if args.reuse else None
    if reused:
        settings = Settings(database_url=reused, secret_key=SECRET, media_dir=media)
        database = Database.from_settings(settings)
        run_migrations(database.engine)  # made by an older revision, perhaps
        print(f"  reusing the {args.cases:,} cases an earlier run generated")
    else:
        url = fresh_database("postgis", "assessment")
        settings = prepare(url, media)
        database = Database.from_settings(settings)
        started = time.perf_counter()
        counts = generate(database, args.cases, args.inspections)
        print(f"  generated in {time.perf_counter() - started:.0f} s: "
              + ", ".join(f"{v:,} {k}" for k, v in counts.items()))  # fmt: skip
    with database.sessions() as session:
        copies = session.scalar(select(func.count()).select_from(CaseFactAtMonthEnd))
        if not reused or not copies:
            t = time.perf_counter()
            written = rebuild(session)
            session.commit()
            print(f"  rebuilt {written:,} KPI fact rows (with the copies as of each month's "
                  f"end) from the events in {time.perf_counter() - t:.0f} s")  # fmt: skip
    with database.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE case_facts"))
        conn.execute(text("VACUUM ANALYZE case_facts_month_end"))
    counts = {"cases": args.cases}
    with database.sessions() as session:
        assessor = principal_for_user(user_by_username(session, "demo-assessor"))  # district
    today = utcnow().astimezone(settings.zone).date()
    last_month = today.replace(day=1) - timedelta(days=1)
    first = last_month.replace(day=1)
    label = f"{first:%Y-%m}"
    with database.sessions() as session:
        if reused:  # the earlier run closed last month: open it again
            before = (first - timedelta(days=1)).strftime("%Y-%m")
            periods = select(AssessmentPeriod.id).where(AssessmentPeriod.label.in_([label, before]))
            session.execute(delete(AssessmentSnapshot).where(
                AssessmentSnapshot.period_id.in_(periods)))  # fmt: skip
            session.execute(delete(AssessmentPeriod).where(AssessmentPeriod.id.in_(periods)))
            session.commit()
        level = Jurisdiction.level == JurisdictionLevel.STREET
        street = session.scalar(select(Jurisdiction.code).where(level).order_by(Jurisdiction.code))

        def one_street() -> object:
            session.rollback()
            return kpis(session, settings, assessor, by="street", date_from=first,
                        date_to=last_month, street=street)  # fmt: skip

        def monthly() -> object:
            session.rollback()
            return ranking(session, settings, assessor, kind="street", period=label)

        if not args.skip_last_month:
            report = one_street()
            row = report.rows[0]  # type: ignore[attr-defined]
            print(f"  {label}, over, not closed: {row.counts['cases']:,} cases of {street}, "
                  f"{row.counts['dispatched']:,} tasks")  # fmt: skip
            measure(session, f"{label} (over, not closed): KPIs of one street office",
                    one_street, 10)  # fmt: skip
            measure(session, f"{label} (over, not closed): monthly ranking of every street "
                    "office (and the month before)", monthly, 4)  # fmt: skip

        session.rollback()
        t = time.perf_counter()
        close_period(session, settings, SYSTEM, label)
        print(f"  closing {label} (every KPI dimension, scores, rankings frozen): "
              f"{time.perf_counter() - t:.1f} s")  # fmt: skip
        print(f"  KPIs of one street office for {label}, frozen: "
              f"{timed(one_street, 20, warmup=2).line()}")  # fmt: skip
        print(f"  monthly ranking of all street offices for {label}, frozen: "
              f"{timed(monthly, 20, warmup=2).line()}")  # fmt: skip

        running(session, settings, assessor, street, today)

        if not args.export_rows:
            database.dispose()
            return
        days = max(1, round(365 * args.export_rows / max(1, counts["cases"])))
        f = CaseFilter.model_validate({"from": today - timedelta(days=days - 1), "to": today})
        session.rollback()
        process = psutil.Process()
        rss_before = process.memory_info().rss
        t = time.perf_counter()
        size = rows = 0
        with PeakMemory(process) as peak:
            for chunk in export_csv(session, settings, assessor, f):
                size += len(chunk)
                rows += chunk.count(b"\n")
        elapsed = time.perf_counter() - t
        print(
            f"  CSV export of {rows - 1:,} cases ({days} days, {size / 1e6:.1f} MB) in "
            f"{elapsed:.1f} s ({(rows - 1) / elapsed:,.0f} rows/s); resident memory "
            f"{rss_before / 1e6:.0f} MB before, peak {peak.peak / 1e6:.0f} MB during"
        )
    database.dispose()


if __name__ == "__main__":
    main()
