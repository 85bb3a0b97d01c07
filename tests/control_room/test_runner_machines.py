"""Issue #32 with runner machines: `adobot runner` processes started by the tests take a pool's
runs over real HTTP, on SQLite and on PostgreSQL — each run executed exactly once, priorities
kept, a runner killed mid-run (`kill -9`) loses its run to "runner lost" within the lease and
the run is repeated on another runner when its bot allows it."""
from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from tests.conftest import ADOBOT
from tests.control_room.conftest import CANARY, Caller, issue, stored_bytes
from tests.control_room.test_runs import CONNECT_PAT, wait_for

SLOW = ("  - for_each: ${items}\n    as: i\n    steps:\n      - action: QueueRun\n"
        "        inputs: {pipeline: payments-api-ci, wait: true}\n")


def one_step(org: str, name: str = "tick", settings: str = "", steps: str = "") -> dict:
    main = f"name: {name}\n{settings}steps:\n{CONNECT_PAT.format(org=org)}{steps}"
    return {"main": "tick.yaml", "files": {"tick.yaml": main}, "variables": ["pat"]}


@pytest.fixture
def quick_leases(monkeypatch):
    """Leases of 3 s, heartbeats each second, lapsed leases looked for twice a second."""
    from adobot.control_room.routes import runners
    from adobot.runs import engine, service

    monkeypatch.setattr(service, "LEASE_SECONDS", 3)
    monkeypatch.setattr(runners, "LEASE_SECONDS", 3)
    monkeypatch.setattr(runners, "HEARTBEAT_SECONDS", 1)
    monkeypatch.setattr(engine, "REAP_SECONDS", 0.5)


class Runners:
    """`adobot runner` processes, each with a runner token of its own."""

    def __init__(self, room, state, tmp_path) -> None:
        self.room, self.state, self.tmp_path = room, state, tmp_path
        self.processes: dict[str, subprocess.Popen] = {}

    def start(self, name: str, concurrency: int = 1, pool: str = "default") -> subprocess.Popen:
        env = {**os.environ, "ADOBOT_CONTROL_ROOM_TOKEN": issue(self.state, "runner", name),
               "HOME": str(self.tmp_path)}
        log = open(self.tmp_path / f"{name}.log", "w")
        # On PostgreSQL the runs wait as procrastinate jobs, which runners read there.
        database = ([] if self.state.store.database.sqlite
                    else ["--database", self.state.store.database.url])
        process = subprocess.Popen(
            [str(ADOBOT), "runner", "--control-room", self.room.url, "--pool", pool,
             "--concurrency", str(concurrency), "--grace", "5", *database],
            env=env, stdout=log, stderr=subprocess.STDOUT)
        self.processes[name] = process
        return process

    def log(self, name: str) -> str:
        return (self.tmp_path / f"{name}.log").read_text()

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture
def machines(room, state, tmp_path):
    started = Runners(room, state, tmp_path)
    yield started
    started.stop()


@pytest.fixture
def bob(room, state):
    return Caller(room.url, issue(state, "standard", "bob"))


def online(bob: Caller, count: int) -> None:
    deadline = time.monotonic() + 60
    while len([r for r in bob.get("/api/v1/runners").json()["runners"]
               if r["state"] == "online"]) < count:
        assert time.monotonic() < deadline, "the runners did not register"
        time.sleep(0.1)


def test_many_runs_over_runners_each_once_in_priority_order(room, state, bob, machines,
                                                           organizations):
    admin = Caller(room.url, issue(state, "administrator", "alice"))
    assert bob.post("/api/v1/bots", json=one_step(organizations.org_url())).status_code == 201
    admin.put("/api/v1/pools/default", json={"paused": True})  # queue first, then let go
    low = [bob.post("/api/v1/runs", json={"bot": "tick", "priority": "low",
                                          "variables": {"pat": CANARY}}).json()["id"]
           for _ in range(40)]
    high = [bob.post("/api/v1/runs", json={"bot": "tick", "priority": "high",
                                           "variables": {"pat": CANARY}}).json()["id"]
            for _ in range(10)]
    for name in ("build-01", "build-02"):
        machines.start(name, concurrency=2)
    online(bob, 2)
    waiting = bob.get(f"/api/v1/runs/{low[0]}").json()["waiting"]
    assert waiting == "pool 'default' is paused"
    admin.put("/api/v1/pools/default", json={"paused": False})
    deadline = time.monotonic() + 180
    while bob.get("/api/v1/runs", params={"state": "succeeded", "limit": 1000}).json()[
            "runs"].__len__() < 50:
        assert time.monotonic() < deadline, [machines.log(n) for n in machines.processes]
        time.sleep(0.2)
    runs = {r["id"]: bob.get(f"/api/v1/runs/{r['id']}").json()
            for r in bob.get("/api/v1/runs", params={"limit": 1000}).json()["runs"]}
    assert len(runs) == 50 and all(r["state"] == "succeeded" for r in runs.values())
    assert all(len(r["attempts"]) == 1 and r["attempt"] == 1 for r in runs.values())  # once
    assert {r["runner"] for r in runs.values()} == {"build-01", "build-02"}
    # every high run was taken before the last low ones: 4 places, so at most 3 low runs
    # (taken while the high ones were being queued... none: the pool was paused) start first
    last_high = max(runs[i]["started_at"] for i in high)
    assert sum(runs[i]["started_at"] < last_high for i in low) <= 3
    fetched = [r for r in state.audit.read(1000, event="credential.fetch")]
    assert fetched == []  # variables, not connections: nothing fetched
    assert CANARY.encode() not in stored_bytes(state)


def test_a_runner_killed_mid_run_loses_it_and_another_repeats_it(room, state, bob, machines,
                                                                 organizations, quick_leases):
    org = organizations.org_url()
    files = one_step(org, settings="settings: {retries: 1}\nvariables: {items: [1, 2, 3, 4]}\n",
                     steps=SLOW)
    bob.post("/api/v1/bots", json=files)
    doomed = machines.start("build-01")
    online(bob, 1)
    run_id = bob.post("/api/v1/runs", json={"bot": "tick", "variables": {
        "pat": CANARY}}).json()["id"]
    assert wait_for(bob, run_id, "running")["runner"] == "build-01"
    time.sleep(1.0)  # in its loop of waits
    doomed.send_signal(signal.SIGKILL)
    doomed.wait(10)
    machines.start("build-02")
    run = wait_for(bob, run_id, "succeeded", "failed", seconds=60)
    assert run["state"] == "succeeded", run
    first, second = run["attempts"]
    assert (first["runner"], first["failure"], first["error"]["code"]) == (
        "build-01", "system", "RUNNER_LOST")
    assert second["runner"] == "build-02" and second["state"] == "succeeded"
    assert first["ended_at"] <= second["started_at"]  # never on two runners at once
    runners = {r["name"]: r["state"] for r in bob.get("/api/v1/runners").json()["runners"]}
    assert runners["build-01"] == "offline"
    if not state.store.database.sqlite:  # the dead runner's job was let go, the repeat's done
        from tests.control_room.test_jobs import jobs_left
        assert jobs_left(state) == []


def test_a_lost_run_whose_bot_declares_no_retry_fails_as_runner_lost(room, state, bob,
                                                                     machines, organizations,
                                                                     quick_leases):
    files = one_step(organizations.org_url(), settings="variables: {items: [1, 2, 3, 4]}\n",
                     steps=SLOW)
    bob.post("/api/v1/bots", json=files)
    doomed = machines.start("build-01")
    online(bob, 1)
    run_id = bob.post("/api/v1/runs", json={"bot": "tick", "variables": {
        "pat": CANARY}}).json()["id"]
    wait_for(bob, run_id, "running")
    doomed.send_signal(signal.SIGKILL)
    run = wait_for(bob, run_id, "failed", seconds=30)
    assert (run["state"], run["failure"], run["error"]["code"]) == (
        "failed", "system", "RUNNER_LOST"), run


def test_sigterm_lets_a_runner_finish_what_it_holds(room, state, bob, machines,
                                                    organizations):
    bob.post("/api/v1/bots", json=one_step(organizations.org_url(),
                                           settings="variables: {items: [1, 2]}\n", steps=SLOW))
    runner = machines.start("build-01")
    online(bob, 1)
    run_id = bob.post("/api/v1/runs", json={"bot": "tick", "variables": {
        "pat": CANARY}}).json()["id"]
    wait_for(bob, run_id, "running")
    runner.terminate()
    assert runner.wait(30) == 0
    assert bob.get(f"/api/v1/runs/{run_id}").json()["state"] == "succeeded"
    assert CANARY not in machines.log("build-01")


def test_only_runner_tokens_take_runs(room, state, bob):
    assert bob.post("/api/v1/runners/claim", json={"wait_seconds": 0}).status_code == 403
    runner = Caller(room.url, issue(state, "runner", "build-01"))
    waited = runner.post("/api/v1/runners/claim", json={"wait_seconds": 0})
    if state.store.database.sqlite:
        assert waited.status_code == 204  # no run came
    else:  # the runs are procrastinate jobs: a runner reads them from the database
        assert waited.status_code == 409 and "--database" in waited.json()["error"]["hint"]
    gone = runner.post("/api/v1/runners/claim", json={"run": "0" * 32})
    assert gone.status_code == 204  # a job whose run is not queued has nothing to do
    assert runner.post("/api/v1/runners/heartbeat", json={}).status_code == 404  # unregistered


@pytest.mark.parametrize("database", ["postgresql"], indirect=True)  # several instances' store
def test_a_thousand_runs_over_four_runners(room, state, bob, machines, organizations):
    """1,000 one-step runs of three priorities, queued while the pool is paused, then taken by
    4 runners of concurrency 4 (procrastinate's workers): each run once (one attempt, one
    report in one runner's log), none lost, and the high ones before the normal ones before
    the low ones (a fetch that skips a job another fetch holds may take the next one: at most
    16 places out of order); no job is left behind."""
    admin = Caller(room.url, issue(state, "administrator", "alice"))
    bob.post("/api/v1/bots", json=one_step(organizations.org_url()))
    admin.put("/api/v1/pools/default", json={"paused": True})
    priorities = ["low", "normal", "high"] * 333 + ["normal"]
    started = {bob.post("/api/v1/runs", json={"bot": "tick", "priority": priority,
                                              "variables": {"pat": CANARY}}).json()["id"]:
               priority for priority in priorities}
    assert len(started) == 1000
    names = [f"build-{n:02}" for n in range(1, 5)]
    for name in names:
        machines.start(name, concurrency=4)
    online(bob, 4)
    admin.put("/api/v1/pools/default", json={"paused": False})
    deadline = time.monotonic() + 900
    while True:
        ended = bob.get("/api/v1/runs", params={"state": "succeeded", "limit": 1000}).json()
        if len(ended["runs"]) == 1000:
            break
        assert time.monotonic() < deadline, f"{len(ended['runs'])} of 1,000 ended"
        time.sleep(1.0)
    runs = ended["runs"]
    assert {r["id"] for r in runs} == set(started) and all(r["attempt"] == 1 for r in runs)
    reports = "\n".join(machines.log(name) for name in names)
    assert all(reports.count(f"run {run_id} of tick: succeeded") == 1 for run_id in started)
    assert {r["runner"] for r in runs} == set(names)
    order = [started[r["id"]] for r in sorted(runs, key=lambda r: r["started_at"])]
    rank = {"high": 0, "normal": 1, "low": 2}
    inversions = sum(rank[a] > rank[b] for a, b in zip(order, order[1:]))
    assert inversions <= 16, order
    from tests.control_room.test_jobs import jobs_left
    assert jobs_left(state) == []


def test_a_run_goes_only_to_runners_its_connections_allow(room, state, bob, machines,
                                                         organizations):
    """A bot that names a connection limited to build-02 is taken by build-02 only; build-01
    takes the runs of other bots meanwhile."""
    admin = Caller(room.url, issue(state, "administrator", "alice"))
    assert admin.post("/api/v1/connections", json={
        "name": "contoso-main", "pat": CANARY, "organization": organizations.org_url(),
        "runners": ["build-02"]}).status_code == 201
    named = {"main": "named.yaml", "files": {"named.yaml": (
        "name: named\nsteps:\n  - action: Connect\n    inputs: {connection: contoso-main, "
        "project: Payments}\n")}}
    assert bob.post("/api/v1/bots", json=named).status_code == 201
    bob.post("/api/v1/bots", json=one_step(organizations.org_url()))
    machines.start("build-01", concurrency=2)
    online(bob, 1)
    limited = bob.post("/api/v1/runs", json={"bot": "named"}).json()["id"]
    free = bob.post("/api/v1/runs", json={"bot": "tick", "variables": {"pat": CANARY}}).json()
    assert wait_for(bob, free["id"], "succeeded")["runner"] == "build-01"
    assert bob.get(f"/api/v1/runs/{limited}").json()["waiting"] == (
        "no runner online in pool 'default' may use the connections bot 'named' names "
        "(build-01 may not)")
    machines.start("build-02")
    run = wait_for(bob, limited, "succeeded", "failed", seconds=30)
    assert (run["state"], run["runner"]) == ("succeeded", "build-02"), run
