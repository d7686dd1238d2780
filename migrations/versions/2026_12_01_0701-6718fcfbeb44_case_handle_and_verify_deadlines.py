"""Cases keep two deadlines: `due_at` becomes `handle_due_at` (处置时限), which reaching
verification no longer overwrites, and `verify_due_at` (核查时限) is new.

Back-fill: a case that reached verification (awaiting it, closed, or cancelled while
awaiting it, as its `cancelled` event's `from_status` says) had its verification deadline
written over the handling one: that value becomes `verify_due_at`, and the handling
deadline is taken again from its tasks (the latest handling deadline of the units that
fed back; none for a fix on the spot). Every other case keeps its value as the handling
deadline. The downgrade writes the verification deadline back over the handling one where
the old code had.

Revision ID: 6718fcfbeb44
Revises: b0a01ee67531
Create Date: 2026-12-01 07:01:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '6718fcfbeb44'
down_revision: str | Sequence[str] | None = 'b0a01ee67531'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_REACHED_VERIFICATION = """
    status IN ('awaiting_verification', 'closed')
    OR (status = 'cancelled' AND (
        SELECT e.from_status FROM case_events e
        WHERE e.case_id = cases.id AND e.kind = 'cancelled'
        ORDER BY e.id DESC LIMIT 1
    ) = 'awaiting_verification')
"""


def upgrade() -> None:
    # Both engines rename a column in place (SQLite since 3.25): no table rebuild.
    op.execute('ALTER TABLE cases RENAME COLUMN due_at TO handle_due_at')
    op.add_column('cases', sa.Column('verify_due_at', sa.DateTime(timezone=True), nullable=True))
    op.execute(f'UPDATE cases SET verify_due_at = handle_due_at WHERE {_REACHED_VERIFICATION}')
    op.execute("""
        UPDATE cases SET handle_due_at = (
            SELECT MAX(t.handle_due_at) FROM case_tasks t
            WHERE t.case_id = cases.id AND t.status = 'done'
        )
        WHERE verify_due_at IS NOT NULL
    """)


def downgrade() -> None:
    op.execute(f"""
        UPDATE cases SET handle_due_at = verify_due_at
        WHERE verify_due_at IS NOT NULL AND ({_REACHED_VERIFICATION})
    """)
    op.drop_column('cases', 'verify_due_at')
    op.execute('ALTER TABLE cases RENAME COLUMN handle_due_at TO due_at')
