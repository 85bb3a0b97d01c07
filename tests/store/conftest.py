"""Each store test runs twice: on a SQLite file of its own, and on a PostgreSQL schema made for
it and dropped after it (skipped, with the reason, where no PostgreSQL answers)."""
from __future__ import annotations

import pytest

from adobot.store import open_store
from tests.postgres import postgres_schema


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        folder = tmp_path / "store"
        folder.mkdir(mode=0o700)
        yield f"sqlite:///{folder / 'room.db'}"
    else:
        with postgres_schema() as url:
            from adobot.store.database import database_url as normalized

            yield normalized(url, tmp_path)


@pytest.fixture
def store(database_url):
    opened = open_store(database_url)
    yield opened
    opened.close()
