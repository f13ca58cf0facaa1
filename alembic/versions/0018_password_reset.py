"""one-time links for setting a new password (forgotten passwords)

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-29 19:00:00.000000
"""
from typing import Sequence, Union

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '0018'
down_revision: Union[str, None] = '0017'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        'passwordreset',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('token_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('account_id', sa.Integer(), nullable=False),
        sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column('expires_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column('used_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(['account_id'], ['account.id'], ),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index(op.f('ix_passwordreset_account_id'), 'passwordreset', ['account_id'], unique=False)
    op.create_index(op.f('ix_passwordreset_token_hash'), 'passwordreset', ['token_hash'], unique=True)


def downgrade() -> None:
    op.drop_index(op.f('ix_passwordreset_token_hash'), table_name='passwordreset')
    op.drop_index(op.f('ix_passwordreset_account_id'), table_name='passwordreset')
    op.drop_table('passwordreset')
