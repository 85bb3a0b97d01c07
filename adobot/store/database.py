"""The control room's database: where it is, the engine, transactions, and the schema's upgrade.

- Where: ``--database URL``, else ``$ADOBOT_DATABASE_URL``, else a SQLite file beside the vault
  (``vault.json`` -> ``vault.db``), so one machine needs nothing installed. ``postgresql://``
  URLs use psycopg 3, for several control-room instances on one database.
- Transactions: ``reading()`` and ``writing()``. On SQLite a write transaction starts with
  ``BEGIN IMMEDIATE`` (it takes the write lock first, so two writers wait for each other instead
  of one failing half-way) and the file is in WAL mode (readers never wait for a writer). On
  PostgreSQL a writer that must be alone (the audit chain) takes an advisory lock.
- The schema belongs to Alembic (``migrations/``); ``upgrade()`` applies what is missing, and
  is cheap when nothing is: it reads the revision first and imports Alembic only to migrate.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any, Iterator

from adobot.errors import InvalidInput, VaultError

DATABASE_ENV = "ADOBOT_DATABASE_URL"
# The newest migration (migrations/versions/); a test keeps it equal to Alembic's head.
HEAD = "0006"
# pg_advisory_xact_lock keys: one for the schema's upgrade, one for the audit chain.
LOCK_UPGRADE, LOCK_AUDIT = 0x61646F01, 0x61646F02


def database_url(explicit: str | None, vault_path: str | os.PathLike[str]) -> str:
    """--database, else $ADOBOT_DATABASE_URL, else the SQLite file beside the vault."""
    url = explicit or os.environ.get(DATABASE_ENV) or ""
    if not url.strip():
        vault = Path(vault_path)
        return f"sqlite:///{vault.with_name(vault.stem + '.db')}"
    url = url.strip()
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme in ("postgresql", "postgres", "postgresql+psycopg"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    if scheme == "sqlite":
        return url
    raise InvalidInput(f"database URL scheme {scheme or url!r} is not one adobot stores in",
                       "Use postgresql://user@host/dbname (PostgreSQL) or sqlite:///path/file.db.",
                       field="--database")


def exists(url: str) -> bool:
    """Whether there is a database at ``url`` to use (a SQLite file that was never made is
    not; a server's database is assumed to be)."""
    if not url.startswith("sqlite"):
        return True
    file = url.split("///", 1)[1] if "///" in url else ""
    return bool(file) and (file == ":memory:" or Path(file).exists())


def shown(url: str) -> str:
    """A database URL fit to print: its password, if any, replaced."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


class Database:
    """One database: an engine and its transactions. Threads may share it."""

    def __init__(self, url: str) -> None:
        from sqlalchemy import create_engine, event

        self.url = url
        self.sqlite = url.startswith("sqlite")
        if self.sqlite:
            file = url.split("///", 1)[1] if "///" in url else ""
            if file and file != ":memory:":
                _private_file(Path(file))
            self.engine = create_engine(url, connect_args={"timeout": 30,
                                                           "check_same_thread": False})

            @event.listens_for(self.engine, "connect")
            def _sqlite_connection(dbapi: Any, record: Any) -> None:
                dbapi.isolation_level = None  # transactions are begun below, by us
                cursor = dbapi.cursor()
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")  # WAL: durable at checkpoints
                cursor.execute("PRAGMA foreign_keys=ON")
                cursor.execute("PRAGMA busy_timeout=30000")
                cursor.close()

            @event.listens_for(self.engine, "begin")
            def _sqlite_begin(connection: Any) -> None:
                immediate = connection.get_execution_options().get("adobot_write")
                connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
        else:
            self.engine = create_engine(url, pool_size=10, max_overflow=20)
            _ping_when_idle(self.engine)
        self._writer = self.engine.execution_options(adobot_write=True)
        # PostgreSQL reads run each statement on its own (as READ COMMITTED sees them anyway):
        # no BEGIN before them and no ROLLBACK after, two round trips fewer a read.
        self._reader = self.engine if self.sqlite else \
            self.engine.execution_options(isolation_level="AUTOCOMMIT")

    def __repr__(self) -> str:
        return f"Database({shown(self.url)!r})"

    @contextlib.contextmanager
    def reading(self) -> Iterator[Any]:
        with self._failures(), self._reader.connect() as connection:
            yield connection

    @contextlib.contextmanager
    def writing(self, alone: int | None = None) -> Iterator[Any]:
        """A write transaction, committed when the block ends without an exception. ``alone``:
        an advisory lock key that serializes this kind of write across instances (SQLite's
        writers are serialized anyway)."""
        from sqlalchemy import text

        with self._failures(), self._writer.begin() as connection:
            if alone is not None and not self.sqlite:
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": alone})
            yield connection

    @contextlib.contextmanager
    def _failures(self) -> Iterator[None]:
        """A database that cannot be reached or used says so, with where it is."""
        from sqlalchemy.exc import InterfaceError, OperationalError

        try:
            yield
        except (OperationalError, InterfaceError) as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
            raise VaultError(f"the control room's database {shown(self.url)} cannot be used: "
                             f"{reason}", f"Check --database / ${DATABASE_ENV}, that the "
                             "database server runs, and that the file or database is "
                             "yours.") from None

    def revision(self) -> str | None:
        from sqlalchemy import inspect, text

        with self.reading() as connection:
            if not inspect(connection).has_table("alembic_version"):
                return None
            return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()

    def upgrade(self) -> bool:
        """Apply the migrations the database lacks; True if any were applied."""
        if self.revision() == HEAD:
            return False
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(Path(__file__).with_name("migrations")))
        with self.writing(alone=LOCK_UPGRADE) as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
        return True

    def dispose(self) -> None:
        self.engine.dispose()


# A pooled PostgreSQL connection idle longer than this is pinged before it is used again.
IDLE_PING_SECONDS = 10.0


def _ping_when_idle(engine: Any) -> None:
    """A connection that sat idle in the pool is pinged before use, and replaced if the server
    closed it (it restarted, or a proxy dropped it); one used a moment ago is not. (SQLAlchemy's
    ``pool_pre_ping`` pings at every checkout: a fifth of the control room's time a run.)"""
    import time

    from sqlalchemy import event
    from sqlalchemy.exc import DisconnectionError

    @event.listens_for(engine, "connect")
    @event.listens_for(engine, "checkin")
    def _idle_from(dbapi: Any, record: Any) -> None:
        record.info["idle_from"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping(dbapi: Any, record: Any, proxy: Any) -> None:
        if time.monotonic() - record.info.get("idle_from", 0.0) > IDLE_PING_SECONDS:
            try:
                engine.dialect.do_ping(dbapi)
            except Exception as closed:  # the pool retries with a new connection
                raise DisconnectionError(str(closed)) from closed


def _private_file(path: Path) -> None:
    """The SQLite file is created private (0600) in a private folder, as the vault is: it holds
    sealed secrets and the audit log. (SQLite gives its -wal and -shm files the same mode.)"""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if os.name != "posix":
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        mode = os.fstat(fd).st_mode
    finally:
        os.close(fd)
    if mode & 0o077:
        raise VaultError(f"the control room's database file {path} can be read or written by "
                         "others: refused", f"Make it private: `chmod 600 {path}`.")
