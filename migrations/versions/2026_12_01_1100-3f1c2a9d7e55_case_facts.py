"""KPI facts kept as events happen (`case_facts`): a row per case (unit 0) and per unit's
task, with the case's period and places copied in, indexed for the running period's
figures.

Back-fill: the facts of every case are recomputed from its events by the service's own
`app.cases.facts.rebuild` (what `roadchief assessment rebuild-facts` runs), in this
migration's transaction. It reads only the columns of cases, events and units that exist
at this revision. On a large history it takes a while (about a minute per 100,000 cases);
should it ever fail here, create the table with `ROADCHIEF_SKIP_FACTS_BACKFILL=1` and run
`roadchief assessment rebuild-facts` after the upgrade.

Revision ID: 3f1c2a9d7e55
Revises: c1a55e3d7f21
Create Date: 2026-12-01 11:00:00.000000+00:00
"""

import os
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.orm import Session


revision: str = "3f1c2a9d7e55"
down_revision: str | Sequence[str] | None = "c1a55e3d7f21"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "case_facts",
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("jurisdiction_path", sa.String(length=400), nullable=False),
        sa.Column("street_code", sa.String(length=32), nullable=True),
        sa.Column("community_code", sa.String(length=32), nullable=True),
        sa.Column("segment_code", sa.String(length=32), nullable=True),
        sa.Column("category_code", sa.String(length=64), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("status", sa.String(length=32), nullable=True),
        sa.Column("registered", sa.Integer(), nullable=False),
        sa.Column("rejected", sa.Integer(), nullable=False),
        sa.Column("cancelled", sa.Integer(), nullable=False),
        sa.Column("fed_back", sa.Integer(), nullable=False),
        sa.Column("reworked", sa.Integer(), nullable=False),
        sa.Column("overdue", sa.Integer(), nullable=False),
        sa.Column("lead_unit_id", sa.Integer(), nullable=True),
        sa.Column("dispatched", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=True),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sign_late_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("fed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("fed_hours", sa.Float(), nullable=True),
        sa.Column("late_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("upheld", sa.Integer(), nullable=False),
        sa.Column("refused", sa.Integer(), nullable=False),
        sa.Column("extensions", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_case_facts_case_id_cases"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("case_id", "unit_id", name=op.f("pk_case_facts")),
    )
    op.create_index("ix_case_facts_changed_at", "case_facts", ["changed_at"], unique=False)
    op.create_index("ix_case_facts_reported_at", "case_facts", ["reported_at"], unique=False)
    op.create_index(
        "ix_case_facts_street_code_reported_at",
        "case_facts",
        ["street_code", "reported_at"],
        unique=False,
    )
    op.create_index(
        "ix_case_facts_segment_code_reported_at",
        "case_facts",
        ["segment_code", "reported_at"],
        unique=False,
    )
    op.create_index(
        "ix_case_facts_category_code_reported_at",
        "case_facts",
        ["category_code", "reported_at"],
        unique=False,
    )
    op.create_index(
        "ix_case_facts_unit_id_reported_at", "case_facts", ["unit_id", "reported_at"], unique=False
    )
    if not os.environ.get("ROADCHIEF_SKIP_FACTS_BACKFILL"):
        from app.cases.facts import rebuild

        rebuild(Session(bind=op.get_bind()), month_end_copies=False)


def downgrade() -> None:
    op.drop_index("ix_case_facts_unit_id_reported_at", table_name="case_facts")
    op.drop_index("ix_case_facts_category_code_reported_at", table_name="case_facts")
    op.drop_index("ix_case_facts_segment_code_reported_at", table_name="case_facts")
    op.drop_index("ix_case_facts_street_code_reported_at", table_name="case_facts")
    op.drop_index("ix_case_facts_reported_at", table_name="case_facts")
    op.drop_index("ix_case_facts_changed_at", table_name="case_facts")
    op.drop_table("case_facts")
