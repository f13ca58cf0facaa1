"""a household with member accounts may get the paper circular too

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-27 03:00:00.000000
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op


revision: str = '0009'
down_revision: Union[str, None] = '0008'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('household') as batch:
        batch.add_column(sa.Column('paper_copy', sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table('household') as batch:
        batch.drop_column('paper_copy')
