"""The schema changes only through Alembic, the same way on both engines."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from app.core.database import Base
from app.core.schema import include_object, schema_heads
from tests.support.databases import DatabaseFactory, migrate

APP_TABLES = {t.name for t in Base.metadata.sorted_tables}


def test_upgrade_from_empty_matches_the_models_and_downgrades_to_nothing(
    factory: DatabaseFactory,
) -> None:
    database = factory.database(factory.new_url())
    migrate(database)
    assert set(inspect(database.engine).get_table_names()) >= APP_TABLES | {"alembic_version"}

    with database.engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"include_object": include_object, "compare_type": True}
        )
        assert set(context.get_current_heads()) == schema_heads()
        assert compare_metadata(context, Base.metadata) == []

    migrate(database, "base", down=True)
    assert not set(inspect(database.engine).get_table_names()) & APP_TABLES
    migrate(database)  # up again: the downgrade left nothing in the way
    assert set(inspect(database.engine).get_table_names()) >= APP_TABLES


def test_stored_delivery_errors_become_classes(factory: DatabaseFactory) -> None:
    """The exception texts deliveries kept (which ports answer, which names resolve) are
    replaced by the classes the delivery log now shows."""
    database = factory.database(factory.new_url())
    migrate(database, "586f5f891814")
    kept = {
        1: "ConnectError: [Errno 111] Connection refused",
        2: "ReadTimeout: timed out",
        3: "HTTP 503",
        4: "webhook deactivated",
        5: "RemoteProtocolError: illegal status line: bytearray(b'SSH-2.0-OpenSSH_9.2')",
        6: None,
    }
    with database.engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO webhooks (id, name, url, secret, event_types, active, created_at,"
            " updated_at) VALUES (1, 'w', 'http://10.0.0.1:22/', 's', '[]', true,"
            " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
        ))  # fmt: skip
        for id_, error in kept.items():  # one message each: a delivery per (hook, message)
            conn.execute(text(
                "INSERT INTO outbox_messages (id, message_id, event_type, payload, created_at)"
                " VALUES (:id, :message_id, 'case.registered', '{}', CURRENT_TIMESTAMP)"
            ), {"id": id_, "message_id": f"msg_{id_}"})  # fmt: skip
            conn.execute(text(
                "INSERT INTO webhook_deliveries (id, webhook_id, message_id, status, attempts,"
                " next_attempt_at, last_error)"
                " VALUES (:id, 1, :id, 'failed', 1, CURRENT_TIMESTAMP, :error)"
            ), {"id": id_, "error": error})  # fmt: skip
    migrate(database)
    with database.engine.connect() as conn:
        now = dict(conn.execute(text("SELECT id, last_error FROM webhook_deliveries")).all())
    assert now == {
        1: "unreachable", 2: "timed_out", 3: "http_status", 4: "webhook_deactivated",
        5: "bad_answer", 6: None,
    }  # fmt: skip


def test_photos_in_use_survive_the_move_to_one_row_per_upload(factory: DatabaseFactory) -> None:
    """SQLite drops `photos.sha256`'s unique constraint by rebuilding the table that
    reports, cases and uses refer to: the rows and every key must come through."""
    database = factory.database(factory.new_url())
    migrate(database, "dfe46c1cdba1")
    photo = {"sha": "ab" * 32, "key": "ab/ab/x.jpg", "at": datetime(2026, 11, 30, tzinfo=UTC)}
    with database.engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO photos (id, sha256, format, byte_size, width, height, original_key,"
            " display_key, thumbnail_key, uploaded_at) VALUES (7, :sha, 'JPEG', 10, 4, 3,"
            " :key, :key, :key, :at)"), photo)  # fmt: skip
        conn.execute(text("INSERT INTO photo_uses (photo_id, used_by, jurisdiction_path, used_at)"
                          " VALUES (7, 'report:1', '/410199/', :at)"), photo)  # fmt: skip

    migrate(database)

    with database.engine.begin() as conn:
        assert conn.execute(text("SELECT photo_id FROM photo_uses")).scalar() == 7
        conn.execute(text(  # a second upload of the same bytes, by someone else
            "INSERT INTO photos (id, sha256, format, byte_size, width, height, original_key,"
            " display_key, thumbnail_key, uploaded_at) VALUES (8, :sha, 'JPEG', 10, 4, 3,"
            " :key, :key, :key, :at)"), photo)  # fmt: skip
    with pytest.raises(IntegrityError), database.engine.begin() as conn:
        conn.execute(text("DELETE FROM photos WHERE id = 7"))  # still guarded by its use


def test_cases_that_reached_verification_get_their_handling_deadline_back(
    factory: DatabaseFactory,
) -> None:
    """`due_at` held the verification deadline once a case reached verification: it moves
    to `verify_due_at` and the handling deadline is taken again from the done tasks."""
    database = factory.database(factory.new_url())
    migrate(database, "0ee7006c252b")
    handled = datetime(2026, 11, 19, 9, 30, tzinfo=UTC)
    released = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)  # a released unit's: not the term
    verify = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
    cases = {  # id: (status, due_at, the status it was cancelled from)
        1: ("awaiting_verification", verify, None),
        2: ("closed", verify, None),
        3: ("in_progress", handled, None),
        4: ("cancelled", verify, "awaiting_verification"),
        5: ("cancelled", handled, "in_progress"),
        6: ("awaiting_verification", verify, None),  # fixed on the spot: no task
    }
    at = {"at": datetime(2026, 11, 18, 2, 0, tzinfo=UTC)}
    with database.engine.begin() as conn:
        for unit_id, code in ((1, "urban-management"), (2, "transport")):
            conn.execute(text(
                "INSERT INTO units (id, code, name, kind, created_at, updated_at)"
                " VALUES (:id, :code, :code, 'functional_department', :at, :at)"
            ), {"id": unit_id, "code": code, **at})  # fmt: skip
        for id_, (status, due, cancelled_from) in cases.items():
            conn.execute(text(
                "INSERT INTO cases (id, number, status, source, category_code, urgency,"
                " description, reported_at, geom, jurisdiction_path, due_at, fixed_on_spot,"
                " report_count, rework_count, urge_count, reopen_count, version, created_at,"
                " updated_at) VALUES (:id, :number, :status, 'report', 'roads.surface',"
                " 'urgent', '坑', :at, ST_GeomFromText('POINT(113.6 34.8)', 4326), '/410199/',"
                " :due, false, 1, 0, 0, 0, 3, :at, :at)"
            ), {"id": id_, "number": f"N{id_}", "status": status, "due": due, **at})  # fmt: skip
            tasks = [] if id_ == 6 else [(1, "done", handled), (2, "released", released)]
            for unit_id, task_status, unit_due in tasks:
                conn.execute(text(
                    "INSERT INTO case_tasks (case_id, unit_id, is_lead, status, assigned_at,"
                    " handle_due_at, escalation_level, extension_count, returns_refused)"
                    " VALUES (:id, :unit, :lead, :status, :at, :due, 0, 0, 0)"
                ), {"id": id_, "unit": unit_id, "lead": unit_id == 1, "status": task_status,
                    "due": unit_due, **at})  # fmt: skip
            if cancelled_from:
                conn.execute(text(
                    "INSERT INTO case_events (case_id, occurred_at, kind, from_status,"
                    " to_status, photo_ids, detail) VALUES (:id, :at, 'cancelled', :source,"
                    " 'cancelled', '[]', '{}')"
                ), {"id": id_, "source": cancelled_from, **at})  # fmt: skip
    migrate(database)
    with database.engine.connect() as conn:
        rows = conn.execute(
            text("SELECT id, handle_due_at, verify_due_at FROM cases ORDER BY id")
        ).all()

    def utc(value: datetime | str | None) -> datetime | None:
        if value is None:
            return None
        moment = datetime.fromisoformat(value) if isinstance(value, str) else value
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)

    assert {i: (utc(h), utc(v)) for i, h, v in rows} == {
        1: (handled, verify), 2: (handled, verify), 3: (handled, None),
        4: (handled, verify), 5: (handled, None), 6: (None, verify),
    }  # fmt: skip
