"""Issue #32 on PostgreSQL: a queued run travels as a procrastinate job deferred in the same
transaction as the run's row, carrying the run's id only; a paused pool parks its jobs and a
resume wakes them; runs queued before the upgrade get theirs; a runner needs no more of the
database than procrastinate's tables, and one without it is told what it lacks. And on both
databases: a control room restarted mid-queue loses nothing."""
from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
import requests
from sqlalchemy import text

from adobot.control_room.state import open_state
from adobot.credentials.vault import Vault, generate_key
from adobot.runs.bundles import Upload
from adobot.runs.service import StartRun
from tests.conftest import ADOBOT
from tests.control_room.conftest import CANARY, Caller, issue, stored_bytes
from tests.control_room.test_runner_machines import one_step
from tests.control_room.test_runs import wait_for

postgresql = pytest.mark.parametrize("database", ["postgresql"], indirect=True)


def jobs_of(state) -> list[dict]:
    with state.store.database.reading() as db:
        return [dict(row._mapping) for row in db.execute(text(
            "SELECT queue_name, task_name, priority, args, status, scheduled_at "
            "FROM procrastinate_jobs ORDER BY id"))]


def jobs_left(state, seconds: float = 10) -> list[dict]:
    """The jobs still in the table once those whose run has ended had time to finish (a
    worker deletes its job just after it reports the run)."""
    deadline = time.monotonic() + seconds
    while jobs_of(state) and time.monotonic() < deadline:
        time.sleep(0.05)
    return jobs_of(state)


def start(state, priority: str = "normal", key: str | None = None) -> dict:
    run, _ = state.runs.start(StartRun(bot="tick", variables={"pat": CANARY},
                                       priority=priority, idempotency_key=key), "bob")
    return run


@postgresql
def test_a_run_and_its_job_are_committed_together(state, organizations, monkeypatch):
    state.runs.upload(Upload.model_validate(one_step(organizations.org_url())), "bob")
    run = start(state, "high")
    assert jobs_of(state) == [{"queue_name": "adobot-pool:default", "task_name": "adobot.run",
                               "priority": 0, "args": {"run_id": run["id"]}, "status": "todo",
                               "scheduled_at": None}]
    assert start(state, "low")["id"] == jobs_of(state)[1]["args"]["run_id"]
    assert jobs_of(state)[1]["priority"] == -2  # procrastinate takes the higher first

    # a job that cannot be deferred takes its run with it: neither is committed
    def refused(*args, **kwargs):
        raise RuntimeError("the job table is gone")
    monkeypatch.setattr(state.store.runs.jobs, "defer", refused)
    with pytest.raises(RuntimeError):
        start(state, key="ci-4711")
    monkeypatch.undo()
    assert state.store.runs.find_key("ci-4711") is None and len(jobs_of(state)) == 2

    # a cancelled run's job is withdrawn with it
    assert state.runs.cancel(run["id"]) == "cancelled"
    assert [job["args"]["run_id"] for job in jobs_of(state)] != [run["id"]]
    assert len(jobs_of(state)) == 1


@postgresql
def test_a_paused_pool_parks_its_jobs_and_a_resume_wakes_them(state, organizations):
    state.runs.upload(Upload.model_validate(one_step(organizations.org_url())), "bob")
    state.store.runs.set_pool("default", True, state.runs.now())
    run = start(state)
    [job] = jobs_of(state)
    assert job["scheduled_at"].year == 9999  # no runner churns through it while paused
    dump = stored_bytes(state)  # the database as an attacker would read it, job rows included
    assert run["id"].encode() in dump and b"procrastinate_jobs" in dump
    assert CANARY.encode() not in dump  # the job carries the run's id; the variables are sealed
    import psycopg

    from adobot.store.jobs import libpq_url

    with psycopg.connect(libpq_url(state.store.database.url), autocommit=True) as listener:
        listener.execute('LISTEN "procrastinate_queue_v1#adobot-pool:default"')
        state.store.runs.set_pool("default", False, state.runs.now())
        rung = list(listener.notifies(timeout=10, stop_after=1))  # workers wake at once
    assert jobs_of(state)[0]["scheduled_at"] is None
    assert rung and '"job_inserted"' in rung[0].payload

    # a job taken just after a pause: the run stays queued, with a new job parked (the taken
    # one, here still in the table, ends doing nothing)
    state.store.runs.set_pool("default", True, state.runs.now())
    assert state.runs.take(run["id"], ("default",), "build-01") is None
    assert [j["scheduled_at"] and j["scheduled_at"].year for j in jobs_of(state)] == [None, 9999]
    assert state.runs.get(run["id"])["state"] == "queued"


@postgresql
def test_runs_queued_before_the_upgrade_get_their_jobs(database, tmp_path):
    from alembic import command
    from alembic.config import Config

    from adobot.store import database as schema
    from adobot.store import open_store
    from adobot.store.database import Database, database_url
    from sqlalchemy import insert

    from adobot.store.models import RunRow

    url = database_url(database, tmp_path / "vault.json")
    before = Database(url)
    config = Config()
    config.set_main_option("script_location", str(Path(schema.__file__).with_name("migrations")))
    with before.writing() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0002")
    vault = Vault(tmp_path / "vault.json")
    store = open_store(url, upgrade=False)
    from adobot.runs.service import Runs

    runs = Runs(store, vault)
    bot = {"name": "tick", "version": 1, "expects": "", "retries": 0, "timeout_seconds": 60}
    waiting = runs.new_run(bot, {}, "low", "nightly", "bob")
    with before.writing() as db:  # as 0002 knew runs
        db.execute(insert(RunRow).values(**waiting))
    before.dispose()
    assert store.database.upgrade() is True
    with store.database.reading() as db:
        jobs = db.execute(text("SELECT queue_name, priority, args FROM procrastinate_jobs")).all()
    assert [tuple(job) for job in jobs] == [("adobot-pool:nightly", -2,
                                             {"run_id": waiting["id"]})]
    store.close()


@postgresql
def test_a_runner_without_the_database_is_told_what_it_lacks(room, state, tmp_path):
    env = {**os.environ, "ADOBOT_CONTROL_ROOM_TOKEN": issue(state, "runner", "build-01"),
           "HOME": str(tmp_path)}
    env.pop("ADOBOT_DATABASE_URL", None)
    done = subprocess.run([str(ADOBOT), "runner", "--control-room", room.url], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "INVALID_INPUT" in done.stderr
    assert "--database" in done.stderr and "procrastinate" in done.stderr
    assert "Traceback" not in done.stderr

    # a database that is not the control room's, and one that does not answer (its password
    # never shown)
    from tests.conftest import free_port
    from tests.postgres import ADMIN_URL

    for database, reason in ((ADMIN_URL, "holds no procrastinate tables"),
                             (f"postgresql://room:hunter2-secret@127.0.0.1:{free_port()}/adobot",
                              "Connection refused")):
        done = subprocess.run([str(ADOBOT), "runner", "--control-room", room.url,
                               "--database", database], env=env, capture_output=True,
                              text=True, timeout=60)
        assert done.returncode != 0 and "VAULT_ERROR" in done.stderr, done.stderr
        assert reason in done.stderr and "Traceback" not in done.stderr
        assert "hunter2-secret" not in done.stderr


@postgresql
def test_a_runner_needs_no_more_of_the_database_than_procrastinates_tables(
        room, state, organizations, tmp_path):
    """A runner started with a role that may use procrastinate's tables only (not the runs,
    the connections, the tokens or the audit log) takes and runs its pool's runs."""
    import uuid

    import psycopg
    from sqlalchemy.engine import make_url

    from tests.postgres import admin

    url = make_url(state.store.database.url)
    schema = url.query["options"].split("=", 1)[1]
    role = f"adobot_runner_{uuid.uuid4().hex[:8]}"
    with admin() as db:
        db.execute(f'CREATE ROLE "{role}" LOGIN')
        db.execute(f'GRANT USAGE ON SCHEMA "{schema}" TO "{role}"')
        for (table,) in db.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s "
                                   "AND tablename LIKE 'procrastinate%%'", (schema,)):
            db.execute(f'GRANT SELECT, INSERT, UPDATE, DELETE ON "{schema}"."{table}" '
                       f'TO "{role}"')
        db.execute(f'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA "{schema}" TO "{role}"')
    limited = url.set(username=role).render_as_string(hide_password=False)
    try:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            with psycopg.connect(limited.replace("+psycopg", "")) as db:
                db.execute("SELECT variables FROM runs")
        bob = Caller(room.url, issue(state, "standard", "bob"))
        bob.post("/api/v1/bots", json=one_step(organizations.org_url()))
        env = {**os.environ, "ADOBOT_CONTROL_ROOM_TOKEN": issue(state, "runner", "build-01"),
               "HOME": str(tmp_path)}
        with open(tmp_path / "runner.log", "w") as log:
            runner = subprocess.Popen([str(ADOBOT), "runner", "--control-room", room.url,
                                       "--database", limited], env=env, stdout=log,
                                      stderr=subprocess.STDOUT)
        try:
            run_id = bob.post("/api/v1/runs", json={"bot": "tick", "variables": {
                "pat": CANARY}}).json()["id"]
            run = wait_for(bob, run_id, "succeeded", "failed", seconds=60)
            assert (run["state"], run["runner"]) == ("succeeded", "build-01"), \
                (tmp_path / "runner.log").read_text()
        finally:
            runner.terminate()
            runner.wait(30)
    finally:
        with admin() as db:
            db.execute(f'DROP OWNED BY "{role}"')
            db.execute(f'DROP ROLE "{role}"')


def _room(port: int, vault: str, env: dict, log: Path) -> subprocess.Popen:
    with open(log, "a") as out:  # a pipe nobody reads would stall it once full
        return subprocess.Popen([str(ADOBOT), "control-room", "--port", str(port), "--vault",
                                 vault, "--workers", "0"], env=env, stdout=subprocess.DEVNULL,
                                stderr=out)


def _up(url: str, token: str, process: subprocess.Popen) -> None:
    for _ in range(300):
        assert process.poll() is None, f"the control room exited ({process.returncode})"
        try:
            if requests.get(url + "/api/v1/me", timeout=5, headers={
                    "Authorization": f"Bearer {token}"}).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    raise AssertionError("the control room did not start")


def test_a_control_room_restarted_mid_queue_loses_nothing(tmp_path, organizations, database):
    """60 runs, two runner processes; the control room process is stopped while runs are
    queued and running, and started again on the same port: every run ends succeeded, after
    one attempt (on PostgreSQL, and the job table is empty)."""
    from tests.conftest import free_port

    env = {**os.environ, "HOME": str(tmp_path)}
    env.pop("ADOBOT_DATABASE_URL", None)
    vault = tmp_path / "room" / "vault.json"
    if database is not None:  # the runners read it there too (procrastinate's workers)
        env.update(ADOBOT_VAULT_KEY=generate_key(), ADOBOT_DATABASE_URL=database)
    # SQLite: the room's own file, beside its vault; PostgreSQL: the shared database
    issuer = Vault(vault if database is None else tmp_path / "admin" / "vault.json")
    with open_state(issuer, database) as state:
        bob = issue(state, "standard", "bob")
        runners = {name: issue(state, "runner", name) for name in ("build-01", "build-02")}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    room = _room(port, str(vault), env, tmp_path / "room.log")
    machines: list[subprocess.Popen] = []
    try:
        _up(base, bob, room)
        caller = Caller(base, bob)
        assert caller.post("/api/v1/bots", json=one_step(organizations.org_url())
                           ).status_code == 201
        ids = [caller.post("/api/v1/runs", json={"bot": "tick", "variables": {
            "pat": CANARY}}).json()["id"] for _ in range(60)]
        for name, token in runners.items():
            with open(tmp_path / f"{name}.log", "w") as log:
                machines.append(subprocess.Popen(
                    [str(ADOBOT), "runner", "--control-room", base, "--concurrency", "2"],
                    env={**env, "ADOBOT_CONTROL_ROOM_TOKEN": token}, stdout=log,
                    stderr=subprocess.STDOUT))
        deadline = time.monotonic() + 120
        while len(caller.get("/api/v1/runs", params={"state": "succeeded",
                                                     "limit": 100}).json()["runs"]) < 10:
            assert time.monotonic() < deadline, (tmp_path / "build-01.log").read_text()
            time.sleep(0.05)
        room.terminate()  # mid-queue: some runs running, most queued
        room.wait(30)
        time.sleep(1.0)  # the runners' calls fail meanwhile, and are made again later
        room = _room(port, str(vault), env, tmp_path / "room.log")
        _up(base, bob, room)
        left = caller.get("/api/v1/runs", params={"limit": 100}).json()["runs"]
        assert any(r["state"] in ("queued", "running") for r in left)  # it was mid-queue
        ended = [wait_for(caller, run_id, "succeeded", "failed", "cancelled", "timed_out",
                          seconds=180) for run_id in ids]
        assert [r["state"] for r in ended] == ["succeeded"] * 60, [
            (r["state"], r.get("error")) for r in ended if r["state"] != "succeeded"]
        assert all(len(r["attempts"]) == 1 for r in ended)  # each executed once
        if database is not None:
            with open_state(issuer, database) as state:
                assert jobs_left(state) == []  # done jobs are deleted: the runs keep history
    finally:
        for process in (*machines, room):
            process.terminate()
        for process in (*machines, room):
            process.wait(30)
