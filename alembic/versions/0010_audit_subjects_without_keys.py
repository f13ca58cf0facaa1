"""the audit trail's subjects are plain ids too, not foreign keys: every event an audited read writes names a
person or household read from the database in the same transaction, and checking that row again for each of
the 5,000 events of a 3,000-household export cost about half of the audit INSERT on PostgreSQL (70 → 33 ms);
accounts and households are never deleted, only marked, so an event never outlives its subject

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-27 09:00:00.000000
"""
from typing import Sequence, Union

from alembic import op


revision: str = '0010'
down_revision: Union[str, None] = '0009'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

# As in 0007: batch mode on SQLite names the reflected, unnamed keys by this convention so that they can be
# dropped (the table is copied); PostgreSQL's carry its default names.
NAMING = {"fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s"}
KEYS = {
    'sqlite': (("fk_auditevent_subject_account_id_account", 'account', 'subject_account_id'),
               ("fk_auditevent_subject_household_id_household", 'household', 'subject_household_id')),
    'postgresql': (("auditevent_subject_account_id_fkey", 'account', 'subject_account_id'),
                   ("auditevent_subject_household_id_fkey", 'household', 'subject_household_id')),
}


def upgrade() -> None:
    with op.batch_alter_table('auditevent', naming_convention=NAMING) as batch_op:
        for name, _table, _column in KEYS[op.get_bind().dialect.name]:
            batch_op.drop_constraint(name, type_='foreignkey')


def downgrade() -> None:
    with op.batch_alter_table('auditevent', naming_convention=NAMING) as batch_op:
        for name, table, column in KEYS[op.get_bind().dialect.name]:
            batch_op.create_foreign_key(name, table, [column], ['id'])
