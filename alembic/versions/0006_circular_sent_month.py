"""the month of a circular's sending in the city's time, for the dashboard's monthly series without a date
function per row; the dashboard's covering index includes it

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 08:00:00.000000
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision: str = '0006'
down_revision: Union[str, None] = '0005'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

# Asia/Tokyo is UTC+9 all year (chiiki.models.city_month).
BACKFILL = {
    'sqlite': "UPDATE circular SET sent_month = strftime('%Y-%m', sent_at, '+9 hours') WHERE sent_at IS NOT NULL",
    'postgresql': "UPDATE circular SET sent_month = to_char(sent_at AT TIME ZONE 'UTC' + interval '9 hours', "
                  "'YYYY-MM') WHERE sent_at IS NOT NULL",
}


def upgrade() -> None:
    with op.batch_alter_table('circular', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sent_month', sqlmodel.sql.sqltypes.AutoString(length=7), nullable=False, server_default=''))
    op.execute(BACKFILL[op.get_bind().dialect.name])
    with op.batch_alter_table('circular', schema=None) as batch_op:
        batch_op.create_index('ix_circular_assoc_sent_month_counters',
                              ['association_id', 'sent_at', 'status', 'sent_month', 'household_count',
                               'read_households', 'confirmed_households'], unique=False)
        batch_op.drop_index('ix_circular_assoc_sent_counters')


def downgrade() -> None:
    with op.batch_alter_table('circular', schema=None) as batch_op:
        batch_op.create_index('ix_circular_assoc_sent_counters',
                              ['association_id', 'sent_at', 'status', 'household_count', 'read_households',
                               'confirmed_households'], unique=False)
        batch_op.drop_index('ix_circular_assoc_sent_month_counters')
        batch_op.drop_column('sent_month')
