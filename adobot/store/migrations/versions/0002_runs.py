"""Runs: uploaded bots (versioned bundles), runs and their attempts, pools, runners and
schedules.

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bots",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("main", sa.String(200), nullable=False),
        sa.Column("files", sa.Text, nullable=False),
        sa.Column("expects", sa.Text, nullable=False, server_default=""),
        sa.Column("connections", sa.Text, nullable=False, server_default=""),
        sa.Column("retries", sa.Integer, nullable=False, server_default="0"),
        sa.Column("timeout_seconds", sa.Integer, nullable=False, server_default="3600"),
        sa.Column("uploaded_by", sa.String(64), nullable=False),
        sa.Column("uploaded_at", sa.String(20), nullable=False),
        sa.UniqueConstraint("name", "digest", name="bots_one_version_a_content"),
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("bot", sa.String(64), nullable=False, index=True),
        sa.Column("bot_version", sa.Integer, nullable=False),
        sa.Column("state", sa.String(16), nullable=False, index=True),
        sa.Column("failure", sa.String(16)),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("pool", sa.String(64), nullable=False, index=True),
        sa.Column("idempotency_key", sa.String(200), unique=True),
        sa.Column("variables", sa.Text, nullable=False),
        sa.Column("key_id", sa.String(16), nullable=False),
        sa.Column("started_by", sa.String(64), nullable=False, index=True),
        sa.Column("created_at", sa.String(32), nullable=False, index=True),
        sa.Column("not_before", sa.String(32), nullable=False),
        sa.Column("started_at", sa.String(32)),
        sa.Column("ended_at", sa.String(32)),
        sa.Column("runner", sa.String(64)),
        sa.Column("lease_until", sa.String(32)),
        sa.Column("attempt", sa.Integer, nullable=False, server_default="0"),
        sa.Column("retries", sa.Integer, nullable=False, server_default="0"),
        sa.Column("timeout_seconds", sa.Integer, nullable=False, server_default="3600"),
        sa.Column("cancel_requested", sa.Integer, nullable=False, server_default="0"),
        sa.Column("error", sa.Text),
        sa.Column("steps", sa.Text),
        sa.Column("outputs", sa.Text),
        sa.Column("log", sa.Text),
        sa.Column("requests", sa.Integer, nullable=False, server_default="0"),
    )
    # The queue's question: the next queued run of a pool, by priority, then age.
    op.create_index("runs_queue", "runs", ["state", "pool", "priority", "created_at"])
    op.create_table(
        "run_attempts",
        sa.Column("run_id", sa.String(32), primary_key=True),
        sa.Column("number", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("runner", sa.String(64), nullable=False),
        sa.Column("started_at", sa.String(32), nullable=False),
        sa.Column("ended_at", sa.String(32)),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("failure", sa.String(16)),
        sa.Column("error", sa.Text),
    )
    op.create_table(
        "pools",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("paused", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", sa.String(32), nullable=False),
    )
    op.create_table(
        "runners",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("pool", sa.String(64), nullable=False, index=True),
        sa.Column("concurrency", sa.Integer, nullable=False),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("registered_at", sa.String(32), nullable=False),
        sa.Column("heartbeat_at", sa.String(32), nullable=False),
        sa.Column("lease_seconds", sa.Integer, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
    )
    op.create_table(
        "schedules",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("bot", sa.String(64), nullable=False),
        sa.Column("bot_version", sa.Integer),
        sa.Column("cron", sa.String(100), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("variables", sa.Text, nullable=False),
        sa.Column("key_id", sa.String(16), nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("pool", sa.String(64), nullable=False),
        sa.Column("paused", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_at", sa.String(32), nullable=False, index=True),
        sa.Column("last_run", sa.String(32)),
        sa.Column("last_fired_at", sa.String(32)),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("updated_at", sa.String(32), nullable=False),
    )


def downgrade() -> None:
    for table in ("schedules", "runners", "pools", "run_attempts", "runs", "bots"):
        op.drop_table(table)
