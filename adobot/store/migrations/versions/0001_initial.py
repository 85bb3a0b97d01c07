"""The control room's first tables: connections, API tokens, the audit log, the store's facts.

Revision ID: 0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

APPEND_ONLY = "the audit log is append-only"


def upgrade() -> None:
    op.create_table(
        "connections",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("organization", sa.String(1000), nullable=False),
        sa.Column("organization_url", sa.String(1000), nullable=False),
        sa.Column("organization_key", sa.String(1000), nullable=False, unique=True),
        sa.Column("project", sa.String(256)),
        sa.Column("authentication_method", sa.String(32), nullable=False),
        sa.Column("tenant_id", sa.String(64)),
        sa.Column("client_id", sa.String(64)),
        sa.Column("runners", sa.Text, nullable=False, server_default=""),
        sa.Column("roles", sa.String(64), nullable=False, server_default="runner"),
        sa.Column("status_state", sa.String(16), nullable=False, server_default="unchecked"),
        sa.Column("status_reason", sa.Text),
        sa.Column("status_code", sa.String(32)),
        sa.Column("status_user", sa.String(256)),
        sa.Column("status_checked_at", sa.String(20)),
        sa.Column("secret", sa.Text, nullable=False),
        sa.Column("key_id", sa.String(16), nullable=False),
        sa.Column("secret_next", sa.Text),
        sa.Column("key_id_next", sa.String(16)),
        sa.Column("created_at", sa.String(20), nullable=False),
        sa.Column("updated_at", sa.String(20), nullable=False),
        sa.Column("secret_set_at", sa.String(20), nullable=False),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.String(16), primary_key=True),
        sa.Column("digest", sa.String(64), nullable=False, unique=True),
        sa.Column("name", sa.String(32), nullable=False, index=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_at", sa.String(20), nullable=False),
        sa.Column("expires_at", sa.String(20), nullable=False),
        sa.Column("revoked_at", sa.String(20)),
    )
    op.create_table(
        "audit_log",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("at", sa.String(32), nullable=False),
        sa.Column("event", sa.String(64), nullable=False, index=True),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("outcome", sa.String(200), nullable=False),
        sa.Column("connection", sa.String(1000), index=True),
        sa.Column("organization", sa.String(1000)),
        sa.Column("detail", sa.Text),
        sa.Column("client", sa.String(64)),
        sa.Column("run", sa.Text),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_table(
        "store_meta",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    # Append-only in the database itself: the control room's own connection cannot change or
    # remove a row. (An owner can drop the triggers; the hash chain then shows the change.)
    if op.get_bind().dialect.name == "sqlite":
        for kind in ("UPDATE", "DELETE"):
            op.execute(f"CREATE TRIGGER audit_log_no_{kind.lower()} BEFORE {kind} ON audit_log "
                       f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END")
    else:
        op.execute("CREATE FUNCTION adobot_audit_append_only() RETURNS trigger LANGUAGE plpgsql "
                   f"AS $$ BEGIN RAISE EXCEPTION '{APPEND_ONLY}'; END $$")
        op.execute("CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
                   "FOR EACH ROW EXECUTE FUNCTION adobot_audit_append_only()")
        op.execute("CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
                   "FOR EACH STATEMENT EXECUTE FUNCTION adobot_audit_append_only()")


def downgrade() -> None:
    for table in ("store_meta", "audit_log", "api_tokens", "connections"):
        op.drop_table(table)
    if op.get_bind().dialect.name != "sqlite":
        op.execute("DROP FUNCTION IF EXISTS adobot_audit_append_only()")
