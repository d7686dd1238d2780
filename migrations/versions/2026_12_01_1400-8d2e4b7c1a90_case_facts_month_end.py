"""KPI facts as of the end of a case's month (`case_facts_month_end`): the first step on a
case after its month ended copies the case's fact rows here before changing them, so a
month that is over but not yet closed reads its figures without replaying events.

No back-fill: a month whose changed cases have no copy replays their events, as before
(the figures are the same); `roadchief assessment rebuild-facts` writes the copies of the
past months too.

Revision ID: 8d2e4b7c1a90
Revises: 3f1c2a9d7e55
Create Date: 2026-12-01 14:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "8d2e4b7c1a90"
down_revision: str | Sequence[str] | None = "3f1c2a9d7e55"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "case_facts_month_end",
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
            ["case_id"],
            ["cases.id"],
            name=op.f("fk_case_facts_month_end_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("case_id", "unit_id", name=op.f("pk_case_facts_month_end")),
    )
    op.create_index(
        "ix_case_facts_month_end_reported_at",
        "case_facts_month_end",
        ["reported_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_case_facts_month_end_reported_at", table_name="case_facts_month_end")
    op.drop_table("case_facts_month_end")
