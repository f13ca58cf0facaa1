"""the session cookie becomes HttpOnly: one-time tickets that hand it to the browser by a page load

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26 15:30:00.000000
"""
from typing import Sequence, Union

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '0008'
down_revision: Union[str, None] = '0007'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        'sessionhandoff',
        sa.Column('ticket_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('sealed_token', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column('origin', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column('next_path', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column('expires_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('ticket_hash'),
    )
    op.create_index(op.f('ix_sessionhandoff_expires_at'), 'sessionhandoff', ['expires_at'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_sessionhandoff_expires_at'), table_name='sessionhandoff')
    op.drop_table('sessionhandoff')
