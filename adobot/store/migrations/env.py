"""Alembic's environment: the migrations run on the connection the store hands over
(``Database.upgrade``), inside its transaction, never on a URL of their own."""
from alembic import context

from adobot.store.models import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
