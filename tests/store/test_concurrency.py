"""Two instances, one truth: control rooms on one database see each other's writes, twenty
admins writing on both at once lose nothing, and an edit proved against a connection that
changed meanwhile is refused (optimistic concurrency on the row's version)."""
from __future__ import annotations

import concurrent.futures
import copy
import os
import subprocess
import time

import pytest
import requests

from adobot.control_room.state import open_state
from adobot.credentials.secret import Secret
from adobot.credentials.vault import Vault, generate_key
from adobot.errors import AlreadyExists
from adobot.sandbox import Sandbox
from adobot.sandbox.state import default_seed
from tests.conftest import ADOBOT, DEMO_PAT, free_port
from tests.postgres import postgres_schema

ADMINS = 20


def test_an_edit_proved_against_a_connection_changed_meanwhile_is_refused(tmp_path,
                                                                           database_url):
    vault = Vault(tmp_path / "v" / "vault.json")
    with open_state(vault, database_url, check=lambda c, s: "Someone") as first:
        first.connections.add("contoso-main", "contoso", Secret("first-secret"),
                              project="Payments")
        # a second instance over the same database (its own vault object, the same key)
        with open_state(Vault(vault.path), database_url,
                        check=lambda c, s: "Someone") as second:
            def meanwhile(connection, secret):
                second.connections.edit("contoso-main", project="Billing")
                return "Someone"

            first.connections.check = meanwhile
            with pytest.raises(AlreadyExists) as refused:
                first.connections.edit("contoso-main", secret=Secret("second-secret"),
                                       project="Fabrikam")
            assert "changed by someone else while this edit was being checked" in \
                refused.value.message
            saved = second.connections.get("contoso-main")
            assert saved.project == "Billing"  # the other admin's edit stands, whole
            assert second.connections.credential("contoso-main").secret.reveal() == \
                "first-secret"
            # an edit that proves nothing (who may fetch it) is merged with theirs instead
            first.connections.check = meanwhile
            edited = first.connections.edit("contoso-main", runners=["build-07"])
            assert (edited.runners, edited.project) == (("build-07",), "Billing")


@pytest.fixture
def organizations():
    seed = default_seed()
    for number in range(ADMINS):
        seed["organizations"][f"org{number}"] = copy.deepcopy(seed["organizations"]["contoso"])
    with Sandbox(seed=seed) as running:
        yield running


@pytest.fixture
def two_rooms(tmp_path, organizations):
    """Two `adobot control-room` processes on one PostgreSQL schema; each has a vault file of
    its own and the same vault key (ADOBOT_VAULT_KEY), as two instances behind one name."""
    with postgres_schema() as url:
        env = {**os.environ, "ADOBOT_VAULT_KEY": generate_key(), "ADOBOT_DATABASE_URL": url}
        rooms, processes = [], []
        for name in ("a", "b"):
            port = free_port()
            # its log goes to a file: a pipe nobody reads would stall it once full
            log = open(tmp_path / f"room-{name}.log", "w")
            processes.append(subprocess.Popen(
                [str(ADOBOT), "control-room", "--port", str(port),
                 "--vault", str(tmp_path / name / "vault.json")],
                env=env, stdout=subprocess.DEVNULL, stderr=log))
            log.close()
            rooms.append(f"http://127.0.0.1:{port}")
        try:
            with open_state(Vault(tmp_path / "admin" / "vault.json"), url) as state:
                tokens = [state.tokens.issue(f"admin-{n}", "administrator")[1].reveal()
                          for n in range(ADMINS)]
            for room, process in zip(rooms, processes):
                _wait_until_up(room, tokens[0], process)
            yield rooms, tokens
        finally:
            for process in processes:
                process.terminate()
                process.wait(timeout=30)


def _wait_until_up(room: str, token: str, process: subprocess.Popen) -> None:
    for _ in range(300):
        if process.poll() is not None:
            raise AssertionError(f"the control room at {room} exited ({process.returncode})")
        try:
            if requests.get(room + "/api/v1/me", timeout=5,
                            headers={"Authorization": f"Bearer {token}"}).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"the control room at {room} did not start")


def test_two_control_rooms_on_one_postgresql_share_one_truth(two_rooms, organizations):
    rooms, tokens = two_rooms

    def call(n: int, method: str, path: str, **kwargs) -> requests.Response:
        return requests.request(method, rooms[n % 2] + path, timeout=60,
                                headers={"Authorization": f"Bearer {tokens[n]}"}, **kwargs)

    created = call(0, "POST", "/api/v1/connections",
                   json={"name": "contoso-main", "organization": organizations.org_url(),
                         "pat": DEMO_PAT})
    assert created.status_code == 201, created.text
    listed = call(1, "GET", "/api/v1/connections").json()  # on the other instance
    assert [c["name"] for c in listed["connections"]] == ["contoso-main"]

    # twenty admins at once, half on each instance: each creates a connection, then all edit
    # the first one's default project and register one organization's PAT
    with concurrent.futures.ThreadPoolExecutor(ADMINS) as pool:
        answers = list(pool.map(lambda n: call(n, "POST", "/api/v1/connections", json={
            "name": f"conn-{n}", "organization": organizations.org_url(f"org{n}"),
            "pat": DEMO_PAT, "runners": [f"runner-{n}"]}), range(ADMINS)))
        assert [a.status_code for a in answers] == [201] * ADMINS, [a.text for a in answers]
        edits = list(pool.map(lambda n: call(n, "PATCH", "/api/v1/connections/contoso-main",
                                             json={"runners": [f"runner-{n}"]}), range(ADMINS)))
        assert [e.status_code for e in edits] == [200] * ADMINS, [e.text for e in edits]
        registered = list(pool.map(lambda n: call(n, "POST", "/api/v1/azuredevops/auth/pat",
                                                  data={"organization": organizations.org_url("org0"),
                                                        "pat": DEMO_PAT}), range(ADMINS)))
        assert sorted(r.status_code for r in registered) == [200] * ADMINS
    for n in (0, 1):
        names = [c["name"] for c in call(n, "GET", "/api/v1/connections").json()["connections"]]
        assert names == sorted(["contoso-main", *(f"conn-{i}" for i in range(ADMINS))])
        one = call(n, "GET", "/api/v1/connections/conn-7").json()
        assert one["runners"] == ["runner-7"] and one["status"]["state"] == "connected"
    # every write of both instances is in one audit chain, whole
    audit = call(0, "GET", "/api/v1/audit", params={"limit": 1000}).json()
    assert audit["count"] == 1 + 3 * ADMINS
    assert [e["seq"] for e in audit["entries"]] == list(range(1, 2 + 3 * ADMINS))
