"""the audit trail's actor and association are plain ids, not foreign keys: an export writes one event per
person listed, all with the same actor and association, and checking those two rows again for each event cost
a quarter of the export on PostgreSQL

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26 10:00:00.000000
"""
from typing import Sequence, Union

from alembic import op


revision: str = '0007'
down_revision: Union[str, None] = '0006'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

# SQLite's foreign keys have no names: batch mode names the reflected ones by this convention so that they
# can be dropped (the table is copied); PostgreSQL's carry its default names.
NAMING = {"fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s"}
KEYS = {
    'sqlite': ("fk_auditevent_actor_account_id_account", "fk_auditevent_association_id_association"),
    'postgresql': ("auditevent_actor_account_id_fkey", "auditevent_association_id_fkey"),
}


def upgrade() -> None:
    actor, association = KEYS[op.get_bind().dialect.name]
    with op.batch_alter_table('auditevent', naming_convention=NAMING) as batch_op:
        batch_op.drop_constraint(actor, type_='foreignkey')
        batch_op.drop_constraint(association, type_='foreignkey')


def downgrade() -> None:
    actor, association = KEYS[op.get_bind().dialect.name]
    with op.batch_alter_table('auditevent', naming_convention=NAMING) as batch_op:
        batch_op.create_foreign_key(actor, 'account', ['actor_account_id'], ['id'])
        batch_op.create_foreign_key(association, 'association', ['association_id'], ['id'])
