"""delivery loses its index led by the household, which no statement reads

Every read of deliveries names the circular (or the member account). The (household_id, circular_id) index
took each of a send's rows at the end of that household's own history: with five years of circulars, 30 of
the 43 ms of the INSERT of a send to 3,000 households on SQLite, growing with every year.

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-29 01:30:00.000000
"""
from typing import Sequence, Union

from alembic import op


revision: str = '0016'
down_revision: Union[str, None] = '0015'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.drop_index('ix_delivery_household', table_name='delivery')


def downgrade() -> None:
    op.create_index('ix_delivery_household', 'delivery', ['household_id', 'circular_id'])
