"""a delivery's household, member account and han are plain ids, not foreign keys: only the send writes
deliveries, with one INSERT ... SELECT from those very rows in the same transaction, and households,
accounts and han are never deleted, only marked; checking the three rows again for each of the 3,800
deliveries of a send to 3,000 households cost about half of the send on PostgreSQL. The circular and
confirmed_by (written later, by a confirmation) stay foreign keys.

On SQLite the table is copied to drop them (batch mode): about a minute for millions of deliveries.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-27 09:30:00.000000
"""
from typing import Sequence, Union

from alembic import op


revision: str = '0011'
down_revision: Union[str, None] = '0010'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

# As in 0007: batch mode on SQLite names the reflected, unnamed keys by this convention so that they can be
# dropped (the table is copied); PostgreSQL's carry its default names.
NAMING = {"fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s"}
COLUMNS = (('household_id', 'household'), ('account_id', 'account'), ('han_id', 'han'))


def _name(dialect: str, column: str, table: str) -> str:
    return f"delivery_{column}_fkey" if dialect == 'postgresql' else f"fk_delivery_{column}_{table}"


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    with op.batch_alter_table('delivery', naming_convention=NAMING) as batch_op:
        for column, table in COLUMNS:
            batch_op.drop_constraint(_name(dialect, column, table), type_='foreignkey')


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    with op.batch_alter_table('delivery', naming_convention=NAMING) as batch_op:
        for column, table in COLUMNS:
            batch_op.create_foreign_key(_name(dialect, column, table), table, [column], ['id'])
