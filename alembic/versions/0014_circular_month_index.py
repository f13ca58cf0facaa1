"""the city dashboard's monthly sums of circulars read an index in month order: (month, status, sent time,
household counters), so that SQLite sums a year of the city's circulars by month in one pass over the index
instead of sorting them by month (42 -> 20 ms for 45,000 circulars)

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-27 16:00:00.000000
"""
from typing import Sequence, Union

from alembic import op


revision: str = '0014'
down_revision: Union[str, None] = '0013'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_index('ix_circular_month_counters', 'circular',
                    ['sent_month', 'status', 'sent_at', 'household_count', 'read_households', 'confirmed_households'])


def downgrade() -> None:
    op.drop_index('ix_circular_month_counters', table_name='circular')
