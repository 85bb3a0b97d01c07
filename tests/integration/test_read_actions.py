"""The actions an investigating bot needs (issue 17), over real HTTP against the sandbox:
their requests, outputs, errors and the references people paste (names, ids, URLs)."""
from __future__ import annotations

import json

import pytest

from adobot.sandbox import Sandbox
from adobot.sandbox.state import WorkItem, default_seed
from tests.conftest import DEMO_PAT, EXAMPLES, run_file, run_text

ORG = "https://dev.azure.com/contoso"


def bot(*steps: dict) -> str:
    connect = {"action": "Connect", "inputs": {
        "organization_url": ORG, "project": "Payments", "personal_access_token": {"variable": "pat"}}}
    return json.dumps({"name": "t", "steps": [connect, *steps]})


def step(action: str, outputs: dict | None = None, **inputs) -> dict:
    return {"action": action, "inputs": inputs, **({"outputs": outputs} if outputs else {})}


def run(sandbox, *steps: dict, token: str = DEMO_PAT):
    return run_text(bot(*steps), sandbox, pat=token)


def ok(result) -> dict:
    assert result.status == "succeeded", result.error
    return result.variables


def failed(result, code: str, exit_code: int = 1) -> dict:
    assert result.status == "failed" and result.error["code"] == code, result.error
    assert result.exit_code == exit_code
    return result.error


def requests_of(result, action: str) -> int:
    return next(s.requests for s in result.steps if s.action == action)


# --- ListCommits ------------------------------------------------------------------------------

def test_list_commits_newest_first_in_one_request(sandbox):
    result = run(sandbox, step("ListCommits", {"commits": "c", "count": "n"},
                               repository="payments-api"))
    found = ok(result)
    assert [c["comment"] for c in found["c"]] == [
        "Lower the capture timeout to 10 s", "Test that retries give up after five attempts",
        "Retry card captures with exponential backoff", "Initial commit"]
    assert found["c"][0]["author"] == "Jamal Reyes" and found["c"][0]["date"] == "2026-01-08T15:05:00Z"
    assert found["c"][0]["web_url"].endswith(f"/_git/payments-api/commit/{found['c'][0]['id']}")
    assert requests_of(result, "ListCommits") == 1


@pytest.mark.parametrize("inputs, comments", [
    ({"path": "src/retry.py"}, ["Retry card captures with exponential backoff", "Initial commit"]),
    ({"author": "avery@contoso.example"}, ["Test that retries give up after five attempts",
                                           "Retry card captures with exponential backoff"]),
    ({"from_date": "2026-01-07T00:00:00Z", "to_date": "2026-01-08T12:00:00Z"},
     ["Test that retries give up after five attempts",
      "Retry card captures with exponential backoff"]),
    ({"max_count": 1}, ["Lower the capture timeout to 10 s"]),
    ({"branch": "release/1.2"}, ["Initial commit"]),
])
def test_list_commits_filters(sandbox, inputs, comments):
    found = ok(run(sandbox, step("ListCommits", {"commits": "c"}, repository="payments-api",
                                 **inputs)))
    assert [c["comment"] for c in found["c"]] == comments


def test_list_commits_names_a_missing_branch(sandbox):
    error = failed(run(sandbox, step("ListCommits", repository="payments-api", branch="nope")),
                   "NOT_FOUND")
    assert "branch 'nope' does not exist in repository 'payments-api'" in error["message"]


@pytest.mark.parametrize("url", [
    f"{ORG}/Payments/_git/payments-api",
    "https://contoso.visualstudio.com/Payments/_git/payments-api",
    "https://contoso@dev.azure.com/contoso/Payments/_git/payments-api",
])
def test_a_repository_may_be_its_url(sandbox, url):
    found = ok(run(sandbox, step("ListCommits", {"count": "n"}, repository=url)))
    assert found["n"] == 4


def test_a_repository_url_of_another_project_names_both_and_sends_nothing(sandbox):
    result = run(sandbox, step("ListCommits", repository=f"{ORG}/Empty/_git/payments-api"))
    error = failed(result, "INVALID_INPUT", exit_code=2)
    assert "contoso/Empty" in error["message"] and "contoso/Payments" in error["message"]
    assert requests_of(result, "ListCommits") == 0


def test_a_malformed_repository_url_is_refused_before_the_run(sandbox):
    result = run(sandbox, step("ListCommits", repository=f"{ORG}/Payments/_wiki/payments-api"))
    error = failed(result, "INVALID_INPUT", exit_code=2)
    assert "is not a repository URL" in error["message"]


# --- GetFile and ListFiles ---------------------------------------------------------------------

def test_get_file_reads_text_at_a_branch_or_commit(sandbox):
    found = ok(run(sandbox, step("GetFile", {"file": "f"}, repository="payments-api",
                                 path="src/capture.py"),
                   step("ListCommits", {"commits": "c"}, repository="payments-api"),
                   step("GetFile", {"file": "old"}, repository="payments-api",
                        path="/src/capture.py", commit="${c[3].id}")))
    assert found["f"]["content"] == "CAPTURE_TIMEOUT_SECONDS = 10\n"
    assert found["f"]["size"] == 29
    assert found["old"]["content"] == "CAPTURE_TIMEOUT_SECONDS = 30\n"
    assert found["f"]["web_url"] == f"{ORG}/Payments/_git/payments-api?path=/src/capture.py"


@pytest.mark.parametrize("inputs, code, words", [
    ({"path": "src/missing.py"}, "NOT_FOUND",
     "'/src/missing.py' does not exist in repository 'payments-api'"),
    ({"path": "src"}, "INVALID_INPUT", "is a folder"),
    ({"path": "src/capture.py", "max_bytes": 10}, "INVALID_INPUT", "more than max_bytes (10)"),
    ({"path": "README.md", "tag": "v9"}, "NOT_FOUND", "tag 'v9' does not exist"),
])
def test_get_file_refuses_clearly(sandbox, inputs, code, words):
    error = failed(run(sandbox, step("GetFile", repository="payments-api", **inputs)), code)
    assert words in error["message"]


def test_get_file_refuses_a_binary_file(sandbox):
    result = run(sandbox, step("PushFiles", repository="payments-web", branch="main",
                               files=[{"path": "logo.png", "content": "iVBORw0KGgoAAAAN",
                                       "encoding": "base64"}]),
                 step("GetFile", repository="payments-web", path="logo.png"))
    assert "is a binary file" in failed(result, "INVALID_INPUT")["message"]


def test_list_files_one_level_or_all(sandbox):
    found = ok(run(sandbox, step("ListFiles", {"files": "top"}, repository="payments-api"),
                   step("ListFiles", {"files": "all"}, repository="payments-api", path="/",
                        recursive=True)))
    assert [(f["path"], f["is_folder"]) for f in found["top"]] == [
        ("/README.md", False), ("/azure-pipelines.yml", False), ("/src", True), ("/tests", True)]
    assert "/tests/test_retry.py" in [f["path"] for f in found["all"]]


# --- SearchCode and SearchWiki -----------------------------------------------------------------

def test_search_code_gives_files_and_matching_lines(sandbox):
    result = run(sandbox, step("SearchCode", {"results": "r", "count": "n"},
                               search_text="retry_with_backoff", extension="py"))
    found = ok(result)
    assert found["n"] == 2
    by_path = {r["path"]: r for r in found["r"]}
    assert set(by_path) == {"/src/retry.py", "/tests/test_retry.py"}
    assert by_path["/tests/test_retry.py"]["matches"] == [
        {"line": 1, "column": 23, "text": "from src.retry import retry_with_backoff"},
        {"line": 5, "column": 21, "text": "    assert len(list(retry_with_backoff())) == 4"}]
    assert by_path["/src/retry.py"]["repository"] == "payments-api"
    assert requests_of(result, "SearchCode") == 3  # the search, and each file for its lines


def test_search_code_without_the_extension_says_so(sandbox):
    seed = default_seed()
    seed["organizations"]["contoso"]["code_search"] = False
    with Sandbox(seed=seed) as bare:
        error = failed(run(bare, step("SearchCode", search_text="retry")), "NOT_FOUND")
    assert "the Code Search extension is not installed" in error["message"]
    assert "Marketplace" in error["hint"]


def test_search_wiki_gives_pages_and_their_text(sandbox):
    found = ok(run(sandbox, step("SearchWiki", {"results": "r"}, search_text="captures")))
    assert [(r["wiki"], r["path"]) for r in found["r"]] == [
        ("Payments.wiki", "/Runbooks/Payment failures")]
    assert found["r"][0]["highlights"] == [
        "2. Page the payments team if captures fail for 10 minutes."]


# --- GetWikiPage -------------------------------------------------------------------------------

def test_get_wiki_page_with_its_pages(sandbox):
    result = run(sandbox, step("GetWikiPage", {"page": "p", "sub_pages": "under"},
                               path="Runbooks"))
    found = ok(result)
    assert found["p"]["content"].startswith("# Runbooks")
    assert [p["path"] for p in found["under"]] == ["/Runbooks/Payment failures",
                                                   "/Runbooks/Settlement"]
    assert found["p"]["web_url"] == f"{ORG}/Payments/_wiki/wikis/Payments.wiki?pagePath=%2FRunbooks"
    assert requests_of(result, "GetWikiPage") == 1


def test_a_wiki_by_url_and_a_code_wiki(sandbox):
    found = ok(run(sandbox, step("GetWikiPage", {"sub_pages": "all"}, path="/", sub_pages="full",
                                 wiki=f"{ORG}/Payments/_wiki/wikis/Payments.wiki")))
    assert "/Runbooks/Settlement" in [p["path"] for p in found["all"]]


@pytest.mark.parametrize("inputs, words", [
    ({"path": "/Nope"}, "page '/Nope' does not exist in wiki 'Payments.wiki'"),
    ({"wiki": "Ops.wiki"}, "wiki 'Ops.wiki' does not exist in project 'Payments'"),
])
def test_get_wiki_page_names_what_is_missing(sandbox, inputs, words):
    assert words in failed(run(sandbox, step("GetWikiPage", **inputs)), "NOT_FOUND")["message"]


# --- CreatePullRequest -------------------------------------------------------------------------

def test_create_pull_request_then_already_exists_then_reuse(sandbox):
    pr = step("CreatePullRequest", {"pull_request": "pr", "created": "made"},
              repository="payments-api", source_branch="fix/retry-give-up",
              target_branch="refs/heads/main", title="Fix retries",
              reviewers=["reader@contoso.example"], draft=True)
    first = ok(run(sandbox, pr))
    assert first["made"] is True and first["pr"]["is_draft"] is True
    assert first["pr"]["web_url"].endswith("/Payments/_git/payments-api/pullrequest/1")
    stored = sandbox.state.pull_requests[1]
    assert stored.source == "refs/heads/fix/retry-give-up" and len(stored.reviewers) == 1
    error = failed(run(sandbox, pr), "ALREADY_EXISTS")
    assert "already exists" in error["message"] and "/pullrequest/1" in error["message"]
    again = ok(run(sandbox, {**pr, "inputs": {**pr["inputs"], "if_exists": "reuse"}}))
    assert again["made"] is False and again["pr"]["id"] == 1
    assert len(sandbox.state.pull_requests) == 1


def test_create_pull_request_into_the_default_branch_names_a_missing_source(sandbox):
    error = failed(run(sandbox, step("CreatePullRequest", repository="payments-api",
                                     source_branch="feature/gone", title="t")), "NOT_FOUND")
    assert "branch 'feature/gone' does not exist in repository 'payments-api'" in error["message"]


def test_create_pull_request_refuses_one_branch_twice_before_sending(sandbox):
    result = run(sandbox, step("CreatePullRequest", repository="payments-api",
                               source_branch="main", target_branch="refs/heads/main", title="t"))
    assert "the same branch" in failed(result, "INVALID_INPUT", exit_code=2)["message"]


# --- QueryWorkItems ----------------------------------------------------------------------------

def _seed_items(sandbox, count: int, **fields) -> None:
    with sandbox.state.lock:
        for _ in range(count):
            item_id = sandbox.state.next_id("work_item")
            sandbox.state.work_items[item_id] = WorkItem(
                id=item_id, rev=1, type="Task", relations=[], fields={
                    "System.Title": f"item {item_id}", "System.TeamProject": "Payments",
                    "System.WorkItemType": "Task", "System.State": "New",
                    "System.ChangedDate": "2026-01-05T00:00:00Z", **fields})


def test_query_work_items_by_filters(sandbox):
    _seed_items(sandbox, 3)
    _seed_items(sandbox, 2, **{"System.State": "Active", "System.Tags": "ops; triage"})
    result = run(sandbox, step("QueryWorkItems", {"work_items": "w", "count": "n"},
                               state="Active", tags=["triage"],
                               fields=["System.Title", "System.Tags"]))
    found = ok(result)
    assert [w["id"] for w in found["w"]] == [4, 5]
    assert found["w"][0]["fields"] == {"System.Title": "item 4", "System.Tags": "ops; triage"}
    assert found["w"][0]["web_url"] == f"{ORG}/Payments/_workitems/edit/4"
    assert requests_of(result, "QueryWorkItems") == 2  # the query, one batch of fields


def test_query_work_items_by_wiql_keeps_its_order(sandbox):
    _seed_items(sandbox, 4)
    found = ok(run(sandbox, step("QueryWorkItems", {"work_items": "w"}, wiql=(
        "SELECT [System.Title] FROM WorkItems WHERE [System.TeamProject] = @project "
        "AND [System.Id] <> 2 ORDER BY [System.Id] DESC"))))
    assert [w["id"] for w in found["w"]] == [4, 3, 1]


def test_a_large_query_is_read_in_id_ranges_and_batches(sandbox):
    sandbox.state.wiql_limit = 50   # as the service's 20,000, scaled down
    _seed_items(sandbox, 450)
    result = run(sandbox, step("QueryWorkItems", {"work_items": "w", "count": "n"},
                               type="Task", fields=["System.Title"], max_items=420))
    found = ok(result)
    assert found["n"] == 420
    assert [w["id"] for w in found["w"]] == list(range(1, 421))  # none twice, none lost
    queries = [r for r in sandbox.state.requests if r["path"].endswith("/_apis/wit/wiql")]
    batches = [r for r in sandbox.state.requests if r["path"].endswith("/workitemsbatch")]
    assert len(batches) == 3 and len(queries) > 2


def test_a_bad_query_is_the_services_refusal(sandbox):
    error = failed(run(sandbox, step("QueryWorkItems", wiql="SELECT [System.Id] FROM WorkItems "
                                                             "WHERE [Custom.Nope] = 1")),
                   "INVALID_INPUT")
    assert "TF51005" in error["message"]


# --- UpdateWorkItem ----------------------------------------------------------------------------

def test_update_work_item_fields_tags_comment_and_links(sandbox):
    found = ok(run(sandbox,
                   step("CreateWorkItem", {"work_item": "bug"}, type="Bug", title="Captures fail",
                        tags=["ops", "old"]),
                   step("CreatePullRequest", {"pull_request": "pr"}, repository="payments-api",
                        source_branch="fix/retry-give-up", title="Fix"),
                   step("UpdateWorkItem", {"work_item": "after"}, id="${bug.id}",
                        rev="${bug.rev}", state="Active", tags_add=["triage"],
                        tags_remove=["old"], comment="Looking into it",
                        fields={"Microsoft.VSTS.Common.Priority": 1},
                        links=[{"type": "pull_request", "target": "${pr.id}",
                                "repository": "payments-api"}])))
    item = sandbox.state.work_items[found["bug"]["id"]]
    assert found["after"]["rev"] == 2
    assert item.fields["System.State"] == "Active"
    assert item.fields["System.Tags"] == "ops; triage"
    assert item.fields["System.History"] == "Looking into it"
    assert item.fields["Microsoft.VSTS.Common.Priority"] == 1
    assert item.relations[0]["url"].startswith("vstfs:///Git/PullRequestId/")


def test_update_work_item_never_overwrites_a_change_made_meanwhile(sandbox):
    result = run(sandbox,
                 step("CreateWorkItem", {"work_item": "bug"}, type="Bug", title="t"),
                 step("UpdateWorkItem", id="${bug.id}", state="Active"),
                 step("UpdateWorkItem", id="${bug.id}", rev="${bug.rev}", state="Closed"))
    error = failed(result, "CONFLICT")
    assert "changed by someone else since revision 1" in error["message"]
    assert sandbox.state.work_items[1].fields["System.State"] == "Active"


def test_update_work_item_with_nothing_to_change_sends_nothing(sandbox):
    result = run(sandbox, step("UpdateWorkItem", id=1))
    assert "nothing to change" in failed(result, "INVALID_INPUT", exit_code=2)["message"]


def test_update_work_item_names_a_missing_item(sandbox):
    error = failed(run(sandbox, step("UpdateWorkItem", id=999, state="Active")), "NOT_FOUND")
    assert "work item 999" in error["message"]


# --- the example -------------------------------------------------------------------------------

def test_the_triage_example_files_a_bug_linked_to_the_fix(sandbox):
    found = ok(run_file(EXAMPLES / "triage.yaml", sandbox, pat=DEMO_PAT))
    assert found["suspect_count"] == 3
    assert found["hits"][0]["matches"][0]["text"] == "def test_retry_gives_up():"
    bug = sandbox.state.work_items[found["bug"]["id"]]
    assert bug.fields["System.State"] == "Active"
    assert "tests/test_retry.py, line 4" in bug.fields["System.Description"]
    assert bug.relations[0]["attributes"]["name"] == "Pull Request"
    assert sandbox.state.pull_requests[found["fix"]["id"]].target == "refs/heads/main"
