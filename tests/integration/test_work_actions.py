"""CreateRepo, CreatePipeline, QueueRun and CreateWorkItem over real HTTP against the sandbox."""
from __future__ import annotations

import io
import json
import logging
import re

import pytest

from adobot.runtime.loader import parse_bot
from adobot.runtime.progress import TerminalProgress
from adobot.runtime.runner import Runner
from adobot.actions.environment import Environment
from adobot.sandbox import Sandbox
from tests.conftest import DEMO_PAT, EXAMPLES, run_file, run_text, sandbox_route


def bot(*steps: dict, token: str = "pat") -> str:
    connect = {"action": "Connect", "inputs": {
        "organization_url": "https://dev.azure.com/contoso", "project": "Payments",
        "personal_access_token": {"variable": token}, "session": "ado"}}
    return json.dumps({"name": "t", "steps": [connect, *steps]})


def step(action: str, outputs: dict | None = None, **inputs) -> dict:
    data = {"action": action, "inputs": {"session": "ado", **inputs}}
    if outputs:
        data["outputs"] = outputs
    return data


def ok(result):
    assert result.status == "succeeded", result.error
    return result.variables


def failed(result, code: str, exit_code: int = 1) -> dict:
    assert result.status == "failed", result.variables
    assert result.error["code"] == code, result.error
    assert result.exit_code == exit_code
    return result.error


def test_quickstart_runs_the_whole_workflow(sandbox):
    variables = ok(run_file(EXAMPLES / "quickstart.yaml", sandbox, pat=DEMO_PAT))
    assert variables["repo"]["name"] == "payments-worker"
    assert variables["pipeline"]["folder"] == "\\services"
    assert variables["run"]["state"] == "completed" and variables["run"]["result"] == "succeeded"
    item = sandbox.state.work_items[variables["task"]["id"]]
    assert item.fields["System.Tags"] == "onboarding; payments-worker"
    assert item.fields["System.Title"] == "Review the first run of payments-worker-ci"


def test_quickstart_steps_send_the_minimum(sandbox):
    result = run_file(EXAMPLES / "quickstart.yaml", sandbox, pat=DEMO_PAT)
    sent = {s.action: s.requests for s in result.steps}
    polls = sent.pop("QueueRun") - 1
    assert sent == {"Connect": 2, "ListRepos": 1, "CreateRepo": 1, "PushFiles": 1,
                    "CreatePipeline": 1, "CreateWorkItem": 1, "Disconnect": 0}
    assert polls == 2  # the sandbox completes a run on its second look


# --- CreateRepo --------------------------------------------------------------------------------

def test_create_repo_then_list_it(sandbox):
    variables = ok(run_text(bot(step("CreateRepo", {"repository": "r", "created": "c"}, name="new-svc"),
                                step("ListRepos", {"repositories": "all"}, name_filter="new-*")),
                            sandbox, pat=DEMO_PAT))
    assert variables["c"] is True and variables["r"]["default_branch"] is None
    assert [r["name"] for r in variables["all"]] == ["new-svc"]
    assert variables["r"]["id"] == variables["all"][0]["id"]


def test_create_repo_existing(sandbox):
    error = failed(run_text(bot(step("CreateRepo", name="PAYMENTS-API")), sandbox, pat=DEMO_PAT),
                   "ALREADY_EXISTS")
    assert "repository 'PAYMENTS-API' in project 'Payments'" in error["message"]
    assert "TF400948" in error["message"]
    reused = ok(run_text(bot(step("CreateRepo", {"repository": "r", "created": "c"},
                                  name="payments-api", if_exists="reuse")), sandbox, pat=DEMO_PAT))
    assert reused["c"] is False and reused["r"]["default_branch"] == "refs/heads/main"


def test_create_repo_needs_code_manage(sandbox):
    error = failed(run_text(bot(step("CreateRepo", name="x")), sandbox,
                            pat="sandbox-code-read-pat"), "PERMISSION_DENIED")
    assert "Code (Read, write, & manage)" in error["message"]


# --- CreatePipeline ----------------------------------------------------------------------------

def test_create_pipeline_by_name_and_by_id(sandbox):
    variables = ok(run_text(bot(
        step("CreatePipeline", {"pipeline": "p1"}, name="api-ci", repository="payments-api"),
        step("ListRepos", {"repositories": "repos"}, name_filter="payments-web"),
        step("CreatePipeline", {"pipeline": "p2"}, name="web-ci", repository="${repos[0].id}",
             yaml_path="ci/build.yaml", folder="\\web\\ci")), sandbox, pat=DEMO_PAT))
    assert variables["p1"]["folder"] == "\\" and variables["p2"]["folder"] == "\\web\\ci"
    project = sandbox.state.organization("contoso").project("Payments")
    created = project.pipeline(variables["p2"]["id"])
    assert created.path == "ci/build.yaml" and created.repository_id == variables["repos"][0]["id"]


def test_create_pipeline_errors(sandbox):
    missing = failed(run_text(bot(step("CreatePipeline", name="x", repository="nope")),
                              sandbox, pat=DEMO_PAT), "NOT_FOUND")
    assert "repository 'nope'" in missing["message"]
    missing_id = failed(run_text(bot(step("CreatePipeline", name="x",
                                          repository="00000000-0000-0000-0000-000000000000")),
                                 sandbox, pat=DEMO_PAT), "NOT_FOUND")
    assert "00000000-0000-0000-0000-000000000000" in missing_id["message"]
    exists = failed(run_text(bot(step("CreatePipeline", name="nightly-settlement",
                                      repository="infra", folder="/ops")),
                             sandbox, pat=DEMO_PAT), "ALREADY_EXISTS")
    assert "pipeline 'nightly-settlement'" in exists["message"]
    # the same name in another folder is fine
    ok(run_text(bot(step("CreatePipeline", name="nightly-settlement", repository="infra")),
                sandbox, pat=DEMO_PAT))
    denied = failed(run_text(bot(step("CreatePipeline", name="x", repository="infra")), sandbox,
                             pat="sandbox-code-read-pat"), "PERMISSION_DENIED")
    assert "Build (Read & execute)" in denied["message"]


# --- QueueRun ----------------------------------------------------------------------------------

def test_queue_run_by_name_with_parameters(sandbox):
    variables = ok(run_text(bot(step("QueueRun", {"run": "r"}, pipeline="payments-api-ci",
                                     branch="release/1.2", template_parameters={"environment": "prod"},
                                     variables={"debug": True})), sandbox, pat=DEMO_PAT))
    assert variables["r"]["state"] == "inProgress" and variables["r"]["result"] is None
    stored = sandbox.state.runs[variables["r"]["id"]]
    assert stored.ref_name == "refs/heads/release/1.2"
    assert stored.template_parameters == {"environment": "prod"}
    assert stored.variables == {"debug": {"value": "true", "isSecret": False}}


def test_queue_run_wait_reports_the_result(sandbox, caplog):
    caplog.set_level(logging.INFO, logger="adobot")
    variables = ok(run_text(bot(step("QueueRun", {"run": "r"}, pipeline="\\ops\\nightly-settlement",
                                     wait=True)), sandbox, pat=DEMO_PAT))
    assert variables["r"]["state"] == "completed" and variables["r"]["result"] == "failed"
    messages = [r.getMessage() for r in caplog.records]
    assert sum("completed (failed)" in m for m in messages) == 1  # one line per state change
    assert any("completed with result failed" in m for m in messages)


def test_queue_run_wait_times_out_with_the_link():
    seed = json.loads((EXAMPLES.parent / "adobot" / "sandbox" / "seed.json").read_text())
    seed["organizations"]["contoso"]["projects"][0]["pipelines"][0]["run_polls"] = -1
    with Sandbox(seed=seed) as sb:
        result = run_text(bot(step("QueueRun", pipeline="payments-api-ci", wait=True,
                                   timeout_seconds=1)), sb, pat=DEMO_PAT)
    error = failed(result, "TIMEOUT")
    assert "did not complete within 1 s" in error["message"]
    assert "_build/results?buildId=" in error["message"]


def test_queue_run_progress_on_a_terminal(sandbox):
    stream = io.StringIO()
    progress = TerminalProgress(stream)
    runner = Runner(Environment(route=sandbox_route(sandbox), progress=progress))
    result = runner.run(parse_bot(bot(step("QueueRun", pipeline="payments-api-ci", wait=True))),
                        {"pat": DEMO_PAT})
    assert result.status == "succeeded"
    text = stream.getvalue()
    assert re.search(r"\r\x1b\[2Krun \d+: inProgress", text) and "completed (succeeded)" in text
    assert text.endswith("\r\x1b[2K")  # cleared when the step ended


def test_queue_run_errors(sandbox):
    failed(run_text(bot(step("QueueRun", pipeline="nope")), sandbox, pat=DEMO_PAT), "NOT_FOUND")
    failed(run_text(bot(step("QueueRun", pipeline=999)), sandbox, pat=DEMO_PAT), "NOT_FOUND")
    refused = failed(run_text(bot(step("QueueRun", pipeline="payments-api-ci",
                                       template_parameters={"colour": "red"})),
                              sandbox, pat=DEMO_PAT), "INVALID_INPUT")
    assert "Unexpected parameter 'colour'" in refused["message"]
    failed(run_text(bot(step("QueueRun", pipeline=1)), sandbox, pat="sandbox-code-read-pat"),
           "PERMISSION_DENIED")


# --- CreateWorkItem ----------------------------------------------------------------------------

def test_create_work_item_with_parent_and_fields(sandbox):
    variables = ok(run_text(bot(
        step("CreateWorkItem", {"work_item": "story"}, type="User Story", title="Checkout v2",
             priority=1, fields={"Microsoft.VSTS.Scheduling.StoryPoints": 5}),
        step("CreateWorkItem", {"work_item": "task"}, type="task", title="Write tests",
             parent_id="${story.id}", tags=["qa", "v2"], area_path="Payments",
             assigned_to="demo@contoso.example")), sandbox, pat=DEMO_PAT))
    story = sandbox.state.work_items[variables["story"]["id"]]
    task = sandbox.state.work_items[variables["task"]["id"]]
    assert story.fields["Microsoft.VSTS.Common.Priority"] == 1
    assert story.fields["Microsoft.VSTS.Scheduling.StoryPoints"] == 5
    assert task.type == "Task" and task.fields["System.Tags"] == "qa; v2"
    assert task.relations[0]["rel"] == "System.LinkTypes.Hierarchy-Reverse"
    assert task.relations[0]["url"].endswith(f"/_apis/wit/workItems/{story.id}")
    assert variables["task"]["web_url"].endswith(f"id={task.id}")


def test_create_work_item_errors(sandbox):
    unknown = failed(run_text(bot(step("CreateWorkItem", type="Tsk", title="x")), sandbox,
                              pat=DEMO_PAT), "NOT_FOUND")
    assert "its types: Bug, Epic, Feature, Issue, Task, Test Case, User Story" in unknown["message"]
    assert "'Task'" in unknown["hint"]
    parent = failed(run_text(bot(step("CreateWorkItem", type="Task", title="x", parent_id=9999)),
                             sandbox, pat=DEMO_PAT), "NOT_FOUND")
    assert "parent work item 9999" in parent["message"]
    field = failed(run_text(bot(step("CreateWorkItem", type="Task", title="x",
                                     fields={"Custom.Nope": 1})), sandbox, pat=DEMO_PAT),
                   "INVALID_INPUT")
    assert "TF51535" in field["message"]
    area = failed(run_text(bot(step("CreateWorkItem", type="Task", title="x",
                                    area_path="Elsewhere\\Web")), sandbox, pat=DEMO_PAT),
                  "INVALID_INPUT")
    assert "TF401347" in area["message"]
    # Checked node by node, not by the first segment: the project has Web, not Nowhere.
    for tree, path in (("area_path", "Payments\\Nowhere"), ("area_path", "Payments\\Web\\Deep"),
                       ("iteration_path", "Payments\\Sprint 9")):
        deep = failed(run_text(bot(step("CreateWorkItem", type="Task", title="x", **{tree: path})),
                               sandbox, pat=DEMO_PAT), "INVALID_INPUT")
        assert "TF401347" in deep["message"]
    ok(run_text(bot(step("CreateWorkItem", type="Task", title="x", area_path="Payments\\Web",
                         iteration_path="payments\\sprint 2")), sandbox, pat=DEMO_PAT))
    rule = failed(run_text(bot(step("CreateWorkItem", type="Task", title="x",
                                    fields={"Microsoft.VSTS.Common.Priority": 9})),
                           sandbox, pat=DEMO_PAT), "INVALID_INPUT")
    assert "TF401320" in rule["message"]
    denied = failed(run_text(bot(step("CreateWorkItem", type="Task", title="x")), sandbox,
                             pat="sandbox-code-read-pat"), "PERMISSION_DENIED")
    assert "Work Items (Read & write)" in denied["message"]


@pytest.mark.parametrize("action, inputs, field", [
    # CreateRepo
    ("CreateRepo", {}, "name"), ("CreateRepo", {"name": ""}, "name"),
    ("CreateRepo", {"name": "a/b"}, "name"), ("CreateRepo", {"name": "_x"}, "name"),
    ("CreateRepo", {"name": "x."}, "name"), ("CreateRepo", {"name": "y" * 65}, "name"),
    ("CreateRepo", {"name": "a?b"}, "name"), ("CreateRepo", {"name": 5}, "name"),
    ("CreateRepo", {"name": "ok", "if_exists": "overwrite"}, "if_exists"),
    ("CreateRepo", {"name": "ok", "extra": 1}, "extra"),
    ("CreateRepo", {"name": "ok", "session": "9bad"}, "session"),
    # CreatePipeline
    ("CreatePipeline", {"repository": "r"}, "name"),
    ("CreatePipeline", {"name": "ci"}, "repository"),
    ("CreatePipeline", {"name": "a/b", "repository": "r"}, "name"),
    ("CreatePipeline", {"name": "x" * 256, "repository": "r"}, "name"),
    ("CreatePipeline", {"name": " ci", "repository": "r"}, "name"),
    ("CreatePipeline", {"name": "ci", "repository": ""}, "repository"),
    ("CreatePipeline", {"name": "ci", "repository": "r", "yaml_path": "ci.json"}, "yaml_path"),
    ("CreatePipeline", {"name": "ci", "repository": "r", "yaml_path": "../x.yml"}, "yaml_path"),
    ("CreatePipeline", {"name": "ci", "repository": "r", "yaml_path": ""}, "yaml_path"),
    ("CreatePipeline", {"name": "ci", "repository": "r", "folder": "\\a\\\\b"}, "folder"),
    ("CreatePipeline", {"name": "ci", "repository": "r", "folder": "\\a*b"}, "folder"),
    # QueueRun
    ("QueueRun", {}, "pipeline"), ("QueueRun", {"pipeline": 0}, "pipeline"),
    ("QueueRun", {"pipeline": ""}, "pipeline"), ("QueueRun", {"pipeline": [1]}, "pipeline"),
    ("QueueRun", {"pipeline": 1, "branch": "has space"}, "branch"),
    ("QueueRun", {"pipeline": 1, "branch": "a..b"}, "branch"),
    ("QueueRun", {"pipeline": 1, "branch": "ends/"}, "branch"),
    ("QueueRun", {"pipeline": 1, "timeout_seconds": 0}, "timeout_seconds"),
    ("QueueRun", {"pipeline": 1, "wait": "maybe"}, "wait"),
    ("QueueRun", {"pipeline": 1, "variables": {"bad name": "x"}}, "variables"),
    ("QueueRun", {"pipeline": 1, "variables": {"v": [1, 2]}}, "variables"),
    ("QueueRun", {"pipeline": 1, "template_parameters": {"9x": "y"}}, "template_parameters"),
    ("QueueRun", {"pipeline": 1, "template_parameters": "env=prod"}, "template_parameters"),
    # CreateWorkItem
    ("CreateWorkItem", {"title": "x"}, "type"), ("CreateWorkItem", {"type": "Task"}, "title"),
    ("CreateWorkItem", {"type": "Task", "title": ""}, "title"),
    ("CreateWorkItem", {"type": "Task", "title": "   "}, "title"),
    ("CreateWorkItem", {"type": "Task", "title": "t" * 256}, "title"),
    ("CreateWorkItem", {"type": "Task", "title": "two\nlines"}, "title"),
    ("CreateWorkItem", {"type": "Task", "title": "x", "priority": 0}, "priority"),
    ("CreateWorkItem", {"type": "Task", "title": "x", "priority": 5}, "priority"),
    ("CreateWorkItem", {"type": "Task", "title": "x", "priority": "high"}, "priority"),
    ("CreateWorkItem", {"type": "Task", "title": "x", "tags": "a;b"}, "tags"),
    ("CreateWorkItem", {"type": "Task", "title": "x", "tags": ["a;b"]}, "tags"),
    ("CreateWorkItem", {"type": "Task", "title": "x", "parent_id": -1}, "parent_id"),
    ("CreateWorkItem", {"type": "Task", "title": "x", "fields": {"Title": "y"}}, "fields"),
    ("CreateWorkItem", {"type": "Task", "title": "x", "fields": {"System.Title": "y"}}, "System.Title"),
    ("CreateWorkItem", {"type": "Task", "title": "x", "area_path": "A\\\\B"}, "area_path"),
    ("CreateWorkItem", {"type": "Ta/sk", "title": "x"}, "type"),
])
def test_bad_inputs_send_nothing(sandbox, action, inputs, field):
    text = json.dumps({"name": "bad", "steps": [{"action": action, "inputs": inputs}]})
    result = run_text(text, sandbox)
    error = failed(result, "INVALID_INPUT", exit_code=2)
    assert field in error["message"]
    assert sandbox.state.requests == [] and result.steps[0].requests == 0


@pytest.mark.parametrize("action, inputs", [
    ("ListRepos", {}), ("CreateRepo", {"name": "x"}),
    ("CreatePipeline", {"name": "x", "repository": "infra"}), ("QueueRun", {"pipeline": 1}),
    ("CreateWorkItem", {"type": "Task", "title": "x"}),
])
def test_a_token_revoked_after_connect_is_auth_failed(sandbox, action, inputs):
    from adobot.sessions.store import SessionStore

    sandbox.state.add_token("short-lived", scopes=["app_token"])
    runner = Runner(Environment(route=sandbox_route(sandbox)))
    shared = SessionStore("global")  # two bots share one global session, as parent and child
    connect = json.loads(bot(token="t"))
    connect["steps"][0]["inputs"]["session"] = {"name": "ado", "scope": "global"}
    assert runner.run(parse_bot(json.dumps(connect)), {"t": "short-lived"},
                      global_sessions=shared).status == "succeeded"
    del sandbox.state.tokens["short-lived"]  # revoked by an admin
    result = runner.run(parse_bot(json.dumps({"name": "t2", "steps": [step(action, **inputs)]})),
                        {}, global_sessions=shared)
    shared.close_all()
    error = failed(result, "AUTH_FAILED")
    assert "not accepted" in error["message"]
