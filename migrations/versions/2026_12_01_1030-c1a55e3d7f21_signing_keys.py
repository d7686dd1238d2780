"""The token signing key moves into the database (`signing_keys`, one row), so that every
API server of a deployment signs and checks tokens with the same key. The table starts
empty: the first server to start writes the key (a deployment's old `var/secret_key` if
it has one, so tokens already issued stay valid).

Revision ID: c1a55e3d7f21
Revises: 6718fcfbeb44
Create Date: 2026-12-01 10:30:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = 'c1a55e3d7f21'
down_revision: str | Sequence[str] | None = '6718fcfbeb44'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'signing_keys',
        sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('secret', sa.String(length=200), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint('id = 1', name=op.f('ck_signing_keys_one_key')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_signing_keys')),
    )


def downgrade() -> None:
    op.drop_table('signing_keys')
