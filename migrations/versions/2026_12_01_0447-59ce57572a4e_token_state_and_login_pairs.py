"""Token state per user (tokens valid after) and sign-in throttling per account and address.

Revision ID: 59ce57572a4e
Revises: dfe46c1cdba1
Create Date: 2026-12-01 04:47:32.548780+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '59ce57572a4e'
down_revision: str | Sequence[str] | None = 'dfe46c1cdba1'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('users', sa.Column('tokens_valid_after', sa.DateTime(timezone=True), nullable=True))
    # Batch mode: SQLite cannot alter a column in place (the table is copied; it holds
    # at most a quarter of an hour of failures).
    with op.batch_alter_table('login_throttles') as batch:
        batch.add_column(sa.Column('last_success_at', sa.DateTime(timezone=True), nullable=True))
        # "pair:<address>|<username>" with a typed name of up to 100 characters.
        batch.alter_column('key', existing_type=sa.String(length=100), type_=sa.String(length=200), existing_nullable=False)
        # A pair row may record a success and no failure.
        batch.alter_column('last_failure_at', existing_type=sa.DateTime(timezone=True), nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM login_throttles WHERE last_failure_at IS NULL OR length(key) > 100")
    with op.batch_alter_table('login_throttles') as batch:
        batch.alter_column('last_failure_at', existing_type=sa.DateTime(timezone=True), nullable=False)
        batch.alter_column('key', existing_type=sa.String(length=200), type_=sa.String(length=100), existing_nullable=False)
        batch.drop_column('last_success_at')
    op.drop_column('users', 'tokens_valid_after')
