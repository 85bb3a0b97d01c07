"""The control room's store: connections, API tokens, the audit log, bots and runs as
repositories over one SQLAlchemy 2 database — a SQLite file beside the vault
by default, PostgreSQL by URL for several instances. Secrets arrive sealed by the vault and
leave sealed; the vault's key never comes here.

Importing this package imports no SQLAlchemy: ``open_store`` does, when a store is opened.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from adobot.store.audit import SqlAudit
    from adobot.store.connections import SqlConnections
    from adobot.store.database import Database
    from adobot.store.runs import SqlBots, SqlRuns, SqlSchedules
    from adobot.store.tokens import SqlTokens

__all__ = ["Store", "open_store"]


class Store:
    """One database and its repositories. (A plain class: a bot run imports this package for
    its protocols, and a dataclass would cost its cold start more than the rest of it.)"""

    def __init__(self, database: "Database", connections: "SqlConnections", tokens: "SqlTokens",
                 audit: "SqlAudit", bots: "SqlBots", runs: "SqlRuns",
                 schedules: "SqlSchedules") -> None:
        self.database, self.connections, self.tokens, self.audit = (database, connections,
                                                                    tokens, audit)
        self.bots, self.runs, self.schedules = bots, runs, schedules

    def __repr__(self) -> str:
        return f"Store({self.database!r})"

    def close(self) -> None:
        self.database.dispose()


def open_store(url: str, *, upgrade: bool = True) -> Store:
    """The store at ``url``, its schema brought up to date first (unless ``upgrade`` is off)."""
    from adobot.store.audit import SqlAudit
    from adobot.store.connections import SqlConnections
    from adobot.store.database import Database
    from adobot.store.runs import SqlBots, SqlRuns, SqlSchedules
    from adobot.store.tokens import SqlTokens

    database = Database(url)
    if upgrade:
        database.upgrade()
    jobs = None
    if not database.sqlite:  # there, each queued run is a procrastinate job (store/jobs.py)
        from adobot.store.jobs import Jobs

        jobs = Jobs()
    return Store(database, SqlConnections(database), SqlTokens(database), SqlAudit(database),
                 SqlBots(database), SqlRuns(database, jobs), SqlSchedules(database, jobs))
