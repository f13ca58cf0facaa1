"""the audit trail's accesses get a table of their own (auditaccess, one row per access), and auditevent
keeps only what a person's own access log reads: its rows by subject

City staff's trail grouped every per-person event of the whole audit log into accesses on each page view:
1.1 s on PostgreSQL and 1.7 s on SQLite with under a million events, and growing with every export. It now
reads the newest accesses by (at, id). Existing events are grouped into accesses once, here.

auditevent's indexes on (at) and (association_id, at) had no reader left and cost two B-tree inserts for
each of the 5,000 events an export writes: dropped.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-27 10:00:00.000000
"""
from typing import Sequence, Union

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '0012'
down_revision: Union[str, None] = '0011'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        'auditaccess',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column('actor_account_id', sa.Integer(), nullable=True),
        sa.Column('actor_title', sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False),
        sa.Column('action', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column('association_id', sa.Integer(), nullable=True),
        sa.Column('record_count', sa.Integer(), nullable=False),
        sa.Column('detail', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    # One access wrote its events with one timestamp, actor, action and association (services/audit.record).
    op.execute(
        "INSERT INTO auditaccess (at, actor_account_id, actor_title, action, association_id, record_count, detail) "
        "SELECT at, actor_account_id, max(actor_title), action, association_id, max(record_count), max(detail) "
        "FROM auditevent GROUP BY at, actor_account_id, action, association_id ORDER BY at"
    )
    op.create_index('ix_auditaccess_at_id', 'auditaccess', ['at', 'id'])
    op.drop_index('ix_audit_assoc_at', table_name='auditevent')
    op.drop_index('ix_auditevent_at', table_name='auditevent')


def downgrade() -> None:
    # The (at) index first: the copy below looks each access up by its time.
    op.create_index('ix_auditevent_at', 'auditevent', ['at'])
    op.create_index('ix_audit_assoc_at', 'auditevent', ['association_id', 'at'])
    # Accesses that named no one (an import, a reminder, an account deleted) live only in auditaccess since
    # 0012: back into auditevent as the summary events they were before, so that none is lost.
    op.execute(
        "INSERT INTO auditevent (at, actor_account_id, actor_title, action, association_id, record_count, detail) "
        "SELECT a.at, a.actor_account_id, a.actor_title, a.action, a.association_id, a.record_count, a.detail "
        "FROM auditaccess a WHERE NOT EXISTS (SELECT 1 FROM auditevent e WHERE e.at = a.at AND e.action = a.action "
        "AND (e.actor_account_id = a.actor_account_id OR (e.actor_account_id IS NULL AND a.actor_account_id IS NULL)))"
    )
    op.drop_index('ix_auditaccess_at_id', table_name='auditaccess')
    op.drop_table('auditaccess')
