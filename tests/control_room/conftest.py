"""A control room on a free loopback port over a vault and a database of its own (every test
twice: on a SQLite file, and on a PostgreSQL schema made for it and dropped after it), with the
sandbox as the organizations it proves secrets against (their URLs on 127.0.0.1)."""
from __future__ import annotations

import copy
import datetime as dt
from dataclasses import dataclass

import pytest
import requests

from adobot.control_room.check import connection_check
from adobot.control_room.server import ControlRoom
from adobot.control_room.state import ControlRoomState, open_state
from adobot.control_room.tokens import Tokens
from adobot.credentials.vault import Vault
from tests.postgres import postgres_schema
from adobot.sandbox import Sandbox
from adobot.sandbox.state import default_seed

# A working token the sandbox knows, used as the canary: it must appear in no answer but the
# runner's credential, in no log line and in no file but (sealed) the vault.
CANARY = "canary-pat-6c1f0e9b7a2d4e58"
ORGANIZATIONS = 20  # organizations of the seed: one per concurrent admin


def seed() -> dict:
    data = default_seed()
    contoso = data["organizations"]["contoso"]
    for number in range(ORGANIZATIONS):
        data["organizations"][f"org{number}"] = copy.deepcopy(contoso)
    data["tokens"].append({"token": CANARY, "user": "Canary Admin",
                           "email": "canary@contoso.example", "scopes": ["app_token"]})
    return data


@pytest.fixture
def organizations():
    with Sandbox(seed=seed()) as running:
        yield running


@pytest.fixture
def vault(tmp_path):
    return Vault(tmp_path / "room" / "vault.json")


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path):
    """The control room's database URL: the default SQLite file beside the vault (None), or a
    PostgreSQL schema of this test's own."""
    if request.param == "sqlite":
        yield None
    else:
        with postgres_schema() as url:
            yield url


@pytest.fixture
def state(vault, database):
    with open_state(vault, database, check=connection_check()) as opened:
        yield opened


@pytest.fixture
def room(state, organizations):
    with ControlRoom(state) as running:
        yield running


def stored_bytes(state: ControlRoomState) -> bytes:
    """Everything the store holds, as an attacker with the database would read it: the SQLite
    file, its WAL and its SQL dump; or ``pg_dump`` of the test's schema."""
    import os
    import sqlite3
    import subprocess

    from sqlalchemy.engine import make_url

    url = make_url(state.store.database.url)
    if url.get_backend_name() == "sqlite":
        file = url.database
        with sqlite3.connect(file) as db:
            dump = "\n".join(db.iterdump()).encode()
        files = [path for path in (file, file + "-wal") if os.path.exists(path)]
        return dump + b"".join(open(path, "rb").read() for path in files)
    schema = url.query["options"].split("=", 1)[1]
    return subprocess.run(["pg_dump", "-h", url.host, "-p", str(url.port), "-U", url.username,
                           "-n", schema, url.database], check=True, capture_output=True).stdout


@dataclass
class Caller:
    """Requests to the control room with one API token."""

    url: str
    token: str | None

    def headers(self, extra: dict | None = None) -> dict:
        auth = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return {**auth, **(extra or {})}

    def get(self, path: str, **kwargs) -> requests.Response:
        return requests.get(self.url + path, headers=self.headers(), timeout=30, **kwargs)

    def post(self, path: str, **kwargs) -> requests.Response:
        return requests.post(self.url + path, headers=self.headers(kwargs.pop("headers", None)),
                             timeout=30, **kwargs)

    def put(self, path: str, **kwargs) -> requests.Response:
        return requests.put(self.url + path, headers=self.headers(), timeout=30, **kwargs)

    def patch(self, path: str, **kwargs) -> requests.Response:
        return requests.patch(self.url + path, headers=self.headers(), timeout=30, **kwargs)

    def delete(self, path: str, **kwargs) -> requests.Response:
        return requests.delete(self.url + path, headers=self.headers(), timeout=30, **kwargs)


def issue(state: ControlRoomState, role: str, name: str | None = None, days: float = 30,
          issued_days_ago: float = 0) -> str:
    clock = (lambda: dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=issued_days_ago))
    return Tokens(state.store.tokens, clock=clock).issue(name or f"{role}-one", role,
                                                          days)[1].reveal()


@pytest.fixture
def admin(room, state):
    return Caller(room.url, issue(state, "administrator", "alice"))


@pytest.fixture
def standard(room, state):
    return Caller(room.url, issue(state, "standard", "bob"))


@pytest.fixture
def runner(room, state):
    return Caller(room.url, issue(state, "runner", "build-01"))
