"""Issue #32's schedules: cron expressions in a time zone (daylight saving included), a
start-by-API trigger, pause and edit, each tick fired once even with two control-room instances
over one database — over real HTTP, on SQLite and on PostgreSQL."""
from __future__ import annotations

import datetime as dt
import threading
import time

import pytest

from adobot.runs.schedules import ticks
from tests.control_room.conftest import CANARY, Caller, issue, stored_bytes
from tests.control_room.test_runs import bundle, wait_for

UTC = dt.timezone.utc


def test_ticks_keep_to_the_time_zone_through_daylight_saving():
    # 02:30 in Paris does not exist on 29 March 2026 (clocks go 02:00 → 03:00): it comes at
    # 03:00 local (01:00 UTC); on 25 October 02:30 happens twice: it comes once.
    spring = ticks("30 2 * * *", "Europe/Paris", dt.datetime(2026, 3, 28, 12, tzinfo=UTC), 3)
    assert [t.strftime("%m-%d %H:%M") for t in spring] == ["03-29 01:00", "03-30 00:30",
                                                           "03-31 00:30"]
    autumn = ticks("30 2 * * *", "Europe/Paris", dt.datetime(2026, 10, 24, 12, tzinfo=UTC), 2)
    assert [t.strftime("%m-%d %H:%M") for t in autumn] == ["10-25 00:30", "10-26 01:30"]
    just_fired = dt.datetime(2026, 10, 25, 0, 30, 0, 500000, tzinfo=UTC)  # the first 02:30
    assert ticks("30 2 * * *", "Europe/Paris", just_fired, 1)[0].strftime("%m-%d %H:%M") == \
        "10-26 01:30"  # not the second 02:30 an hour later
    weekdays = ticks("0 9 * * 1-5", "America/New_York",
                     dt.datetime(2026, 12, 4, 15, tzinfo=UTC), 2)  # a Friday, after 09:00 EST
    assert [t.strftime("%a %H:%M") for t in weekdays] == ["Mon 14:00", "Tue 14:00"]


@pytest.fixture
def running(state, organizations):
    from adobot.control_room.server import ControlRoom

    state.run_bots(workers=2, idle_seconds=0.1)
    with ControlRoom(state) as room:
        yield room


def due_now(state, name: str) -> str:
    """Bring the schedule's next tick to now (as if the minute had come)."""
    tick = (dt.datetime.now(UTC) - dt.timedelta(milliseconds=1)).strftime(
        "%Y-%m-%dT%H:%M:%S.%fZ")
    state.store.schedules.update(name, {"next_at": tick})
    return tick


def test_a_schedule_is_made_checked_listed_fired_and_triggered(running, state, organizations):
    admin = Caller(running.url, issue(state, "administrator", "alice"))
    bob = Caller(running.url, issue(state, "standard", "bob"))
    bob.post("/api/v1/bots", json=bundle(organizations.org_url()))
    body = {"name": "nightly", "bot": "nightly", "cron": "30 2 * * *",
            "timezone": "Europe/Paris", "variables": {"pat": CANARY}}
    assert bob.post("/api/v1/schedules", json=body).status_code == 403
    for change, field in (({"cron": "61 * * * *"}, "cron"), ({"cron": "* * *"}, "cron"),
                          ({"timezone": "Mars/Olympus"}, "timezone"),
                          ({"variables": {}}, "variables")):
        refused = admin.post("/api/v1/schedules", json={**body, **change})
        assert refused.status_code == 422 and refused.json()["error"]["field"] == field, \
            refused.text
    assert admin.post("/api/v1/schedules", json={**body, "bot": "nosuch"}).status_code == 404
    made = admin.post("/api/v1/schedules", json=body)
    assert made.status_code == 201, made.text
    schedule = made.json()
    assert schedule["variables"] == ["pat"] and len(schedule["next"]) == 3
    assert all(t[11:16] in ("00:30", "01:30") for t in schedule["next"])  # 02:30 in Paris
    assert admin.post("/api/v1/schedules", json=body).status_code == 409
    assert [s["name"] for s in bob.get("/api/v1/schedules").json()["schedules"]] == ["nightly"]

    tick = due_now(state, "nightly")
    deadline = time.monotonic() + 20
    while not bob.get("/api/v1/runs").json()["runs"]:
        assert time.monotonic() < deadline, "the tick did not fire"
        time.sleep(0.2)
    run = bob.get("/api/v1/runs").json()["runs"][0]
    assert run["started_by"] == "schedule:nightly"
    assert run["idempotency_key"] == f"schedule:nightly:{tick}"
    assert wait_for(bob, run["id"], "succeeded", "failed")["state"] == "succeeded"
    after = bob.get("/api/v1/schedules/nightly").json()
    assert after["last_run"] == run["id"] and after["next"][0] > tick

    triggered = bob.post("/api/v1/schedules/nightly/trigger")
    assert triggered.status_code == 201 and triggered.json()["started_by"] == "bob"
    paused = admin.patch("/api/v1/schedules/nightly", json={"paused": True}).json()
    assert paused["paused"] and paused["next"] == []
    due_now(state, "nightly")
    time.sleep(2.5)
    assert len(bob.get("/api/v1/runs").json()["runs"]) == 2  # nothing fired while paused
    edited = admin.patch("/api/v1/schedules/nightly", json={
        "paused": False, "cron": "0 9 * * 1-5", "timezone": "UTC"}).json()
    assert [t[11:16] for t in edited["next"]] == ["09:00"] * 3
    events = [r["event"] for r in state.audit.read(100) if r["event"].startswith("schedule.")]
    assert events.count("schedule.create") >= 1 and "schedule.edit" in events
    assert "schedule.trigger" in events
    assert admin.delete("/api/v1/schedules/nightly").status_code == 204
    assert bob.get("/api/v1/schedules/nightly").status_code == 404
    assert CANARY.encode() not in stored_bytes(state)


def test_two_instances_fire_each_tick_once(state, vault, database, organizations):
    """Two control rooms over one database, both firing schedules: two ticks, two runs."""
    from adobot.control_room.server import ControlRoom
    from adobot.control_room.state import open_state

    with open_state(vault, database) as other, ControlRoom(state) as first, \
            ControlRoom(other):
        admin = Caller(first.url, issue(state, "administrator", "alice"))
        admin.post("/api/v1/bots", json=bundle(organizations.org_url()))
        admin.put("/api/v1/pools/default", json={"paused": True})  # queued, not run: counted
        assert admin.post("/api/v1/schedules", json={
            "name": "often", "bot": "nightly", "cron": "0 0 1 1 *",
            "variables": {"pat": CANARY}}).status_code == 201
        for number in range(2):
            due_now(state, "often")
            deadline = time.monotonic() + 20
            while len(admin.get("/api/v1/runs").json()["runs"]) < number + 1:
                assert time.monotonic() < deadline, "the tick did not fire"
                time.sleep(0.1)
            time.sleep(2.2)  # both housekeepers have looked at least twice
        runs = admin.get("/api/v1/runs").json()["runs"]
        assert len(runs) == 2 and len({r["idempotency_key"] for r in runs}) == 2


def test_racing_firings_of_one_tick_queue_one_run(state, vault, database, organizations):
    """The rule itself, raced: eight threads over two states fire the same due tick."""
    from adobot.control_room.state import open_state
    from adobot.runs.bundles import Upload
    from adobot.runs.schedules import NewSchedule, Schedules

    state.runs.upload(Upload(**bundle(organizations.org_url())), "alice")
    Schedules(state.runs).create(NewSchedule(name="race", bot="nightly", cron="0 0 1 1 *",
                                             variables={"pat": CANARY}), "alice")
    with open_state(vault, database) as other:
        due_now(state, "race")
        fired: list[str] = []
        barrier = threading.Barrier(8)

        def fire(room) -> None:
            barrier.wait()
            fired.extend(Schedules(room.runs).fire_due())
        threads = [threading.Thread(target=fire, args=(room,))
                   for room in (state, other) * 4]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    assert len(fired) == 1 and len(state.store.runs.list()) == 1


def test_a_version_too_large_for_the_database_is_refused(state, organizations):
    """Found by schemathesis: a version of 2^75 reached the database and failed there (500)."""
    from adobot.control_room.server import ControlRoom

    with ControlRoom(state) as room:
        admin = Caller(room.url, issue(state, "administrator", "alice"))
        for path, body in (("/api/v1/schedules", {"name": "x", "bot": "x", "cron": "* * * * *",
                                                 "version": 2**75}),
                           ("/api/v1/runs", {"bot": "x", "version": 2**75})):
            answer = admin.post(path, json=body)
            assert answer.status_code == 422 and answer.json()["error"]["field"].startswith(
                "version"), answer.text
