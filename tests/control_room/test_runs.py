"""Issue #32, on one machine: bots uploaded as versioned bundles, runs started over the API and
executed by the control room's own worker pool, their states, failures, retries, cancels and
history — over real HTTP, on SQLite and on PostgreSQL."""
from __future__ import annotations

import json
import time

import pytest

from tests.control_room.conftest import CANARY, Caller, issue, stored_bytes

CONNECT_PAT = ("  - action: Connect\n    inputs: {{organization_url: '{org}', project: Payments, "
               "personal_access_token: {{variable: pat}}}}\n")
LIST = "  - action: ListRepos\n    outputs: {repositories: repos}\n"


def bundle(org: str, *, name: str = "nightly", steps: str = LIST, settings: str = "",
           variables: tuple[str, ...] = ("pat",)) -> dict:
    main = f"name: {name}\n{settings}steps:\n{CONNECT_PAT.format(org=org)}{steps}" \
           "  - action: RunBot\n    inputs: {bot: child/report.yaml}\n"
    child = "name: report\nsteps:\n  - action: ReadCsv\n    inputs: {path: ../data/teams.csv}\n"
    return {"main": "nightly.yaml", "variables": list(variables),
            "files": {"nightly.yaml": main, "child/report.yaml": child,
                      "data/teams.csv": "team,lead\npayments,alice\n"}}


@pytest.fixture
def running(state, organizations):
    """The control room with its own worker pool (two runs at once)."""
    from adobot.control_room.server import ControlRoom

    state.run_bots(workers=2, idle_seconds=0.1)
    with ControlRoom(state) as room:
        yield room


@pytest.fixture
def bob(running, state):
    return Caller(running.url, issue(state, "standard", "bob"))


def wait_for(caller: Caller, run_id: str, *states: str, seconds: float = 60) -> dict:
    deadline = time.monotonic() + seconds
    while True:
        run = caller.get(f"/api/v1/runs/{run_id}").json()
        if run["state"] in states or time.monotonic() > deadline:
            return run
        time.sleep(0.1)


def test_a_bundle_is_checked_and_each_content_is_one_version(bob, organizations):
    made = bob.post("/api/v1/bots", json=bundle(organizations.org_url()))
    assert made.status_code == 201, made.text
    first = made.json()
    assert first["name"] == "nightly" and first["version"] == 1 and len(first["digest"]) == 64
    assert first["files"]["data/teams.csv"] == len("team,lead\npayments,alice\n") and first["variables"] == ["pat"]
    again = bob.post("/api/v1/bots", json=bundle(organizations.org_url()))
    assert again.status_code == 200 and again.json()["version"] == 1
    changed = bob.post("/api/v1/bots", json=bundle(organizations.org_url(), steps=LIST * 2))
    assert changed.status_code == 201 and changed.json()["version"] == 2
    assert [b["version"] for b in bob.get("/api/v1/bots/nightly").json()["bots"]] == [2, 1]
    assert bob.get("/api/v1/bots").json()["bots"][0]["version"] == 2

    broken = bundle(organizations.org_url(), steps="  - action: ListRepoz\n  - action: "
                    "CreateRepo\n    inputs: {name: '${service}'}\n")
    refused = bob.post("/api/v1/bots", json=broken)
    assert refused.status_code == 422, refused.text
    error = refused.json()["error"]
    assert error["code"] == "INVALID_BOT" and "ListRepoz" in error["message"]
    assert "'service' is not defined" in error["message"]  # every problem, not the first
    escaping = bundle(organizations.org_url())
    escaping["files"]["../outside.yaml"] = "name: x\nsteps: []\n"
    answer = bob.post("/api/v1/bots", json=escaping)
    assert answer.status_code == 422 and answer.json()["error"]["field"] == "files"
    locker = bundle(organizations.org_url(), variables=())
    locker["files"]["nightly.yaml"] = locker["files"]["nightly.yaml"].replace(
        "{variable: pat}", "{credential: {locker: ado, name: ci, attribute: pat}}")
    assert bob.post("/api/v1/bots", json=locker).status_code == 422


def test_a_run_goes_from_queued_to_succeeded_with_its_history(bob, state, organizations):
    assert bob.post("/api/v1/bots", json=bundle(organizations.org_url())).status_code == 201
    started = bob.post("/api/v1/runs", json={"bot": "nightly", "variables": {"pat": CANARY}})
    assert started.status_code == 201, started.text
    run = wait_for(bob, started.json()["id"], "succeeded", "failed")
    assert run["state"] == "succeeded", run["error"]
    assert run["bot_version"] == 1 and run["attempt"] == 1 and run["runner"] == "local"
    assert [s["action"] for s in run["steps"]] == ["Connect", "ListRepos", "ReadCsv", "RunBot"]
    assert run["requests"] >= 2 and "ListRepos: succeeded" in run["log"]
    assert run["attempts"][0]["state"] == "succeeded" and run["started_by"] == "bob"
    assert run["outputs"]["pat"] == "***"
    assert (run["outputs"]["run_id"], run["outputs"]["run_attempt"]) == (run["id"], 1)
    listed = bob.get("/api/v1/runs", params={"bot": "nightly", "state": "succeeded"}).json()
    assert [r["id"] for r in listed["runs"]] == [run["id"]]
    assert bob.get("/api/v1/runs", params={"state": "failed"}).json()["runs"] == []
    events = [(r["event"], r["actor"]) for r in state.audit.read(100)]
    assert ("bot.upload", "bob") in events and ("run.start", "bob") in events
    # the canary went to the organization, and nowhere in the run's record or the store
    assert CANARY not in json.dumps(run) and CANARY.encode() not in stored_bytes(state)


def test_a_named_connection_is_handed_to_the_pool_and_audited(bob, running, state,
                                                              organizations):
    admin = Caller(running.url, issue(state, "administrator", "alice"))
    admin.post("/api/v1/connections", json={"name": "contoso-main", "pat": CANARY,
                                             "organization": organizations.org_url()})
    files = bundle(organizations.org_url(), variables=())
    files["files"]["nightly.yaml"] = files["files"]["nightly.yaml"].replace(
        f"organization_url: '{organizations.org_url()}', project: Payments, "
        "personal_access_token: {variable: pat}", "connection: contoso-main, project: Payments")
    assert bob.post("/api/v1/bots", json=files).status_code == 201
    run = wait_for(bob, bob.post("/api/v1/runs", json={"bot": "nightly"}).json()["id"],
                   "succeeded", "failed")
    assert run["state"] == "succeeded", run["error"]
    fetched = state.audit.read(event="credential.fetch")[-1]
    assert (fetched["actor"], fetched["connection"]) == ("local", "contoso-main")
    assert fetched["run"] == {"bot": "nightly", "run": run["id"]}
    assert bob.get("/api/v1/bots/nightly").json()["bots"][0]["connections"] == ["contoso-main"]
    # Limited to another runner, the connection keeps the bot's runs from this pool: they
    # wait, and say why, rather than fail at their credential fetch.
    admin.patch("/api/v1/connections/contoso-main", json={"runners": ["build-02"]})
    waiting = bob.post("/api/v1/runs", json={"bot": "nightly"}).json()
    time.sleep(1.5)  # the pool looked, and left it
    waiting = bob.get(f"/api/v1/runs/{waiting['id']}").json()
    assert waiting["state"] == "queued", waiting
    assert waiting["waiting"] == ("no runner online in pool 'default' may use the connections "
                                  "bot 'nightly' names (local may not)")
    admin.patch("/api/v1/connections/contoso-main", json={"runners": ["build-02", "local"]})
    assert wait_for(bob, waiting["id"], "succeeded", "failed")["state"] == "succeeded"


def test_the_same_idempotency_key_starts_one_run(bob, organizations):
    bob.post("/api/v1/bots", json=bundle(organizations.org_url()))
    body = {"bot": "nightly", "variables": {"pat": CANARY}, "idempotency_key": "deploy-42"}
    first, second = (bob.post("/api/v1/runs", json=body) for _ in range(2))
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["id"] == second.json()["id"]
    assert len(bob.get("/api/v1/runs").json()["runs"]) == 1


def test_a_business_failure_is_never_repeated(bob, organizations):
    files = bundle(organizations.org_url(), settings="settings: {retries: 2}\n")
    files["files"]["nightly.yaml"] = files["files"]["nightly.yaml"].replace(
        "project: Payments", "project: NoSuchProject")
    bob.post("/api/v1/bots", json=files)
    run = wait_for(bob, bob.post("/api/v1/runs", json={"bot": "nightly", "variables": {
        "pat": CANARY}}).json()["id"], "succeeded", "failed")
    assert (run["state"], run["failure"], run["attempt"]) == ("failed", "business", 1), run
    assert run["error"]["code"] == "NOT_FOUND" and len(run["attempts"]) == 1


def test_a_system_failure_is_repeated_only_as_the_bot_allows(bob, state, organizations):
    from tests.conftest import free_port

    nowhere = f"http://127.0.0.1:{free_port()}/contoso"  # nothing listens: NETWORK_ERROR
    fast = "settings: {retry_attempts: 1, connect_timeout_seconds: 1%s}\n"
    bob.post("/api/v1/bots", json=bundle(nowhere, settings=fast % ""))
    once = wait_for(bob, bob.post("/api/v1/runs", json={"bot": "nightly", "variables": {
        "pat": CANARY}}).json()["id"], "succeeded", "failed")
    assert (once["state"], once["failure"], once["attempt"]) == ("failed", "system", 1), once
    assert once["error"]["code"] == "NETWORK_ERROR"

    bob.post("/api/v1/bots", json=bundle(nowhere, settings=fast % ", retries: 1"))
    state.runs.clock = lambda: __import__("datetime").datetime.now(
        __import__("datetime").timezone.utc) + __import__("datetime").timedelta(seconds=10)
    run_id = bob.post("/api/v1/runs", json={"bot": "nightly", "variables": {
        "pat": CANARY}}).json()["id"]
    repeated = wait_for(bob, run_id, "failed", seconds=60)
    assert (repeated["failure"], repeated["attempt"]) == ("system", 2), repeated
    assert [a["failure"] for a in repeated["attempts"]] == ["system", "system"]


def test_cancel_a_queued_run_and_a_running_one(bob, running, state, organizations):
    admin = Caller(running.url, issue(state, "administrator", "alice"))
    slow = ("  - for_each: ${items}\n    as: i\n    steps:\n      - action: QueueRun\n"
            "        inputs: {pipeline: payments-api-ci, wait: true}\n")
    files = bundle(organizations.org_url(), steps=slow)
    files["files"]["nightly.yaml"] = files["files"]["nightly.yaml"].replace(
        "steps:", f"variables: {{items: {list(range(50))}}}\nsteps:", 1)
    bob.post("/api/v1/bots", json=files)
    assert admin.put("/api/v1/pools/default", json={"paused": True}).status_code == 200
    assert bob.put("/api/v1/pools/default", json={"paused": False}).status_code == 403
    queued = bob.post("/api/v1/runs", json={"bot": "nightly", "variables": {"pat": CANARY}})
    assert queued.json()["waiting"] == "pool 'default' is paused"
    cancelled = bob.post(f"/api/v1/runs/{queued.json()['id']}/cancel")
    assert cancelled.status_code == 202 and cancelled.json()["state"] == "cancelled"

    admin.put("/api/v1/pools/default", json={"paused": False})
    run_id = bob.post("/api/v1/runs", json={"bot": "nightly", "variables": {
        "pat": CANARY}}).json()["id"]
    assert wait_for(bob, run_id, "running")["state"] == "running"
    time.sleep(1.0)  # in its loop of waits
    assert bob.post(f"/api/v1/runs/{run_id}/cancel").json()["cancel_requested"] is True
    run = wait_for(bob, run_id, "cancelled", "failed", "succeeded", seconds=20)
    assert run["state"] == "cancelled" and run["error"]["code"] == "CANCELLED", run
    assert ("run.cancel", "bob") in [(r["event"], r["actor"]) for r in state.audit.read(100)]


def test_a_run_over_its_time_is_timed_out(bob, organizations):
    slow = ("  - for_each: ${items}\n    as: i\n    steps:\n      - action: QueueRun\n"
            "        inputs: {pipeline: payments-api-ci, wait: true}\n")
    files = bundle(organizations.org_url(), steps=slow, settings="settings: {timeout_seconds: 1}\n")
    files["files"]["nightly.yaml"] = files["files"]["nightly.yaml"].replace(
        "steps:", f"variables: {{items: {list(range(50))}}}\nsteps:", 1)
    bob.post("/api/v1/bots", json=files)
    run = wait_for(bob, bob.post("/api/v1/runs", json={"bot": "nightly", "variables": {
        "pat": CANARY}}).json()["id"], "timed_out", "failed", "succeeded", seconds=30)
    assert run["state"] == "timed_out", run
    assert "longer than its 1 s" in run["error"]["message"]


def test_a_run_whose_runner_stops_answering_is_runner_lost(state, bob, organizations):
    """A runner takes a run and goes silent: when its lease lapses the run is failed as
    "runner lost" (a system failure) and, as its bot allows one repeat, runs again — here on
    the control room's own pool — never on two runners at once."""
    import datetime as dt

    files = bundle(organizations.org_url(), settings="settings: {retries: 1}\n")
    bob.post("/api/v1/bots", json=files)
    state.pool.stop()  # the ghost takes the run, not the pool
    run_id = bob.post("/api/v1/runs", json={"bot": "nightly", "variables": {
        "pat": CANARY}, "pool": "default"}).json()["id"]
    taken = state.runs.claim("default", "ghost")
    assert taken["id"] == run_id and taken["variables"] == {"pat": CANARY}
    assert state.runs.claim("default", "other") is None  # taken once
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=10)
    state.runs.clock = lambda: later
    assert state.runs.reap() == [run_id]
    lost = bob.get(f"/api/v1/runs/{run_id}").json()
    assert (lost["state"], lost["attempt"]) == ("queued", 1)
    assert lost["attempts"][0]["error"]["code"] == "RUNNER_LOST"
    assert state.runs.end(taken, "ghost", "succeeded") == "taken back"  # too late
    assert state.runs.claim("default", "local") is None  # the repeat waits its backoff
    state.runs.clock = lambda: later + dt.timedelta(seconds=10)
    again = state.runs.claim("default", "local")
    assert again["attempt"] == 2
    assert state.runs.end(again, "local", "succeeded") == "succeeded"
    assert bob.get(f"/api/v1/runs/{run_id}").json()["state"] == "succeeded"


def test_roles_and_why_a_run_waits(running, state, bob, organizations):
    runner = Caller(running.url, issue(state, "runner", "build-01"))
    bob.post("/api/v1/bots", json=bundle(organizations.org_url()))
    assert runner.post("/api/v1/runs", json={"bot": "nightly"}).status_code == 403
    assert runner.get("/api/v1/runs").status_code == 403
    elsewhere = bob.post("/api/v1/runs", json={"bot": "nightly", "pool": "windows",
                                               "variables": {"pat": CANARY}}).json()
    assert elsewhere["waiting"] == "no runner is online in pool 'windows'"
    missing = bob.post("/api/v1/runs", json={"bot": "nightly"})
    assert missing.status_code == 422 and "needs the variable(s) pat" in \
        missing.json()["error"]["message"]
    assert bob.post("/api/v1/runs", json={"bot": "nosuch"}).status_code == 404
    no_version = bob.post("/api/v1/runs", json={"bot": "nightly", "version": 9,
                                                "variables": {"pat": "x"}})
    assert no_version.status_code == 404
    assert no_version.json()["error"]["message"] == "bot 'nightly' has no version 9"
    pools = {p["name"]: p for p in bob.get("/api/v1/pools").json()["pools"]}
    assert pools["default"]["runners"] == 1 and not pools["default"]["paused"]


def test_upload_a_folder_and_run_it_from_the_command_line(running, state, bob, organizations,
                                                          tmp_path):
    """`adobot bot upload` sends the bot's folder; `adobot run-remote --wait` starts a run and
    follows it; the token comes from the environment and is never printed."""
    import os
    import subprocess

    from tests.conftest import ADOBOT

    folder = tmp_path / "nightly"
    for path, text in bundle(organizations.org_url())["files"].items():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_text(text)
    (folder / ".secret.yaml").write_text("not: sent\n")  # hidden files stay home
    env = {**os.environ, "ADOBOT_CONTROL_ROOM_TOKEN": bob.token, "PAT": CANARY}

    def adobot(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(ADOBOT), *args, "--control-room", running.url],
                              capture_output=True, text=True, env=env, timeout=120)

    uploaded = adobot("bot", "upload", str(folder / "nightly.yaml"), "--var", "pat", "--json")
    assert uploaded.returncode == 0, uploaded.stderr
    assert sorted(json.loads(uploaded.stdout)["files"]) == [
        "child/report.yaml", "data/teams.csv", "nightly.yaml"]
    done = adobot("run-remote", "nightly", "--var-env", "pat=PAT", "--wait",
                  "--idempotency-key", "ci-123")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ListRepos: succeeded" in done.stdout and ": succeeded" in done.stdout.splitlines()[-1]
    again = adobot("run-remote", "nightly", "--var-env", "pat=PAT", "--idempotency-key",
                   "ci-123", "--json")
    assert json.loads(again.stdout)["state"] == "succeeded"  # the same run, not a new one
    assert len(bob.get("/api/v1/runs").json()["runs"]) == 1
    refused = adobot("run-remote", "nosuch")
    assert refused.returncode != 0 and "'nosuch' is not in the control room" in refused.stderr
    for output in (uploaded, done, again, refused):
        assert CANARY not in output.stdout + output.stderr
        assert bob.token not in output.stdout + output.stderr
