"""the time of a member's last mail about a circular's correction, apart from their last notice of it

A correction within the hour after such a mail waits for the held-corrections job; the job's own mail now counts
from when it went (it was marked at the last correction's time, so a correction minutes after it went at once).
Deliveries whose last notice was a correction's mail (notified_at equal to a correction's time, as they were
marked) get that time (for those the job mailed before, the last correction's time: a correction within the hour
after such a mail can still go at once, once).

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-30 01:00:00.000000
"""
from typing import Sequence, Union

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '0019'
down_revision: Union[str, None] = '0018'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    # A nullable column: no table rewrite on either database (millions of deliveries).
    op.add_column('delivery', sa.Column('correction_mailed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
    op.execute("UPDATE delivery SET correction_mailed_at = notified_at "
               "WHERE circular_id IN (SELECT circular_id FROM circularamendment) AND notified_at IS NOT NULL "
               "AND EXISTS (SELECT 1 FROM circularamendment a WHERE a.circular_id = delivery.circular_id "
               "AND a.created_at = delivery.notified_at)")


def downgrade() -> None:
    with op.batch_alter_table('delivery') as batch:
        batch.drop_column('correction_mailed_at')
