"""Photos: one row per upload, owned by its uploader; rows of the same bytes share the
stored files (the content-addressed keys), so `sha256` is no longer unique.

SQLite drops a constraint only by rebuilding the table (batch mode); the migration runs
with foreign keys off there and checks them before committing (`app.core.schema`).
The downgrade fails while two rows share their bytes.

Revision ID: 0ee7006c252b
Revises: 5b65e2931f9a
Create Date: 2026-12-01 06:11:13.563331+00:00
"""

from collections.abc import Sequence

from alembic import op


revision: str = '0ee7006c252b'
down_revision: str | Sequence[str] | None = '5b65e2931f9a'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('photos') as batch_op:
        batch_op.drop_constraint(op.f('uq_photos_sha256'), type_='unique')
        batch_op.create_index(op.f('ix_photos_sha256'), ['sha256'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('photos') as batch_op:
        batch_op.drop_index(op.f('ix_photos_sha256'))
        batch_op.create_unique_constraint(op.f('uq_photos_sha256'), ['sha256'])
