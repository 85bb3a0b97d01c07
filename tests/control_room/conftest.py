"""A control room on a free loopback port over a vault of its own, with the sandbox as the
organizations it proves secrets against (their URLs on 127.0.0.1)."""
from __future__ import annotations

import copy
import datetime as dt
from dataclasses import dataclass

import pytest
import requests

from adobot.control_room.server import ControlRoom
from adobot.control_room.tokens import Tokens
from adobot.credentials.vault import Vault
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


@pytest.fixture
def room(vault, organizations):
    with ControlRoom(vault) as running:
        yield running


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

    def patch(self, path: str, **kwargs) -> requests.Response:
        return requests.patch(self.url + path, headers=self.headers(), timeout=30, **kwargs)

    def delete(self, path: str, **kwargs) -> requests.Response:
        return requests.delete(self.url + path, headers=self.headers(), timeout=30, **kwargs)


def issue(vault: Vault, role: str, name: str | None = None, days: float = 30,
          issued_days_ago: float = 0) -> str:
    clock = (lambda: dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=issued_days_ago))
    return Tokens(vault, clock=clock).issue(name or f"{role}-one", role, days)[1].reveal()


@pytest.fixture
def admin(room, vault):
    return Caller(room.url, issue(vault, "administrator", "alice"))


@pytest.fixture
def standard(room, vault):
    return Caller(room.url, issue(vault, "standard", "bob"))


@pytest.fixture
def runner(room, vault):
    return Caller(room.url, issue(vault, "runner", "build-01"))
