"""Every route asks the scopes its spec names, and every PERMISSION_DENIED names the missing
scope in the words of the token page (over real HTTP against the sandbox)."""
from __future__ import annotations

import pytest

from tests.conftest import CONNECT_BOT, run_text



@pytest.mark.parametrize("token, step, words", [
    ("sandbox-code-only-pat", "", "Project and Team (Read)"),   # Projects - Get: vso.project
    ("sandbox-work-only-pat", "{action: ListRepos}", "Code (Read)"),
    ("sandbox-code-read-pat", "{action: CreateRepo, inputs: {name: r}}",
     "Code (Read, write, & manage)"),
    ("sandbox-code-read-pat", "{action: PushFiles, inputs: {repository: payments-api, "
                              "files: [{path: n.txt, content: x}]}}", "Code (Read & write)"),
    ("sandbox-code-read-pat", "{action: CreatePipeline, inputs: {name: p, "
                              "repository: payments-api}}", "Build (Read & execute)"),
    ("sandbox-code-read-pat", "{action: QueueRun, inputs: {pipeline: 1}}",
     "Build (Read & execute)"),
    ("sandbox-code-read-pat", "{action: CreateWorkItem, inputs: {type: Task, title: t}}",
     "Work Items (Read & write)"),
    ("sandbox-work-only-pat", "{action: ListCommits, inputs: {repository: payments-api}}",
     "Code (Read)"),
    ("sandbox-work-only-pat", "{action: GetFile, inputs: {repository: payments-api, "
                              "path: README.md}}", "Code (Read)"),
    ("sandbox-work-only-pat", "{action: ListFiles, inputs: {repository: payments-api}}",
     "Code (Read)"),
    ("sandbox-work-only-pat", "{action: SearchCode, inputs: {search_text: retry}}",
     "Code (Read)"),
    ("sandbox-code-read-pat", "{action: GetWikiPage, inputs: {path: /Home}}", "Wiki (Read)"),
    ("sandbox-code-read-pat", "{action: SearchWiki, inputs: {search_text: runbook}}",
     "Wiki (Read)"),
    ("sandbox-code-read-pat", "{action: CreatePullRequest, inputs: {repository: payments-api, "
                              "source_branch: fix/retry-give-up, target_branch: main, "
                              "title: t}}", "Code (Read & write)"),
    ("sandbox-code-read-pat", "{action: QueryWorkItems, inputs: {state: New}}",
     "Work Items (Read)"),
    ("sandbox-code-read-pat", "{action: UpdateWorkItem, inputs: {id: 1, state: Active}}",
     "Work Items (Read & write)"),
    ("sandbox-code-read-pat", "{action: ListRuns, inputs: {pipeline: 1}}", "Build (Read)"),
])
def test_permission_denied_names_the_scope(sandbox, token, step, words):
    text = CONNECT_BOT + (f"  - {step}\n" if step else "")
    result = run_text(text, sandbox, pat=token)
    assert result.status == "failed" and result.error["code"] == "PERMISSION_DENIED", result.error
    assert f"lacks the scope {words}" in result.error["message"]
    assert words in result.error["hint"]
