"""On PostgreSQL: procrastinate's schema (its jobs, workers and functions, in the control room's
own schema), and a job for each run already queued. Nothing on SQLite.

procrastinate's later schema changes ship as SQL files with each release
(``procrastinate.schema.SchemaManager.get_migrations_path()``): raising its pinned version means
a migration here that applies them.

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    from procrastinate.schema import SchemaManager

    from adobot.store.jobs import Jobs

    # Many statements and no parameters: sent as they are, on the migration's transaction.
    bind.connection.driver_connection.execute(SchemaManager.get_schema())
    jobs = Jobs()
    for run_id, pool, priority, not_before in bind.execute(sa.text(
            "SELECT id, pool, priority, not_before FROM runs WHERE state = 'queued' "
            "ORDER BY priority, created_at")):
        jobs.defer(bind, run_id, pool, priority, not_before)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("""
DO $$
DECLARE found record;
BEGIN
    FOR found IN SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE n.nspname = current_schema() AND c.relkind = 'r'
                   AND c.relname LIKE 'procrastinate%' LOOP
        EXECUTE format('DROP TABLE IF EXISTS %I CASCADE', found.relname);
    END LOOP;
    FOR found IN SELECT p.oid::regprocedure AS signature FROM pg_proc p
                 JOIN pg_namespace n ON n.oid = p.pronamespace
                 WHERE n.nspname = current_schema() AND p.proname LIKE 'procrastinate%' LOOP
        EXECUTE format('DROP FUNCTION IF EXISTS %s CASCADE', found.signature);
    END LOOP;
    FOR found IN SELECT t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
                 WHERE n.nspname = current_schema() AND t.typname LIKE 'procrastinate%'
                   AND t.typtype IN ('c', 'e') LOOP
        EXECUTE format('DROP TYPE IF EXISTS %I CASCADE', found.typname);
    END LOOP;
END $$;
""")
