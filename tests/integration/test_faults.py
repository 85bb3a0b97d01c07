"""Faults of a real service, injected into the sandbox: each kind on reads and on creates.
Nothing is lost, nothing is created twice, and every failure says what happened."""
from __future__ import annotations

import json
import time

import pytest
import requests

from adobot.runtime.loader import parse_bot
from adobot.runtime.runner import Runner
from adobot.actions.environment import Environment
from tests.conftest import DEMO_PAT, sandbox_route

SETTINGS = {"retry_attempts": 4, "retry_budget_seconds": 30}


def run(sandbox, *steps: dict, settings: dict | None = None):
    connect = {"action": "Connect", "inputs": {
        "organization_url": "https://dev.azure.com/contoso", "project": "Payments",
        "personal_access_token": {"variable": "pat"}}}
    text = json.dumps({"name": "faults", "settings": {**SETTINGS, **(settings or {})},
                       "steps": [connect, *steps]})
    return Runner(Environment(route=sandbox_route(sandbox))).run(parse_bot(text), {"pat": DEMO_PAT})


def step(action: str, output: str | None = None, **inputs) -> dict:
    data = {"action": action, "inputs": inputs}
    if output:
        data["outputs"] = {next(iter(_OUTPUTS[action])): output}
    return data


_OUTPUTS = {"ListRepos": ["count"], "CreateRepo": ["repository"], "CreatePipeline": ["pipeline"],
            "CreateWorkItem": ["work_item"], "QueueRun": ["run"]}


def fault(sandbox, **rule) -> None:
    sandbox.state.faults.add(rule)


def sent(sandbox, method: str, fragment: str) -> int:
    return sum(1 for r in sandbox.state.requests if r["method"] == method and fragment in r["path"])


def repos(sandbox) -> list[str]:
    return [r.name for r in sandbox.state.organization("contoso").project("Payments").repositories]


# --- reads: retried whatever happened --------------------------------------------------------

@pytest.mark.parametrize("rule", [
    {"kind": "throttle", "retry_after": "0", "times": 2},
    {"kind": "error", "status": 503, "retry_after": None, "times": 2},
    {"kind": "error", "status": 502, "times": 1},
    {"kind": "error", "status": 504, "times": 1},
    {"kind": "reset_before", "times": 2},
    {"kind": "reset_after", "times": 2},
], ids=lambda r: f"{r['kind']}-{r.get('status', '')}")
def test_a_read_rides_out_transient_faults(sandbox, rule):
    fault(sandbox, method="GET", path="git/repositories", **rule)
    result = run(sandbox, step("ListRepos", "n"))
    assert result.status == "succeeded", result.error
    assert result.variables["n"] == 4
    assert result.steps[1].requests == 1 + rule["times"]  # the --json result shows the retries


def test_retry_after_is_honoured(sandbox):
    fault(sandbox, kind="throttle", method="GET", path="git/repositories", retry_after="1")
    started = time.monotonic()
    result = run(sandbox, step("ListRepos", "n"))
    assert result.status == "succeeded" and time.monotonic() - started >= 1.0


def test_retry_after_as_an_http_date(sandbox):
    from email.utils import formatdate

    fault(sandbox, kind="throttle", method="GET", path="git/repositories",
          retry_after=formatdate(time.time() + 1, usegmt=True))
    assert run(sandbox, step("ListRepos", "n")).status == "succeeded"


def test_throttling_that_outlasts_the_retries_is_throttled(sandbox):
    fault(sandbox, kind="throttle", method="GET", path="git/repositories", retry_after="0",
          times=None)
    result = run(sandbox, step("ListRepos"), settings={"retry_attempts": 3})
    assert result.error["code"] == "THROTTLED" and result.exit_code == 1
    assert "gave up after 3 attempts over" in result.error["message"]
    assert "TF400733" in result.error["message"]


def test_an_outage_that_outlasts_the_budget_is_service_error(sandbox):
    fault(sandbox, kind="error", status=503, retry_after="2", method="GET",
          path="git/repositories", times=None)
    started = time.monotonic()
    result = run(sandbox, step("ListRepos"), settings={"retry_budget_seconds": 3})
    assert result.error["code"] == "SERVICE_ERROR"
    assert "HTTP 503" in result.error["message"] and "gave up after 2 attempts" in result.error["message"]
    assert time.monotonic() - started < 5  # the budget, not the attempts, ended it


def test_a_hung_server_never_hangs_a_bot(sandbox):
    fault(sandbox, kind="slow", delay=1.5, method="GET", path="git/repositories", times=None)
    started = time.monotonic()
    result = run(sandbox, step("ListRepos"), settings={"read_timeout_seconds": 0.3,
                                                      "retry_attempts": 2})
    assert result.error["code"] == "TIMEOUT"
    assert "0.3 s (read timeout)" in result.error["message"]
    assert "gave up after 2 attempts" in result.error["message"]
    assert time.monotonic() - started < 3


def test_a_sign_in_page_is_auth_failed_and_not_retried(sandbox):
    fault(sandbox, kind="signin", method="GET", path="git/repositories")
    result = run(sandbox, step("ListRepos"))
    assert result.error["code"] == "AUTH_FAILED" and "sign-in page" in result.error["message"]
    assert result.steps[1].requests == 1


def test_slowing_down_ahead_of_the_rate_limit(sandbox):
    fault(sandbox, kind="headers", method="GET", path="projects", headers={
        "X-RateLimit-Limit": "200", "X-RateLimit-Remaining": "2",
        "X-RateLimit-Reset": str(int(time.time()) + 2)})
    started = time.monotonic()
    result = run(sandbox, step("ListRepos", "n"))
    assert result.status == "succeeded"
    assert time.monotonic() - started >= 0.4  # paused before the next request


# --- creates: never duplicated ---------------------------------------------------------------

@pytest.mark.parametrize("rule, attempts", [
    ({"kind": "throttle", "retry_after": "0"}, 2),        # refused without acting: resent
    ({"kind": "reset_before"}, 3),                        # lost, looked up (absent), resent
    ({"kind": "reset_after"}, 2),                         # acted, answer lost: looked up
    ({"kind": "error", "status": 503, "retry_after": None}, 3),  # may have acted: looked up
])
def test_create_repo_is_never_duplicated(sandbox, rule, attempts):
    fault(sandbox, method="POST", path="git/repositories", **rule)
    result = run(sandbox, step("CreateRepo", "repo", name="new-svc"))
    assert result.status == "succeeded", result.error
    assert repos(sandbox).count("new-svc") == 1
    assert result.variables["repo"]["name"] == "new-svc"
    assert result.steps[1].requests == attempts


@pytest.mark.parametrize("kind", ["reset_after", "reset_before"])
def test_create_pipeline_is_never_duplicated(sandbox, kind):
    fault(sandbox, kind=kind, method="POST", path="_apis/pipelines$")
    result = run(sandbox, step("CreatePipeline", "p", name="new-ci", repository="infra"))
    assert result.status == "succeeded", result.error
    project = sandbox.state.organization("contoso").project("Payments")
    assert [p.name for p in project.pipelines].count("new-ci") == 1
    assert result.variables["p"]["id"] == next(p.id for p in project.pipelines if p.name == "new-ci")


def test_a_lost_work_item_answer_is_reported_not_guessed(sandbox):
    fault(sandbox, kind="reset_after", method="POST", path="wit/workitems")
    result = run(sandbox, step("CreateWorkItem", type="Task", title="Only once"))
    assert result.error["code"] == "NETWORK_ERROR" and result.exit_code == 1
    assert "The outcome is unknown" in result.error["message"]
    assert "/Payments/_workitems/recentlycreated/" in result.error["message"]
    assert "'Only once'" in result.error["message"]
    assert len(sandbox.state.work_items) == 1 and sent(sandbox, "POST", "wit/workitems") == 1


def test_a_lost_run_answer_is_reported_not_guessed(sandbox):
    fault(sandbox, kind="reset_after", method="POST", path="/runs")
    result = run(sandbox, step("QueueRun", pipeline=1))
    assert result.error["code"] == "NETWORK_ERROR" and "_build?definitionId=1" in result.error["message"]
    assert len(sandbox.state.queued_runs()) == 1


@pytest.mark.parametrize("action, inputs, store", [
    ("CreateWorkItem", {"type": "Task", "title": "x"}, "work_items"),
    ("QueueRun", {"pipeline": 1}, "runs"),  # counted by stats(): the seed's past runs left out
])
def test_throttled_creates_are_resent_once_refused(sandbox, action, inputs, store):
    fault(sandbox, kind="throttle", retry_after="0", method="POST", times=2)
    result = run(sandbox, step(action, **inputs))
    assert result.status == "succeeded", result.error
    assert sandbox.state.stats()[store] == 1 and result.steps[1].requests == 3


@pytest.mark.parametrize("action, inputs", [
    ("CreateWorkItem", {"type": "Task", "title": "x"}), ("QueueRun", {"pipeline": 1})])
def test_a_5xx_on_a_create_that_cannot_be_looked_up_is_not_resent(sandbox, action, inputs):
    fault(sandbox, kind="error", status=500, method="POST")
    result = run(sandbox, step(action, **inputs))
    assert result.error["code"] == "SERVICE_ERROR" and "outcome is unknown" in result.error["message"]
    assert result.steps[1].requests == 1


# --- the admin route ---------------------------------------------------------------------------

def test_faults_through_the_admin_route(sandbox):
    url = f"{sandbox.url}/_sandbox/faults"
    created = requests.post(url, json={"kind": "error", "status": 502, "path": "projects"})
    assert created.status_code == 201 and created.json()["id"] == 1
    assert requests.get(url).json()["count"] == 1
    bad = requests.post(url, json={"kind": "explode"})
    assert bad.status_code == 400 and "kind must be one of" in bad.json()["message"]
    assert requests.delete(url).status_code == 204
    assert requests.get(url).json()["count"] == 0
    assert sandbox.state.requests == []  # admin calls are not part of the record


def test_faults_from_the_seed():
    from adobot.sandbox import Sandbox
    from adobot.sandbox.state import default_seed

    seed = {**default_seed(), "faults": [{"kind": "throttle", "retry_after": "0", "every": 2,
                                          "times": None, "method": "GET", "path": "projects"}]}
    with Sandbox(seed=seed) as sb:
        statuses = [requests.get(f"{sb.url}/contoso/_apis/projects", auth=("", DEMO_PAT)).status_code
                    for _ in range(4)]
    assert statuses == [200, 429, 200, 429]


def test_stats_route_counts_for_outside_drivers(sandbox):
    run(sandbox, step("CreateWorkItem", type="Task", title="a"),
        step("CreateWorkItem", type="Task", title="a"))
    stats = requests.get(f"{sandbox.url}/_sandbox/stats").json()
    assert stats["work_items"] == 2 and stats["distinct_work_item_titles"] == 1
    assert stats["requests"] == 4 and stats["repositories"] == 4
