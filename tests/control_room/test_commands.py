"""The admin commands without the service (`adobot connection|token|audit`), `adobot
control-room` itself (TLS, refusals), and a crash in the middle of a write."""
from __future__ import annotations

import json
import os
import subprocess
import time

import pytest
import requests

from adobot.control_room.server import ControlRoom
from adobot.control_room.state import open_state
from adobot.credentials.connections import _name_for, organization_of
from adobot.credentials.secret import Secret
from adobot.credentials.vault import Vault
from adobot.errors import InvalidInput
from adobot.sandbox.tls import make_certificate
from tests.conftest import ADOBOT, DEMO_PAT, free_port
from tests.control_room.conftest import issue


def adobot(*args: str, stdin: str | None = None, env: dict | None = None):
    return subprocess.run([str(ADOBOT), *args], input=stdin, capture_output=True, text=True,
                          timeout=120, env={**os.environ, **(env or {})})


def test_connection_commands(tmp_path, sandbox):
    path = str(tmp_path / "v.json")
    org = sandbox.org_url()
    done = adobot("connection", "add", "contoso-main", "--org", org, "--project", "Payments",
                  "--vault", path, stdin=DEMO_PAT + "\n")
    assert done.returncode == 0, done.stderr
    assert "connected as Sandbox Demo User" in done.stdout
    again = adobot("connection", "add", "contoso-main", "--org", org, "--vault", path,
                   stdin=DEMO_PAT)
    assert again.returncode == 1 and "A connection with this name already exists" in again.stderr
    other = adobot("connection", "add", "second", "--org", org, "--vault", path, stdin=DEMO_PAT)
    assert "A connection for this organization already exists" in other.stderr
    assert "adobot connection edit contoso-main" in other.stderr  # the hint

    listed = json.loads(adobot("connection", "list", "--json", "--vault", path).stdout)
    assert [c["name"] for c in listed] == ["contoso-main"] and listed[0]["project"] == "Payments"

    lacking = adobot("connection", "edit", "contoso-main", "--secret", "--vault", path,
                     stdin="sandbox-work-only-pat")
    assert lacking.returncode == 1 and "the token lacks Code (Read)" in lacking.stderr
    edited = adobot("connection", "edit", "contoso-main", "--secret", "--no-project",
                    "--vault", path, stdin="sandbox-code-read-pat")
    assert edited.returncode == 0 and "connected as Code Reader" in edited.stdout
    with open_state(Vault(path)) as state:
        assert state.connections.get("contoso-main").project is None

    tested = adobot("connection", "test", "contoso-main", "--vault", path)
    assert tested.returncode == 0 and "connected as Code Reader" in tested.stdout
    missing = adobot("connection", "remove", "contoso-main", "nosuch", "--vault", path)
    assert missing.returncode == 2 and "'nosuch'" in missing.stderr
    assert adobot("connection", "remove", "contoso-main", "--vault", path).returncode == 0
    assert json.loads(adobot("connection", "list", "--json", "--vault", path).stdout) == []
    for done in (again, other, lacking, edited, tested):
        assert DEMO_PAT not in done.stdout + done.stderr
    assert "sandbox-code-read-pat" not in edited.stdout + edited.stderr


def test_a_failed_test_exits_1_and_says_why(tmp_path, sandbox):
    path = str(tmp_path / "v.json")
    adobot("connection", "add", "contoso-main", "--org", sandbox.org_url(), "--vault", path,
           stdin=DEMO_PAT)
    sandbox.state.tokens.pop(DEMO_PAT)
    tested = adobot("connection", "test", "contoso-main", "--vault", path)
    assert tested.returncode == 1 and "failed: the token was not accepted" in tested.stdout


def test_token_commands(tmp_path):
    path = str(tmp_path / "v.json")
    issued = adobot("token", "issue", "ci-main", "--role", "administrator", "--days", "7",
                    "--vault", path)
    assert issued.returncode == 0, issued.stderr
    token = issued.stdout.strip()
    assert token.startswith("adobot_") and "shown once" in issued.stderr
    with open_state(Vault(path)) as state:
        assert state.tokens.verify(token).role == "administrator"
    for file in tmp_path.iterdir():  # the database beside the vault keeps its hash only
        assert token.encode() not in file.read_bytes(), file
    twice = adobot("token", "issue", "ci-main", "--role", "standard", "--vault", path)
    assert twice.returncode == 1 and "already exists" in twice.stderr
    too_long = adobot("token", "issue", "ci-other", "--role", "runner", "--days", "400",
                      "--vault", path)
    assert too_long.returncode == 2 and "366 days" in too_long.stderr
    listed = json.loads(adobot("token", "list", "--json", "--vault", path).stdout)
    assert [(t["name"], t["state"]) for t in listed] == [("ci-main", "active")]
    assert token not in json.dumps(listed)
    assert adobot("token", "revoke", "ci-main", "--vault", path).returncode == 0
    listed = json.loads(adobot("token", "list", "--json", "--vault", path).stdout)
    assert listed[0]["state"] == "revoked"


def test_the_audit_command(tmp_path, organizations, vault, state, database):
    where = ["--vault", str(vault.path)] + (["--database", database] if database else [])
    with ControlRoom(state) as room:
        token = issue(state, "administrator", "alice")
        requests.post(room.url + "/api/v1/azuredevops/auth/pat", timeout=30,
                      headers={"Authorization": f"Bearer {token}"},
                      data={"organization": organizations.org_url(), "pat": DEMO_PAT})
    done = adobot("audit", *where)
    assert done.returncode == 0 and "pat.register" in done.stdout and "alice" in done.stdout
    assert DEMO_PAT not in done.stdout
    entries = json.loads(adobot("audit", "--json", *where).stdout)
    assert entries[0]["organization"] == organizations.org_url() and entries[0]["actor"] == "alice"
    assert entries[0]["event"] == "pat.register" and entries[0]["outcome"] == "ok"
    verified = adobot("audit", "--verify", *where)
    assert verified.returncode == 0 and "whole: 1 rows" in verified.stdout


def test_validate_accepts_a_connect_by_connection(tmp_path):
    bot = tmp_path / "b.yaml"
    bot.write_text("name: b\nsteps:\n  - action: Connect\n    inputs: {connection: contoso-main}\n"
                   "  - action: ListRepos\n")
    done = adobot("validate", str(bot))
    assert done.returncode == 0, done.stdout + done.stderr
    bot.write_text("name: b\nsteps:\n  - action: Connect\n    inputs: {project: Payments}\n")
    done = adobot("validate", str(bot))
    assert done.returncode == 2 and "organization_url is required (or name a connection)" in \
        done.stdout + done.stderr



def test_the_control_room_command_serves_until_stopped(tmp_path):
    path = str(tmp_path / "v.json")
    token = adobot("token", "issue", "alice", "--role", "standard", "--vault", path).stdout.strip()
    port = free_port()
    server = subprocess.Popen([str(ADOBOT), "control-room", "--port", str(port), "--vault", path],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        answer = None
        for _ in range(200):
            try:
                answer = requests.get(f"http://127.0.0.1:{port}/api/v1/me", timeout=5,
                                      headers={"Authorization": f"Bearer {token}"})
                break
            except requests.ConnectionError:
                time.sleep(0.05)
        assert answer is not None and answer.json() == {
            "name": "alice", "role": "standard", "expires_at": answer.json()["expires_at"]}
    finally:
        server.terminate()
        _, err = server.communicate(timeout=30)
    assert token not in err


@pytest.mark.parametrize("args, said", [
    (["--host", "0.0.0.0"], "clear text"),
    (["--certificate", "c.pem"], "--certificate and --key go together"),
    (["--port", "70000"], "not a TCP port"),
])
def test_the_control_room_refuses_an_unsafe_listener(tmp_path, args, said):
    done = adobot("control-room", *args, "--vault", str(tmp_path / "v.json"))
    assert done.returncode == 2 and said in done.stderr


def test_the_control_room_over_tls(tmp_path, vault, state):
    certificate, key = make_certificate(tmp_path)
    token = issue(state, "standard", "bob")
    with ControlRoom(state, certificate=str(certificate), key=str(key)) as room:
        assert room.url.startswith("https://")
        answer = requests.get(room.url + "/api/v1/connections", verify=str(certificate),
                              headers={"Authorization": f"Bearer {token}"}, timeout=30)
        assert answer.status_code == 200 and answer.json()["count"] == 0


def test_a_crash_in_the_middle_of_a_write_leaves_the_old_state_whole(tmp_path, sandbox,
                                                                      monkeypatch):
    from adobot.store.connections import SqlConnections

    vault = Vault(tmp_path / "v.json")
    state = open_state(vault, check=lambda connection, secret: "someone")
    state.connections.add("first-conn", sandbox.org_url(), Secret(DEMO_PAT))
    written = SqlConnections.insert

    def crash_after_writing(self, record):
        with self.database.writing() as db:  # the row is written, then the power goes
            from sqlalchemy import insert

            from adobot.store.connections import values_of
            from adobot.store.models import ConnectionRow
            db.execute(insert(ConnectionRow).values(**{**values_of(record), "version": 1}))
            raise OSError("the machine lost power")

    monkeypatch.setattr(SqlConnections, "insert", crash_after_writing)
    with pytest.raises(OSError):
        state.connections.add("second-conn", sandbox.org_url("other"), Secret(DEMO_PAT))
    monkeypatch.setattr(SqlConnections, "insert", written)
    assert [c.name for c in state.connections.list()] == ["first-conn"]
    assert state.connections.credential("first-conn").secret.reveal() == DEMO_PAT
    state.connections.add("second-conn", sandbox.org_url("other"), Secret(DEMO_PAT))
    assert [c.name for c in state.connections.list()] == ["first-conn", "second-conn"]
    state.close()


@pytest.mark.parametrize("organization, expected", [
    ("contoso", "https://dev.azure.com/contoso"),
    ("a", "https://dev.azure.com/a"),
    ("9lives", "https://dev.azure.com/9lives"),
    ("https://fabrikam.visualstudio.com", "https://fabrikam.visualstudio.com"),
    ("https://ado.example.com/tfs/DefaultCollection", "https://ado.example.com/tfs/DefaultCollection"),
])
def test_organizations_by_name_or_url(organization, expected):
    assert organization_of(organization).base_url == expected


@pytest.mark.parametrize("organization", ["-lead", "trail-", "a" * 51, "has space", "a_b",
                                          "http://ado.example.com/coll"])
def test_organizations_that_are_refused(organization):
    with pytest.raises(InvalidInput) as refused:
        organization_of(organization)
    assert refused.value.field == "organization"


@pytest.mark.parametrize("organization, taken, expected", [
    ("contoso", set(), "contoso"),
    ("contoso", {"contoso"}, "contoso-2"),
    ("contoso", {"CONTOSO", "contoso-2"}, "contoso-3"),
    ("9lives", set(), "ado-9lives"),
    ("ab", set(), "ab0"),
    ("x" * 50, set(), "x" * 28),
])
def test_names_for_registered_organizations(organization, taken, expected):
    name = _name_for(organization, taken)
    assert name == expected
