"""The exact requests each action sends (method, route, api-version, content type, body),
with requests-mock standing in for the service."""
from __future__ import annotations

import pytest
import requests
import requests_mock as rm

from adobot.actions import registry
from adobot.actions.base import ActionContext
from adobot.credentials.secret import Secret
from adobot.rest.auth import PatAuthorizer
from adobot.rest.client import RestClient, count_requests
from adobot.errors import AdobotError
from adobot.rest.retry import RetryPolicy
from adobot.sessions.session import Session
from adobot.sessions.store import SessionScopes

BASE = "https://dev.azure.com/contoso"
PID = "6ce954b1-ce1f-45d1-b94d-e6bf2464ba2c"
REPO_ID = "5febef5a-833d-4e14-b9c0-14cb638f91e6"
PROJECT = f"{BASE}/{PID}"


@pytest.fixture
def ctx():
    scopes = SessionScopes()
    session = Session(name="default", scope="local", organization="contoso",
                      organization_url=BASE, project_id=PID, project_name="Payments",
                      user="Jamal", rest=RestClient(BASE, PatAuthorizer(Secret("mock-pat")),
                                                     policy=RetryPolicy(sleep=lambda s: None)))
    scopes.add(session)
    context = ActionContext(sessions=scopes, sleep=lambda seconds: None)
    yield context
    scopes.local.close_all()


def run(ctx, action: str, **inputs):
    chosen = registry.get(action)
    with count_requests() as counter:
        outputs = chosen.run(ctx, chosen.parse_inputs(inputs))
    return outputs, counter.count


def repo_json(name="svc", rid=REPO_ID):
    return {"id": rid, "name": name, "remoteUrl": f"{BASE}/Payments/_git/{name}",
            "webUrl": f"{BASE}/Payments/_git/{name}", "project": {"id": PID}}


def error(message: str, key: str) -> dict:
    return {"$id": "1", "innerException": None, "message": message, "typeName": key,
            "typeKey": key, "errorCode": 0, "eventId": 3000}


# --- ListRepos ---------------------------------------------------------------------------------

def test_list_repos_sends_one_get(ctx, requests_mock):
    requests_mock.get(f"{PROJECT}/_apis/git/repositories",
                      json={"count": 2, "value": [repo_json("Api"), repo_json("web")]})
    outputs, sent = run(ctx, "ListRepos", name_filter="a*")
    assert sent == 1 and requests_mock.last_request.qs == {"api-version": ["7.1"]}
    assert [r.name for r in outputs.repositories] == ["Api"] and outputs.count == 1


# --- CreateRepo --------------------------------------------------------------------------------

def test_create_repo_posts_name_and_project(ctx, requests_mock):
    requests_mock.post(f"{PROJECT}/_apis/git/repositories", status_code=201, json=repo_json())
    outputs, sent = run(ctx, "CreateRepo", name="svc")
    request = requests_mock.last_request
    assert sent == 1 and request.method == "POST"
    assert request.qs == {"api-version": ["7.1"]}
    assert request.headers["Content-Type"] == "application/json"
    assert request.json() == {"name": "svc", "project": {"id": PID}}
    assert outputs.created is True and outputs.repository.id == REPO_ID


def test_create_repo_existing_fails_by_default(ctx, requests_mock):
    requests_mock.post(f"{PROJECT}/_apis/git/repositories", status_code=409, json=error(
        "TF400948: A Git repository with the name svc already exists.",
        "GitRepositoryNameAlreadyExistsException"))
    with pytest.raises(AdobotError) as caught:
        run(ctx, "CreateRepo", name="svc")
    assert caught.value.code == "ALREADY_EXISTS"
    assert "repository 'svc' in project 'Payments'" in caught.value.message
    assert "if_exists: reuse" in caught.value.hint


def test_create_repo_reuse_looks_the_name_up(ctx, requests_mock):
    requests_mock.post(f"{PROJECT}/_apis/git/repositories", status_code=409, json=error(
        "TF400948: exists", "GitRepositoryNameAlreadyExistsException"))
    requests_mock.get(f"{PROJECT}/_apis/git/repositories/svc", json=repo_json())
    outputs, sent = run(ctx, "CreateRepo", name="svc", if_exists="reuse")
    assert sent == 2 and outputs.created is False and outputs.repository.id == REPO_ID


# --- CreatePipeline ----------------------------------------------------------------------------

PIPELINE = {"id": 7, "name": "svc-ci", "folder": "\\ci", "revision": 1,
            "url": f"{PROJECT}/_apis/pipelines/7", "_links": {"web": {"href": f"{BASE}/web/7"}}}


def test_create_pipeline_by_repository_name(ctx, requests_mock):
    requests_mock.get(f"{PROJECT}/_apis/git/repositories/svc", json=repo_json())
    requests_mock.post(f"{PROJECT}/_apis/pipelines", json=PIPELINE)
    outputs, sent = run(ctx, "CreatePipeline", name="svc-ci", repository="svc", folder="/ci")
    assert sent == 2
    post = requests_mock.request_history[1]
    assert post.method == "POST" and post.qs == {"api-version": ["7.1"]}
    assert post.json() == {"name": "svc-ci", "folder": "\\ci", "configuration": {
        "type": "yaml", "path": "azure-pipelines.yml",
        "repository": {"id": REPO_ID, "type": "azureReposGit"}}}
    assert outputs.pipeline.model_dump() == {"id": 7, "name": "svc-ci", "folder": "\\ci",
                                             "web_url": f"{BASE}/web/7"}
    assert ctx.sessions.find("default").pipeline_ids["svc-ci"] == 7


def test_create_pipeline_by_repository_id_sends_one_request(ctx, requests_mock):
    requests_mock.post(f"{PROJECT}/_apis/pipelines", json=PIPELINE)
    _, sent = run(ctx, "CreatePipeline", name="svc-ci", repository=REPO_ID,
                  yaml_path="build/ci.yaml")
    assert sent == 1
    assert requests_mock.last_request.json()["configuration"]["path"] == "build/ci.yaml"
    assert requests_mock.last_request.json()["folder"] == "\\"


@pytest.mark.parametrize("status, body", [
    (409, error("Build pipeline svc-ci already exists for project Payments", "DefinitionExistsException")),
    (400, error("Build pipeline svc-ci already exists for project Payments", "DefinitionExistsException")),
])
def test_create_pipeline_duplicate(ctx, requests_mock, status, body):
    requests_mock.post(f"{PROJECT}/_apis/pipelines", status_code=status, json=body)
    with pytest.raises(AdobotError) as caught:
        run(ctx, "CreatePipeline", name="svc-ci", repository=REPO_ID)
    assert caught.value.code == "ALREADY_EXISTS" and "pipeline 'svc-ci'" in caught.value.message


def test_create_pipeline_missing_repository(ctx, requests_mock):
    requests_mock.get(f"{PROJECT}/_apis/git/repositories/nope", status_code=404, json=error(
        "TF401019: The Git repository with name or identifier nope does not exist",
        "GitRepositoryNotFoundException"))
    with pytest.raises(AdobotError) as caught:
        run(ctx, "CreatePipeline", name="svc-ci", repository="nope")
    assert caught.value.code == "NOT_FOUND" and "repository 'nope'" in caught.value.message
    assert requests_mock.call_count == 1


# --- QueueRun ----------------------------------------------------------------------------------

def run_json(state="inProgress", result=None, run_id=42):
    data = {"id": run_id, "name": "20261123.1", "state": state,
            "_links": {"web": {"href": f"{BASE}/Payments/_build/results?buildId={run_id}"}}}
    if result:
        data["result"] = result
    return data


def test_queue_run_by_id_sends_one_post_with_everything(ctx, requests_mock):
    requests_mock.post(f"{PROJECT}/_apis/pipelines/7/runs", json=run_json())
    outputs, sent = run(ctx, "QueueRun", pipeline=7, branch="main",
                        template_parameters={"environment": "prod", "replicas": 3},
                        variables={"verbose": True, "key": {"value": "s", "is_secret": True}})
    assert sent == 1
    request = requests_mock.last_request
    assert request.qs == {"api-version": ["7.1"]}
    assert request.json() == {
        "resources": {"repositories": {"self": {"refName": "refs/heads/main"}}},
        "templateParameters": {"environment": "prod", "replicas": "3"},  # the spec: string -> string
        "variables": {"verbose": {"value": "true", "isSecret": False},
                      "key": {"value": "s", "isSecret": True}}}
    assert outputs.run.model_dump() == {"id": 42, "name": "20261123.1", "state": "inProgress",
                                        "result": None,
                                        "web_url": f"{BASE}/Payments/_build/results?buildId=42"}


def test_queue_run_minimal_body_and_full_ref(ctx, requests_mock):
    requests_mock.post(f"{PROJECT}/_apis/pipelines/7/runs", json=run_json())
    run(ctx, "QueueRun", pipeline="7")
    assert requests_mock.last_request.json() == {}
    run(ctx, "QueueRun", pipeline=7, branch="refs/pull/12/merge")
    assert requests_mock.last_request.json()["resources"]["repositories"]["self"]["refName"] == \
        "refs/pull/12/merge"


def test_queue_run_by_name_pages_through_pipelines(ctx, requests_mock):
    pages = f"{PROJECT}/_apis/pipelines"
    requests_mock.get(pages, [
        {"json": {"count": 1, "value": [{"id": 1, "name": "other", "folder": "\\"}]},
         "headers": {"x-ms-continuationtoken": "tok1"}},
        {"json": {"count": 1, "value": [{"id": 7, "name": "svc-ci", "folder": "\\ci"}]}},
    ])
    requests_mock.post(f"{PROJECT}/_apis/pipelines/7/runs", json=run_json())
    _, sent = run(ctx, "QueueRun", pipeline="svc-ci")
    history = requests_mock.request_history
    assert sent == 3
    assert history[0].qs == {"api-version": ["7.1"], "$top": ["1000"]}
    assert history[1].qs == {"api-version": ["7.1"], "$top": ["1000"], "continuationtoken": ["tok1"]}
    _, again = run(ctx, "QueueRun", pipeline="\\ci\\svc-ci")  # learnt: no second lookup
    assert again == 1


def test_queue_run_ambiguous_name(ctx, requests_mock):
    requests_mock.get(f"{PROJECT}/_apis/pipelines", json={"count": 2, "value": [
        {"id": 1, "name": "ci", "folder": "\\a"}, {"id": 2, "name": "ci", "folder": "\\b"}]})
    with pytest.raises(AdobotError) as caught:
        run(ctx, "QueueRun", pipeline="ci")
    assert caught.value.code == "INVALID_INPUT" and "ambiguous" in caught.value.message
    requests_mock.post(f"{PROJECT}/_apis/pipelines/2/runs", json=run_json())
    _, sent = run(ctx, "QueueRun", pipeline="\\b\\ci")
    assert sent == 2


def test_queue_run_waits_with_growing_intervals(ctx, requests_mock):
    slept = []
    ctx.sleep = slept.append
    requests_mock.post(f"{PROJECT}/_apis/pipelines/7/runs", json=run_json())
    requests_mock.get(f"{PROJECT}/_apis/pipelines/7/runs/42", [
        {"json": run_json()}, {"json": run_json()}, {"json": run_json()}, {"json": run_json()},
        {"json": run_json("completed", "succeeded")}])
    outputs, sent = run(ctx, "QueueRun", pipeline=7, wait=True)
    assert sent == 6 and outputs.run.state == "completed" and outputs.run.result == "succeeded"
    assert slept[:3] == [0.2, 0.5, 1.0]
    assert all(b >= a for a, b in zip(slept, slept[1:], strict=False))
    assert all(delay >= 1.0 for delay in slept[2:])


def test_poll_intervals_grow_to_a_cap():
    from adobot.actions.queue_run import POLL_MAX, poll_delays

    delays = [d for d, _ in zip(poll_delays(), range(30), strict=False)]
    assert delays[:3] == [0.2, 0.5, 1.0] and delays[-1] == POLL_MAX
    assert all(1.0 <= d <= POLL_MAX for d in delays[2:])


def test_a_runs_end_is_seen_within_5_s_and_an_hours_wait_costs_under_a_thousand_polls():
    from adobot.actions.queue_run import poll_delays

    waited, polls = 0.0, 0
    for delay in poll_delays():
        assert delay < 5.0  # the end is at most one sleep (plus one round trip) old when seen
        if waited + delay > 3600:
            break
        waited, polls = waited + delay, polls + 1
    assert 700 < polls < 1000  # ~67 per 5-minute window: far inside 200 TSTUs per window


# --- CreateWorkItem ----------------------------------------------------------------------------

ITEM = {"id": 131489, "rev": 1, "fields": {}, "url": f"{BASE}/_apis/wit/workItems/131489",
        "_links": {"html": {"href": f"{BASE}/web/wi.aspx?id=131489"}}}


def test_create_work_item_sends_one_json_patch(ctx, requests_mock):
    requests_mock.post(f"{PROJECT}/_apis/wit/workitems/$User%20Story", json=ITEM)
    outputs, sent = run(ctx, "CreateWorkItem", type="User Story", title="Sample task",
                        description="<b>Do it</b>", assigned_to="jamal@contoso.com",
                        tags=["ops", " q3 "], area_path="Payments\\Web",
                        iteration_path="Payments\\Sprint 1", priority=1, parent_id=297,
                        fields={"Microsoft.VSTS.Scheduling.StoryPoints": 3})
    request = requests_mock.last_request
    assert sent == 1 and request.method == "POST"
    assert request.qs == {"api-version": ["7.1"]}
    assert request.headers["Content-Type"] == "application/json-patch+json"
    assert request.json() == [
        {"op": "add", "path": "/fields/System.Title", "value": "Sample task"},
        {"op": "add", "path": "/fields/System.Description", "value": "<b>Do it</b>"},
        {"op": "add", "path": "/fields/System.AssignedTo", "value": "jamal@contoso.com"},
        {"op": "add", "path": "/fields/System.Tags", "value": "ops; q3"},
        {"op": "add", "path": "/fields/System.AreaPath", "value": "Payments\\Web"},
        {"op": "add", "path": "/fields/System.IterationPath", "value": "Payments\\Sprint 1"},
        {"op": "add", "path": "/fields/Microsoft.VSTS.Common.Priority", "value": 1},
        {"op": "add", "path": "/fields/Microsoft.VSTS.Scheduling.StoryPoints", "value": 3},
        {"op": "add", "path": "/relations/-", "value": {
            "rel": "System.LinkTypes.Hierarchy-Reverse", "url": f"{BASE}/_apis/wit/workItems/297"}},
    ]
    assert outputs.work_item.model_dump() == {"id": 131489, "rev": 1, "url": ITEM["url"],
                                              "web_url": f"{BASE}/web/wi.aspx?id=131489"}


def test_unknown_type_lists_the_valid_ones(ctx, requests_mock):
    requests_mock.post(f"{PROJECT}/_apis/wit/workitems/$Tsk", status_code=404, json=error(
        "VS402323: Work item type Tsk does not exist.", "WorkItemTypeNotFoundException"))
    requests_mock.get(f"{PROJECT}/_apis/wit/workitemtypes", json={"count": 3, "value": [
        {"name": "Bug"}, {"name": "Task"}, {"name": "Old", "isDisabled": True}]})
    with pytest.raises(AdobotError) as caught:
        run(ctx, "CreateWorkItem", type="Tsk", title="x")
    assert caught.value.code == "NOT_FOUND"
    assert "its types: Bug, Task" in caught.value.message and "'Task'" in caught.value.hint
    assert requests_mock.call_count == 2


def test_rule_failure_is_invalid_input_with_the_reason(ctx, requests_mock):
    requests_mock.post(f"{PROJECT}/_apis/wit/workitems/$Bug", status_code=400, json=error(
        "TF401320: Rule Error for field Repro Steps. Error code: Required, InvalidEmpty.",
        "RuleValidationException"))
    with pytest.raises(AdobotError) as caught:
        run(ctx, "CreateWorkItem", type="Bug", title="x")
    assert caught.value.code == "INVALID_INPUT" and caught.value.exit_code == 1
    assert "Repro Steps" in caught.value.message


# --- Every action, every failure of the transport ----------------------------------------------

MINIMAL = {
    "ListRepos": {}, "CreateRepo": {"name": "svc"},
    "CreatePipeline": {"name": "ci", "repository": REPO_ID},
    "QueueRun": {"pipeline": 7}, "CreateWorkItem": {"type": "Task", "title": "x"},
}
FAULTS = {
    "AUTH_FAILED": {"status_code": 401, "json": error(
        "Access Denied: The Personal Access Token used has expired.", "AccessCheckException")},
    "PERMISSION_DENIED": {"status_code": 401, "json": error(
        "TF400813: The user 'u' is not authorized to access this resource.",
        "UnauthorizedRequestException")},
    "THROTTLED": {"status_code": 429, "headers": {"Retry-After": "5"}, "json": error(
        "TF400733: The request has been canceled.", "RequestCanceledException")},
    "SERVICE_ERROR": {"status_code": 503, "text": "Service Unavailable"},
    "TIMEOUT": {"exc": requests.exceptions.ReadTimeout},
    "NETWORK_ERROR": {"exc": requests.exceptions.ConnectionError("reset by peer")},
}


@pytest.mark.parametrize("code", list(FAULTS))
@pytest.mark.parametrize("action", list(MINIMAL))
def test_every_action_reports_transport_failures(ctx, requests_mock, action, code):
    requests_mock.register_uri(rm.ANY, rm.ANY, **FAULTS[code])
    with pytest.raises(AdobotError) as caught:
        run(ctx, action, **MINIMAL[action])
    assert caught.value.code == code
    assert caught.value.exit_code == 1 and caught.value.hint
    assert code in registry.get(action).errors  # the manifest of errors says so


@pytest.mark.parametrize("action", list(MINIMAL))
def test_every_action_needs_a_connected_session(requests_mock, action):
    chosen = registry.get(action)
    with pytest.raises(AdobotError) as caught:
        chosen.run(ActionContext(sessions=SessionScopes()), chosen.parse_inputs(MINIMAL[action]))
    assert caught.value.code == "SESSION_NOT_FOUND" and caught.value.exit_code == 2
    assert requests_mock.call_count == 0


def test_declared_error_codes_are_the_contracts():
    from adobot.errors import ERROR_CODES

    for action in registry.all_actions():
        assert set(action.errors) <= set(ERROR_CODES), action.name


def test_template_parameters_are_sent_as_text(ctx, requests_mock):
    """Runs - Run Pipeline types templateParameters as a map of string to string."""
    requests_mock.post(f"{PROJECT}/_apis/pipelines/7/runs", json=run_json())
    run(ctx, "QueueRun", pipeline=7, template_parameters={
        "replicas": 3, "ratio": 0.5, "dryRun": True, "verbose": False,
        "regions": ["westeurope", "northeurope"], "limits": {"cpu": 2}, "name": "x"})
    assert requests_mock.last_request.json()["templateParameters"] == {
        "replicas": "3", "ratio": "0.5", "dryRun": "true", "verbose": "false",
        "regions": '["westeurope","northeurope"]', "limits": '{"cpu":2}', "name": "x"}


# --- SearchCode: its own host ------------------------------------------------------------------

SEARCH = "https://almsearch.dev.azure.com/contoso"


def test_search_code_posts_to_the_search_host(ctx, requests_mock):
    ctx.sessions.find("default", None).search_url = SEARCH
    requests_mock.post(f"{SEARCH}/Payments/_apis/search/codesearchresults", json={
        "count": 1, "results": [{"fileName": "a.py", "path": "/src/a.py", "matches": {
            "content": [{"charOffset": 4, "length": 3, "line": 2, "column": 4,
                         "codeSnippet": "def run(): pass", "type": "content"}]},
            "repository": {"name": "svc", "id": REPO_ID, "type": "git"},
            "versions": [{"branchName": "main", "changeId": "ab" * 20}]}]})
    outputs, sent = run(ctx, "SearchCode", search_text="run", extension=".py", branch="main")
    body = requests_mock.last_request.json()
    assert sent == 1  # the service gave the lines itself: no file is read
    assert body["searchText"] == "run ext:py" and body["filters"] == {
        "Project": ["Payments"], "Branch": ["main"]}
    assert outputs.results[0].matches[0].model_dump() == {"line": 2, "column": 5,
                                                          "text": "def run(): pass"}


def test_search_code_not_installed(ctx, requests_mock):
    ctx.sessions.find("default", None).search_url = SEARCH
    requests_mock.post(f"{SEARCH}/Payments/_apis/search/codesearchresults", status_code=404,
                       json=error("VS800089: The resource cannot be found.",
                                  "VssResourceNotFoundException"))
    with pytest.raises(AdobotError) as raised:
        run(ctx, "SearchCode", search_text="run")
    assert raised.value.code == "NOT_FOUND"
    assert "Code Search extension is not installed" in raised.value.message
