"""Inbox messages may name the whistle that summoned the reader's unit (路长吹哨、部门报到).

Revision ID: f586009073e1
Revises: 59ce57572a4e
Create Date: 2026-12-01 05:14:34.126660+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = 'f586009073e1'
down_revision: str | Sequence[str] | None = '59ce57572a4e'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Batch mode: SQLite cannot add a foreign key to an existing table, so it is rebuilt.
    with op.batch_alter_table('notifications') as batch_op:
        batch_op.add_column(sa.Column('whistle_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(op.f('fk_notifications_whistle_id_whistles'), 'whistles', ['whistle_id'], ['id'], ondelete='CASCADE')


def downgrade() -> None:
    with op.batch_alter_table('notifications') as batch_op:
        batch_op.drop_constraint(op.f('fk_notifications_whistle_id_whistles'), type_='foreignkey')
        batch_op.drop_column('whistle_id')
