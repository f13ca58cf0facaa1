"""an officer may record a household's survey answer (a paper-only household after a visit)

The participation of such an answer names no member account, and the response names the officer who recorded
it instead of a respondent.

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-29 18:00:00.000000
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op


revision: str = '0017'
down_revision: Union[str, None] = '0016'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('surveyparticipation') as batch:
        batch.alter_column('account_id', existing_type=sa.Integer(), nullable=True)
    with op.batch_alter_table('surveyresponse') as batch:
        batch.add_column(sa.Column('recorded_by', sa.Integer(), nullable=True))
        batch.create_foreign_key('fk_surveyresponse_recorded_by', 'account', ['recorded_by'], ['id'])


def downgrade() -> None:
    # Answers an officer recorded have no member account to give back to a NOT NULL column: they go. A
    # household's answer a member wrote since then gives its participation that member; one whose member has
    # since deleted their account goes too. The surveys' answer counters are then counted again.
    op.execute("DELETE FROM surveyanswer WHERE response_id IN (SELECT id FROM surveyresponse "
               "WHERE recorded_by IS NOT NULL)")
    op.execute("DELETE FROM surveyresponse WHERE recorded_by IS NOT NULL")
    op.execute("UPDATE surveyparticipation SET account_id = (SELECT min(r.respondent_account_id) FROM surveyresponse r "
               "WHERE r.survey_id = surveyparticipation.survey_id AND r.household_id = surveyparticipation.household_id) "
               "WHERE account_id IS NULL")
    orphans = ("SELECT r.id FROM surveyresponse r JOIN surveyparticipation p ON p.survey_id = r.survey_id "
               "AND p.household_id = r.household_id WHERE p.account_id IS NULL")
    op.execute(f"DELETE FROM surveyanswer WHERE response_id IN ({orphans})")
    op.execute(f"DELETE FROM surveyresponse WHERE id IN ({orphans})")
    op.execute("DELETE FROM surveyparticipation WHERE account_id IS NULL")
    op.execute("UPDATE survey SET answered_accounts = (SELECT count(*) FROM surveyparticipation p "
               "WHERE p.survey_id = survey.id), answered_households = (SELECT count(DISTINCT p.household_id) "
               "FROM surveyparticipation p WHERE p.survey_id = survey.id)")
    with op.batch_alter_table('surveyresponse') as batch:
        batch.drop_column('recorded_by')  # its foreign key goes with it
    with op.batch_alter_table('surveyparticipation') as batch:
        batch.alter_column('account_id', existing_type=sa.Integer(), nullable=False)
