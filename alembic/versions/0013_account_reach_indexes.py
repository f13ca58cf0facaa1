"""how many residents a city notice reaches is counted from an index alone: (area, deleted, birth year),
(birth year, deleted, area) and (small children, deleted, area) replace the single-column indexes on area
and birth year, so that counting the 152,000 residents of 65 and over no longer fetches each one's row
to see whether the account was deleted (225 -> 13 ms on SQLite)

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-27 10:30:00.000000
"""
from typing import Sequence, Union

from alembic import op


revision: str = '0013'
down_revision: Union[str, None] = '0012'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_index('ix_account_area_reach', 'account', ['area_id', 'deleted_at', 'birth_year'])
    op.create_index('ix_account_birth_year_reach', 'account', ['birth_year', 'deleted_at', 'area_id'])
    op.create_index('ix_account_small_children_reach', 'account', ['has_small_children', 'deleted_at', 'area_id'])
    op.drop_index('ix_account_area_id', table_name='account')
    op.drop_index('ix_account_birth_year', table_name='account')


def downgrade() -> None:
    op.create_index('ix_account_birth_year', 'account', ['birth_year'])
    op.create_index('ix_account_area_id', 'account', ['area_id'])
    op.drop_index('ix_account_small_children_reach', table_name='account')
    op.drop_index('ix_account_birth_year_reach', table_name='account')
    op.drop_index('ix_account_area_reach', table_name='account')
