"""The schema belongs to Alembic: a fresh database is brought to the head, an up-to-date one is
left alone, and `adobot db upgrade` says which."""
from __future__ import annotations

import subprocess

from adobot.store import open_store
from adobot.store.database import HEAD, Database, database_url
from tests.conftest import ADOBOT


def test_head_is_alembics_head():
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from adobot.store import database

    config = Config()
    config.set_main_option("script_location",
                           str(database.__file__).replace("database.py", "migrations"))
    assert ScriptDirectory.from_config(config).get_current_head() == HEAD


def test_a_fresh_database_is_upgraded_once(database_url):
    database = Database(database_url)
    assert database.revision() is None
    assert database.upgrade() is True and database.revision() == HEAD
    assert database.upgrade() is False
    database.dispose()


def test_the_command(tmp_path, database_url):
    args = [str(ADOBOT), "db", "upgrade", "--vault", str(tmp_path / "v" / "vault.json"),
            "--database", database_url]
    first = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert first.returncode == 0 and f"upgraded from empty to {HEAD}" in first.stdout, first
    second = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert second.returncode == 0 and f"already at {HEAD}" in second.stdout


def test_the_default_is_a_private_sqlite_file_beside_the_vault(tmp_path, monkeypatch):
    monkeypatch.delenv("ADOBOT_DATABASE_URL", raising=False)
    url = database_url(None, tmp_path / "room" / "vault.json")
    assert url == f"sqlite:///{tmp_path / 'room' / 'vault.db'}"
    store = open_store(url)
    store.close()
    assert oct((tmp_path / "room" / "vault.db").stat().st_mode & 0o777) == "0o600"
    assert oct((tmp_path / "room").stat().st_mode & 0o777) == "0o700"


def test_urls(tmp_path, monkeypatch):
    monkeypatch.setenv("ADOBOT_DATABASE_URL", "postgresql://room@db.example/adobot")
    assert database_url(None, tmp_path / "v.json") == "postgresql+psycopg://room@db.example/adobot"
    assert database_url("postgres://a@h/d", tmp_path / "v.json") == "postgresql+psycopg://a@h/d"
    import pytest

    from adobot.errors import InvalidInput

    with pytest.raises(InvalidInput) as refused:
        database_url("mysql://root@localhost/adobot", tmp_path / "v.json")
    assert refused.value.field == "--database" and "postgresql://" in refused.value.hint


def test_a_database_that_does_not_answer_is_named_without_its_password(tmp_path):
    import socket

    import pytest

    from adobot.errors import VaultError

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens there
    with pytest.raises(VaultError) as refused:
        open_store(f"postgresql+psycopg://room:hunter2-secret@127.0.0.1:{port}/adobot")
    assert f"127.0.0.1:{port}/adobot" in refused.value.message
    assert "hunter2-secret" not in refused.value.message + refused.value.hint


def test_a_postgresql_connection_closed_while_idle_is_replaced(monkeypatch):
    """The server dropped a pooled connection (it restarted, or a proxy timed it out): the
    next use after an idle spell pings it first and takes a new one, rather than failing."""
    import pytest
    from sqlalchemy import text

    from adobot.store import database as module
    from tests.postgres import admin, postgres_schema

    with postgres_schema() as url:
        db = Database(database_url(url, "."))
        with db.reading() as connection:
            first = connection.execute(text("SELECT pg_backend_pid()")).scalar()
        with admin() as server:
            server.execute("SELECT pg_terminate_backend(%s)", (first,))
        monkeypatch.setattr(module, "IDLE_PING_SECONDS", 0.0)  # every checkout counts as idle
        with db.reading() as connection:
            second = connection.execute(text("SELECT pg_backend_pid()")).scalar()
        assert second != first
        # without the ping, the dropped connection is found only by the query it fails
        with db.reading() as connection:
            third = connection.execute(text("SELECT pg_backend_pid()")).scalar()
        with admin() as server:
            server.execute("SELECT pg_terminate_backend(%s)", (third,))
        monkeypatch.setattr(module, "IDLE_PING_SECONDS", 3600.0)
        with pytest.raises(module.VaultError):
            with db.reading() as connection:
                connection.execute(text("SELECT 1"))
        db.dispose()
