"""Connections that sign in as a managed identity: across tenants, the user-assigned identity
whose token is the app's assertion (the app is client_id, in tenant_id).

Revision ID: 0006
Revises: 0005
"""
import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("connections") as batch:
        batch.add_column(sa.Column("identity_client_id", sa.String(64)))


def downgrade() -> None:
    with op.batch_alter_table("connections") as batch:
        batch.drop_column("identity_client_id")
