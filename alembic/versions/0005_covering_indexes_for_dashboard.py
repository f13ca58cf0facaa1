"""covering indexes for the city dashboard: circulars by association and date with status and counters,
households by association with removed_at and paper_only (each replaces a narrower index it contains)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 07:00:00.000000
"""
from typing import Sequence, Union

from alembic import op


revision: str = '0005'
down_revision: Union[str, None] = '0004'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('circular', schema=None) as batch_op:
        batch_op.create_index('ix_circular_assoc_sent_counters',
                              ['association_id', 'sent_at', 'status', 'household_count', 'read_households',
                               'confirmed_households'], unique=False)
        batch_op.drop_index('ix_circular_assoc_sent')
    with op.batch_alter_table('household', schema=None) as batch_op:
        batch_op.create_index('ix_household_assoc_removed_paper', ['association_id', 'removed_at', 'paper_only'],
                              unique=False)
        batch_op.drop_index('ix_household_association_id')


def downgrade() -> None:
    with op.batch_alter_table('household', schema=None) as batch_op:
        batch_op.create_index('ix_household_association_id', ['association_id'], unique=False)
        batch_op.drop_index('ix_household_assoc_removed_paper')
    with op.batch_alter_table('circular', schema=None) as batch_op:
        batch_op.create_index('ix_circular_assoc_sent', ['association_id', 'sent_at'], unique=False)
        batch_op.drop_index('ix_circular_assoc_sent_counters')
