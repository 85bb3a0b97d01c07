"""Bots that connect by connection: a remote bot runner fetching the credential from the control
room for one run (`adobot run --control-room`), the local vault's connections, the audit log,
where a connection's secret may go, and a canary secret that leaks nowhere."""
from __future__ import annotations

import json
import logging
import os
import subprocess

import pytest

from adobot.control_room.check import connection_check
from adobot.control_room.state import open_state
from adobot.credentials.secret import Secret
from adobot.credentials.vault import Vault
from adobot.runtime.loader import parse_bot
from adobot.runtime.runner import Runner
from adobot.runtime.environment import Settings, build_environment
from tests.conftest import ADOBOT, DEMO_PAT, Listener
from tests.control_room.conftest import CANARY, issue, stored_bytes

BOT = """
name: release-notes
steps:
  - action: Connect
    inputs: {{connection: {connection}{more}}}
    outputs: {{project_name: project, user: user}}
  - action: ListRepos
    outputs: {{count: repo_count}}
"""


def bot_file(tmp_path, connection="contoso-main", more="") -> str:
    path = tmp_path / "bot.yaml"
    path.write_text(BOT.format(connection=connection, more=more))
    return str(path)


def run_remote(tmp_path, room, token, *args, env=None):
    """`adobot run --control-room` on a "runner machine": its own empty home, no vault."""
    home = tmp_path / "runner-home"
    home.mkdir(exist_ok=True)
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
           "ADOBOT_CONTROL_ROOM_TOKEN": token, **(env or {})}
    done = subprocess.run([str(ADOBOT), "run", *args, "--control-room", room.url, "--json"],
                          capture_output=True, text=True, env=env, timeout=120)
    return done, json.loads(done.stdout) if done.stdout.strip() else None


@pytest.fixture
def connection(admin, organizations):
    answer = admin.post("/api/v1/connections", json={
        "name": "contoso-main", "organization": organizations.org_url(), "project": "Payments",
        "pat": CANARY})
    assert answer.status_code == 201, answer.text
    return answer.json()


def test_a_remote_runner_fetches_the_credential_for_one_run(tmp_path, room, runner, connection,
                                                            state):
    done, result = run_remote(tmp_path, room, runner.token, bot_file(tmp_path))
    assert done.returncode == 0, done.stderr
    assert result["variables"]["project"] == "Payments"
    assert result["variables"]["user"] == "Canary Admin"
    assert result["variables"]["repo_count"] >= 1
    assert CANARY not in done.stdout + done.stderr
    # the runner wrote nothing: no vault, no key, no file at all in its home
    assert [p for p in (tmp_path / "runner-home").rglob("*")] == []
    fetches = state.audit.read(event="credential.fetch")
    assert len(fetches) == 1
    assert fetches[0]["actor"] == "build-01" and fetches[0]["role"] == "runner"
    assert fetches[0]["connection"] == "contoso-main" and fetches[0]["outcome"] == "ok"
    assert fetches[0]["run"]["bot"] == "release-notes" and fetches[0]["run"]["run"]


def test_the_bots_project_overrides_the_connections(tmp_path, room, runner, connection,
                                                    organizations):
    done, result = run_remote(tmp_path, room, runner.token,
                              bot_file(tmp_path, more=", project: Payments"))
    assert done.returncode == 0, done.stderr
    done, result = run_remote(tmp_path, room, runner.token,
                              bot_file(tmp_path, more=", project: NoSuchProject"))
    assert done.returncode == 1 and result["error"]["code"] == "NOT_FOUND"


def test_a_connection_that_does_not_exist_is_named(tmp_path, room, runner, connection):
    done, result = run_remote(tmp_path, room, runner.token, bot_file(tmp_path, "nosuch-conn"))
    assert done.returncode == 2  # as a vault credential that is not there: nothing was sent
    assert result["error"]["code"] == "CREDENTIAL_NOT_FOUND"
    assert "'nosuch-conn'" in result["error"]["message"]


def test_a_bot_cannot_point_a_connection_at_another_host(tmp_path, room, runner, connection,
                                                         state):
    elsewhere = Listener()
    url = f"http://127.0.0.1:{elsewhere.port}/contoso"
    done, result = run_remote(tmp_path, room, runner.token,
                              bot_file(tmp_path, more=f", organization_url: '{url}'"))
    assert done.returncode == 1 and result["error"]["code"] == "PERMISSION_DENIED"
    assert "may be used only with its own organization" in result["error"]["message"]
    assert elsewhere.connections == 0 and not elsewhere.received
    assert state.audit.read(event="credential.fetch")[0]["outcome"].startswith("refused")


def test_runners_and_roles_a_connection_is_limited_to(tmp_path, room, state, admin, connection):
    admin.patch("/api/v1/connections/contoso-main", json={"runners": ["build-02"]})
    other = issue(state, "runner", "build-01")
    done, result = run_remote(tmp_path, room, other, bot_file(tmp_path))
    assert done.returncode == 1 and result["error"]["code"] == "PERMISSION_DENIED"
    assert "limited to build-02" in result["error"]["message"]
    allowed = issue(state, "runner", "build-02")
    assert run_remote(tmp_path, room, allowed, bot_file(tmp_path))[0].returncode == 0
    # administrators fetch only where a connection allows their role
    credential = "/api/v1/connections/contoso-main/credential"
    assert admin.post(credential, json={}).status_code == 403
    admin.patch("/api/v1/connections/contoso-main", json={"roles": ["runner", "administrator"]})
    answer = admin.post(credential, json={"bot": "by-hand"})
    assert answer.status_code == 200 and answer.headers["Cache-Control"] == "no-store"


def test_a_netrc_entry_for_the_control_rooms_host_changes_nothing(tmp_path, room, runner,
                                                                  connection, organizations):
    """The runner's client rides on RestClient, which never reads ~/.netrc: an entry for the
    control room's host does not replace the runner's bearer token, and a proxy named in the
    environment is not used for plain http."""
    home = tmp_path / "runner-home"
    home.mkdir()
    netrc = home / ".netrc"
    netrc.write_text("machine 127.0.0.1 login mallory password netrc-password\n")
    netrc.chmod(0o600)
    done, result = run_remote(tmp_path, room, runner.token, bot_file(tmp_path),
                              env={"HTTP_PROXY": "http://127.0.0.1:9", "NETRC": str(netrc)})
    assert done.returncode == 0, done.stderr
    assert result["variables"]["user"] == "Canary Admin"


@pytest.mark.parametrize("token, said", [("", "needs the runner's token"),
                                         ("adobot_wrong", "refused the token")])
def test_a_runner_without_a_valid_token(tmp_path, room, connection, token, said):
    done, result = run_remote(tmp_path, room, token, bot_file(tmp_path))
    assert done.returncode in (1, 2) and said in result["error"]["message"]


def test_control_room_and_sandbox_do_not_go_together(tmp_path, room, runner, connection):
    done, result = run_remote(tmp_path, room, runner.token, bot_file(tmp_path), "--sandbox")
    assert done.returncode == 2 and "--sandbox" in result["error"]["message"]


def test_the_local_vaults_connections(tmp_path, sandbox):
    """An admin's own machine: the connection is in the local vault."""
    vault = Vault(tmp_path / "v.json")
    with open_state(vault, check=connection_check()) as state:
        state.connections.add("contoso-main", sandbox.org_url(), Secret(DEMO_PAT),
                              project="Payments")
    runner = Runner(build_environment(Settings(vault=str(vault.path))))
    result = runner.run(parse_bot(BOT.format(connection="contoso-main", more="")))
    assert result.status == "succeeded", result.error
    missing = runner.run(parse_bot(BOT.format(connection="other-conn", more="")))
    assert missing.error["code"] == "CREDENTIAL_NOT_FOUND" and missing.exit_code == 2


@pytest.mark.parametrize("more, said", [
    (", personal_access_token: {variable: pat}", "do not go with connection"),
    (", authentication_method: pat", "do not go with connection"),
])
def test_connection_excludes_a_sign_in_of_the_bot(tmp_path, more, said):
    result = Runner().run(parse_bot(BOT.format(connection="contoso-main", more=more)))
    assert result.error["code"] == "INVALID_INPUT" and said in result.error["message"]
    assert result.exit_code == 2


def test_the_canary_appears_in_no_answer_log_or_file(tmp_path, room, admin, standard, runner,
                                                     organizations, vault, state, caplog):
    caplog.set_level(logging.DEBUG)
    answers = [admin.post("/api/v1/azuredevops/auth/pat",
                          data={"organization": organizations.org_url(), "pat": CANARY})]
    answers += [admin.patch("/api/v1/connections/contoso", json={"project": "Payments"}),
                admin.post("/api/v1/connections/contoso/test"),
                admin.get("/api/v1/connections"), standard.get("/api/v1/connections"),
                admin.get("/api/v1/connections/contoso"), admin.get("/api/v1/audit"),
                standard.post("/api/v1/connections/contoso/credential", json={}),
                admin.post("/api/v1/azuredevops/auth/pat",
                           data={"organization": organizations.org_url("nosuch"),
                                 "pat": CANARY}),
                admin.post("/api/v1/connections", json={"name": "x", "organization": "contoso",
                                                        "pat": CANARY})]
    assert [a.status_code for a in answers] == [201, 200, 200, 200, 200, 200, 200, 403, 422, 422]
    done, _ = run_remote(tmp_path, room, runner.token, bot_file(tmp_path, "contoso"))
    assert done.returncode == 0, done.stderr
    for answer in answers:
        assert CANARY not in answer.text and CANARY not in str(answer.headers)
    assert CANARY not in done.stdout + done.stderr + caplog.text
    for path in vault.path.parent.rglob("*"):
        if path.is_file():
            assert CANARY.encode() not in path.read_bytes(), path
            assert oct(path.stat().st_mode & 0o777) == "0o600", path
    assert b"contoso" in stored_bytes(state) and CANARY.encode() not in stored_bytes(state)
    # only the runner's own answer carries it, and only for its run
    fetched = runner.post("/api/v1/connections/contoso/credential", json={"bot": "b"})
    assert fetched.json()["secret"] == CANARY


def test_the_audit_log_says_who_did_what(admin, standard, runner, organizations, vault):
    admin.post("/api/v1/connections", json={"name": "contoso-main", "pat": DEMO_PAT,
                                            "organization": organizations.org_url()})
    standard.delete("/api/v1/connections/contoso-main")
    runner.post("/api/v1/connections/contoso-main/credential", json={"bot": "nightly"})
    admin.post("/api/v1/azuredevops/auth/pat",
               data={"organization": organizations.org_url(), "pat": "sandbox-expired-pat"})
    entries = admin.get("/api/v1/audit").json()["entries"]
    seen = [(e["event"], e["actor"], e["outcome"].split(":")[0]) for e in entries]
    assert seen == [("connection.create", "alice", "ok"),
                    ("credential.fetch", "build-01", "ok"),
                    ("pat.register", "alice", "refused")]
    assert all(e["at"] and e["client"] == "127.0.0.1" for e in entries)
    assert "sandbox-expired-pat" not in json.dumps(entries) and DEMO_PAT not in json.dumps(entries)
    only = admin.get("/api/v1/audit", params={"event": "credential.fetch"}).json()
    assert only["count"] == 1 and only["entries"][0]["run"] == {"bot": "nightly"}


def test_a_service_principal_connection(tmp_path):
    """A connection may hold an app's client secret: proved by signing in as the app, used by
    Connect as the app (the sandbox plays Entra)."""
    from adobot.errors import AuthFailed
    from adobot.sandbox import Sandbox
    from tests.sandbox.test_entra import SECRET, TENANT, seed

    with Sandbox(seed=seed()) as entra:
        vault = Vault(tmp_path / "v.json")
        state = open_state(vault, check=connection_check(entra.route, entra.entra_route()))
        connections = state.connections
        app = {"authentication_method": "service_principal", "tenant_id": TENANT,
               "client_id": "sp-secret", "project": "Payments"}
        with pytest.raises(AuthFailed):
            connections.add("release-app", "contoso", Secret("wrong-secret"), **app)
        assert connections.list() == []
        connections.add("release-app", "contoso", Secret(SECRET), **app)
        runner = Runner(build_environment(Settings(vault=str(vault.path), sandbox=entra)))
        result = runner.run(parse_bot(BOT.format(connection="release-app", more="")))
        assert result.status == "succeeded", result.error
        assert SECRET not in json.dumps(result.to_dict())
        state.close()


def test_the_python_api_connects_by_connection(tmp_path, sandbox):
    from adobot import api

    vault = Vault(tmp_path / "v.json")
    with open_state(vault, check=connection_check()) as state:
        state.connections.add("contoso-main", sandbox.org_url(), Secret(DEMO_PAT),
                              project="Payments")
    with api.Context(vault=str(vault.path)) as ctx:
        connected = ctx.run("Connect", connection="contoso-main")
        assert connected["project_name"] == "Payments"


def test_a_runner_gets_an_access_token_never_the_apps_secret(tmp_path, vault, database):
    """A service principal's connection: the control room signs the app in (Entra played by
    the sandbox, over TLS) and hands a runner an access token of at most an hour, reused while
    it has ten minutes left; the client secret is in no answer, output or stored byte."""
    import time

    from adobot.control_room.server import ControlRoom
    from adobot.sandbox import Sandbox
    from tests.control_room.conftest import Caller
    from tests.sandbox.test_entra import SECRET, TENANT, seed

    with Sandbox(seed=seed()) as entra, open_state(
            vault, database, check=connection_check(entra=entra.entra_route()),
            entra=entra.entra_route()) as state, ControlRoom(state) as room:
        admin = Caller(room.url, issue(state, "administrator", "alice"))
        added = admin.post("/api/v1/connections", json={
            "name": "release-app", "organization": entra.org_url(), "project": "Payments",
            "authentication_method": "service_principal", "tenant_id": TENANT,
            "client_id": "sp-secret", "pat": SECRET})
        assert added.status_code == 201, added.text
        runner = Caller(room.url, issue(state, "runner", "build-01"))
        handed = [runner.post("/api/v1/connections/release-app/credential", json={}).json()
                  for _ in range(2)]
        assert handed[0]["authentication_method"] == "access_token"
        assert handed[0]["secret"] != SECRET and handed[0]["secret"] == handed[1]["secret"]
        assert time.time() + 600 < handed[0]["expires_on"] <= time.time() + 3600
        done, result = run_remote(tmp_path, room, runner.token,
                                  bot_file(tmp_path, "release-app"))
        assert done.returncode == 0, done.stderr
        assert result["variables"]["user"] == "Release Bot"
        assert SECRET not in json.dumps(handed) + done.stdout + done.stderr
        assert SECRET.encode() not in stored_bytes(state)


@pytest.mark.parametrize("fields, user", [
    ({"client_id": "mi-1"}, "Prod VM"),
    ({"tenant_id": "99999999-8888-7777-6666-555555555555", "client_id": "xt-app",
      "managed_identity_client_id": "mi-1"}, "Cross-tenant App"),
])
def test_a_managed_identity_connection_holds_no_secret(tmp_path, vault, database, monkeypatch,
                                                       fields, user):
    """The control room's own managed identity (in its tenant, or as the assertion of an app in
    the organization's): the connection holds no secret, is tested by signing in, and a runner
    gets an access token."""
    from adobot.control_room.server import ControlRoom
    from adobot.sandbox import Sandbox
    from tests.control_room.conftest import Caller
    from tests.integration.test_entra_connect import across_tenants

    for name in ("IDENTITY_ENDPOINT", "IDENTITY_HEADER"):  # set by the sign-in: undone after
        monkeypatch.setenv(name, "")
    with Sandbox(seed=across_tenants()) as entra, open_state(
            vault, database, check=connection_check(entra=entra.entra_route()),
            entra=entra.entra_route()) as state, ControlRoom(state) as room:
        admin = Caller(room.url, issue(state, "administrator", "alice"))
        connection = {"name": "prod-vm", "organization": entra.org_url(), "project": "Payments",
                      "authentication_method": "managed_identity", **fields}
        refused = admin.post("/api/v1/connections", json={**connection, "pat": "a-pat"})
        assert refused.status_code == 422 and "holds no secret" in refused.text
        added = admin.post("/api/v1/connections", json=connection)
        assert added.status_code == 201, added.text
        assert added.json()["status"] == {**added.json()["status"], "state": "connected",
                                          "user": user}
        runner = Caller(room.url, issue(state, "runner", "build-01"))
        handed = runner.post("/api/v1/connections/prod-vm/credential", json={}).json()
        assert handed["authentication_method"] == "access_token" and handed["expires_on"]
        done, result = run_remote(tmp_path, room, runner.token, bot_file(tmp_path, "prod-vm"))
        assert done.returncode == 0, done.stderr
        assert result["variables"]["user"] == user


def test_a_runner_asks_again_as_its_access_token_nears_its_end(tmp_path, vault, database):
    """Tokens that live less than a second: the runner's Connect renews by asking the control
    room again (each ask audited), and a loop of the bot goes on through many of them."""
    from adobot.control_room.server import ControlRoom
    from adobot.sandbox import Sandbox
    from tests.control_room.conftest import Caller
    from tests.sandbox.test_entra import SECRET, TENANT, seed

    with Sandbox(seed=seed(lifetime=0.3)) as entra, open_state(
            vault, database, check=connection_check(entra=entra.entra_route()),
            entra=entra.entra_route()) as state, ControlRoom(state) as room:
        admin = Caller(room.url, issue(state, "administrator", "alice"))
        assert admin.post("/api/v1/connections", json={
            "name": "release-app", "organization": entra.org_url(), "project": "Payments",
            "authentication_method": "service_principal", "tenant_id": TENANT,
            "client_id": "sp-secret", "client_secret": SECRET}).status_code == 201
        bot = tmp_path / "loop.yaml"
        bot.write_text("name: loop\nvariables: {items: " + str(list(range(30))) + "}\n"
                       "steps:\n  - action: Connect\n    inputs: {connection: release-app}\n"
                       "  - for_each: ${items}\n    as: i\n    steps:\n"
                       "      - action: ListRepos\n")
        runner = issue(state, "runner", "build-01")
        done, result = run_remote(tmp_path, room, runner, str(bot))
        assert done.returncode == 0, done.stderr
        fetches = state.audit.read(event="credential.fetch")
        assert len(fetches) >= 3, fetches  # the first token, then one a second or so
