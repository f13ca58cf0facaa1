"""counters for the city dashboard: households reached per circular, answers per survey; deleted accounts index

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 03:00:00.000000
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0004'
down_revision: Union[str, None] = '0003'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

# One pass per circular over the covering index ix_delivery_circular_household_state (migration 0003).
BACKFILL_CIRCULARS = """
UPDATE circular SET
  household_count = (SELECT count(DISTINCT d.household_id) FROM delivery d WHERE d.circular_id = circular.id),
  read_households = (SELECT count(DISTINCT d.household_id) FROM delivery d
                     WHERE d.circular_id = circular.id AND d.state <> 'unread'),
  confirmed_households = (SELECT count(DISTINCT d.household_id) FROM delivery d
                          WHERE d.circular_id = circular.id AND d.state = 'confirmed')
WHERE status = 'sent'
"""
BACKFILL_SURVEYS = """
UPDATE survey SET
  answered_accounts = (SELECT count(*) FROM surveyparticipation p WHERE p.survey_id = survey.id),
  answered_households = (SELECT count(DISTINCT p.household_id) FROM surveyparticipation p
                         WHERE p.survey_id = survey.id)
"""


def upgrade() -> None:
    # Existing rows get 0, then every counter is computed from the rows it counts.
    with op.batch_alter_table('circular', schema=None) as batch_op:
        batch_op.add_column(sa.Column('read_households', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('confirmed_households', sa.Integer(), nullable=False, server_default='0'))
    with op.batch_alter_table('survey', schema=None) as batch_op:
        batch_op.add_column(sa.Column('answered_accounts', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('answered_households', sa.Integer(), nullable=False, server_default='0'))
    op.execute(BACKFILL_CIRCULARS)
    op.execute(BACKFILL_SURVEYS)
    with op.batch_alter_table('account', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_account_deleted_at'), ['deleted_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('account', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_account_deleted_at'))
    with op.batch_alter_table('survey', schema=None) as batch_op:
        batch_op.drop_column('answered_households')
        batch_op.drop_column('answered_accounts')
    with op.batch_alter_table('circular', schema=None) as batch_op:
        batch_op.drop_column('confirmed_households')
        batch_op.drop_column('read_households')
