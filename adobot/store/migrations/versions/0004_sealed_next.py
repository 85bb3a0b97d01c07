"""A key rotation's second seal for the variables of runs and schedules: sealed under the new
key beside the one sealed under the old, until the vault has the new key (as connections'
secrets are).

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("runs", "schedules"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("variables_next", sa.Text))
            batch.add_column(sa.Column("key_id_next", sa.String(16)))


def downgrade() -> None:
    for table in ("runs", "schedules"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("key_id_next")
            batch.drop_column("variables_next")
