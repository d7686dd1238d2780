"""The token signing key moves into the database (`signing_keys`, one row), so that every
API server of a deployment signs and checks tokens with the same key. The migration writes
the key (it runs once, under the migration lock): a deployment's old key file
(`ROADCHIEF_SECRET_KEY_FILE`, default `var/secret_key`) if it has one, so tokens already
issued stay valid, else a new random one. Servers then only read it; one that finds the
row missing writes it (`app.accounts.tokens.database_key`).

Revision ID: c1a55e3d7f21
Revises: 6718fcfbeb44
Create Date: 2026-12-01 10:30:00.000000+00:00
"""

import os
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

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
    path = Path(os.environ.get('ROADCHIEF_SECRET_KEY_FILE', 'var/secret_key'))
    old = path.read_text().strip() if path.is_file() else ''
    keys = sa.table(
        'signing_keys',
        sa.column('id', sa.Integer()),
        sa.column('secret', sa.String()),
        sa.column('created_at', sa.DateTime(timezone=True)),
    )
    op.bulk_insert(keys, [{
        'id': 1,
        'secret': old if len(old) >= 32 else secrets.token_urlsafe(48),
        'created_at': datetime.now(UTC),
    }])


def downgrade() -> None:
    op.drop_table('signing_keys')
