"""Bots tried on the page run in the control room itself (issue #31): each is held to a small
run (wall time, steps, loop items, variables), only a few run at once (429 with Retry-After
beyond them), and a run stops when its client leaves."""
from __future__ import annotations

import threading
import time

import requests

from adobot.control_room.routes import workbench as page
from tests.conftest import DEMO_PAT, free_port
from tests.control_room.conftest import Caller, issue

CONNECT = ("  - action: Connect\n    inputs: {organization_url: https://dev.azure.com/contoso, "
           "project: Payments, personal_access_token: {variable: pat}}\n")


def looping(items: int, step: str) -> str:
    return (f"name: loop\nvariables: {{items: {list(range(items))}}}\nsteps:\n{CONNECT}"
            f"  - for_each: ${{items}}\n    as: i\n    steps:\n{step}")


SLOW = looping(100, "      - action: QueueRun\n        inputs: {pipeline: payments-api-ci, "
                    "wait: true}\n")  # about 0.7 s an item
LIST = "      - action: ListRepos\n"


def run(caller: Caller, bot: str, timeout: float = 120) -> requests.Response:
    return requests.post(caller.url + "/api/v1/bots/run", timeout=timeout,
                         headers=caller.headers(),
                         json={"bot": bot, "variables": {"pat": DEMO_PAT}})


def test_a_page_run_is_held_to_its_limits(standard, monkeypatch):
    loop = run(standard, looping(201, LIST)).json()
    assert loop["error"]["code"] == "INVALID_BOT" and "may have 200" in loop["error"]["message"]
    assert [s["action"] for s in loop["steps"]] == ["Connect"]  # nothing of the loop ran
    steps = run(standard, looping(170, LIST * 3)).json()
    assert steps["error"]["code"] == "INVALID_BOT", steps["error"]
    assert "more than the 500 steps" in steps["error"]["message"]
    assert len(steps["steps"]) == 500  # the 501st was refused before it ran
    monkeypatch.setitem(page.PAGE_LIMITS, "seconds", 2.0)
    started = time.monotonic()
    slow = run(standard, SLOW).json()
    assert slow["error"]["code"] == "TIMEOUT" and "longer than the 2 s" in slow["error"]["message"]
    assert time.monotonic() - started < 30  # not the 70 s the bot would take
    monkeypatch.setitem(page.PAGE_LIMITS, "variable_bytes", 300)
    grown = run(standard, f"name: g\nsteps:\n{CONNECT}  - action: ListRepos\n"
                          "    outputs: {repositories: repos}\n").json()
    assert grown["error"]["code"] == "INVALID_BOT" and "variables hold" in grown["error"]["message"]


def test_page_runs_are_capped_and_stop_when_their_client_leaves(room, state, standard, admin,
                                                                monkeypatch):
    monkeypatch.setattr(page, "PAGE_RUNS_PER_TOKEN", 1)
    monkeypatch.setattr(page, "PAGE_RUNS", 2)
    third = Caller(room.url, issue(state, "standard", "carol"))

    def leave_after(caller: Caller, seconds: float) -> None:
        try:  # the client gives up waiting, and goes
            run(caller, SLOW, timeout=seconds)
        except requests.Timeout:
            pass

    bob = threading.Thread(target=leave_after, args=(standard, 4))
    alice = threading.Thread(target=leave_after, args=(admin, 4))
    bob.start()
    time.sleep(1)
    alice.start()
    time.sleep(1)
    twice = run(standard, looping(1, LIST))
    assert twice.status_code == 429 and twice.headers["Retry-After"] == "5", twice.text
    assert "yours" in twice.json()["error"]["message"]
    crowded = run(third, looping(1, LIST))
    assert crowded.status_code == 429 and "everyone's" in crowded.json()["error"]["message"]
    # the cap is full, and the API still answers: the runs are on threads of their own
    for _ in range(20):
        assert requests.get(room.url + "/api/v1/me", headers=third.headers(),
                            timeout=2).status_code == 200
    bob.join()
    alice.join()
    # the clients left: their runs stop at their next step or wait, and free their places
    deadline = time.monotonic() + 20
    while True:
        answer = run(third, looping(1, LIST))
        if answer.status_code != 429 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert answer.status_code == 200 and answer.json()["status"] == "succeeded", answer.text
    assert run(standard, looping(1, LIST)).status_code == 200


def test_sigterm_stops_the_service_with_a_page_run_in_flight(tmp_path):
    """A long page run does not outlive its service: SIGTERM cancels the request, which stops
    the run at its next wait, and the process exits."""
    import subprocess

    from tests.conftest import ADOBOT

    vault = str(tmp_path / "room" / "vault.json")
    token = subprocess.run([str(ADOBOT), "token", "issue", "bob", "--role", "standard",
                            "--vault", vault], capture_output=True, text=True,
                           check=True).stdout.strip()
    port = free_port()
    server = subprocess.Popen([str(ADOBOT), "control-room", "--port", str(port), "--vault", vault],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    caller = Caller(f"http://127.0.0.1:{port}", token)
    for _ in range(300):
        try:
            requests.get(caller.url + "/api/v1/me", headers=caller.headers(), timeout=2)
            break
        except requests.ConnectionError:
            time.sleep(0.1)
    answers: list = []
    client = threading.Thread(target=lambda: answers.append(_attempt(caller)))
    client.start()
    time.sleep(2)  # the run is in its loop of waits
    server.terminate()
    _, err = server.communicate(timeout=30)  # a run that outlived SIGTERM fails here
    client.join(30)
    assert server.returncode is not None and "Traceback" not in err
    assert not client.is_alive()


def _attempt(caller: Caller):
    try:
        return run(caller, SLOW, timeout=60).status_code
    except requests.RequestException as exc:
        return type(exc).__name__


def test_an_empty_bot_is_refused_in_the_envelope(standard):
    """Found by schemathesis: the run's refusal was wrapped by the task group that watches the
    client, and came back as 500."""
    answer = standard.post("/api/v1/bots/run", json={"bot": ""})
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"] == {"code": "INVALID_INPUT", "message": "the bot is empty",
                                      "hint": "Paste a bot file, or upload one.", "field": "bot"}
