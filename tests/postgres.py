"""PostgreSQL for tests: the server on 127.0.0.1:5432 (trust authentication) unless
``ADOBOT_TEST_POSTGRES`` names another. Each test gets a schema of its own, dropped after it;
where no server answers, the tests that need one are skipped and say why
(``python -m tests.postgres`` prints that reason before ``make test`` starts)."""
from __future__ import annotations

import contextlib
import functools
import os
import sys
import uuid
from typing import Iterator
from urllib.parse import quote

import pytest

ADMIN_URL = os.environ.get("ADOBOT_TEST_POSTGRES",
                           "postgresql://postgres@127.0.0.1:5432/postgres")


@functools.cache
def unavailable() -> str | None:
    """Why PostgreSQL cannot be used for tests, or None when it can."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install 'adobot[postgresql]')"
    try:
        with psycopg.connect(ADMIN_URL, connect_timeout=3) as connection:
            connection.execute("SELECT 1")
    except psycopg.Error as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"no PostgreSQL answers at {ADMIN_URL} ({reason}); set ADOBOT_TEST_POSTGRES"
    return None


def admin() -> "object":
    import psycopg

    return psycopg.connect(ADMIN_URL, autocommit=True)


@contextlib.contextmanager
def postgres_schema() -> Iterator[str]:
    """A database URL whose tables live in a new schema, dropped (with all in it) afterwards."""
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    schema = f"adobot_test_{uuid.uuid4().hex[:12]}"
    with admin() as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    separator = "&" if "?" in ADMIN_URL else "?"
    try:
        yield f"{ADMIN_URL}{separator}options={quote(f'-csearch_path={schema}')}"
    finally:
        with admin() as connection:
            connection.execute(f'DROP SCHEMA "{schema}" CASCADE')


if __name__ == "__main__":
    why = unavailable()
    if why:
        print(f"NOTE: the PostgreSQL tests of the control room's store will be SKIPPED: {why}.",
              file=sys.stderr)
