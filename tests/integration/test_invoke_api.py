"""InvokeApi over real HTTP against the sandbox (issue 21): any route through the session, its
errors mapped like every action's, and a token that goes nowhere but its organization; and
Microsoft's SDK on the same connection."""
from __future__ import annotations

import logging
import sys
import time

import pytest

from adobot import api
from adobot.errors import AdobotError
from adobot.sandbox.state import Pipeline
from tests.conftest import DEMO_PAT

ORG = "https://dev.azure.com/contoso"


@pytest.fixture
def ctx(sandbox):
    with api.Context(sandbox=sandbox, variables={"pat": DEMO_PAT}) as context:
        context.run("Connect", organization_url=ORG, project="Payments",
                    personal_access_token={"variable": "pat"})
        yield context


def project(sandbox):
    return sandbox.state.organization("contoso").project("Payments")


def requests_sent(sandbox) -> int:
    return sandbox.state.stats()["requests"]


def failure(ctx, **inputs) -> AdobotError:
    with pytest.raises(AdobotError) as caught:
        ctx.run("InvokeApi", **inputs)
    return caught.value


def test_a_get_relative_to_the_project_and_to_the_organization(sandbox, ctx):
    before = ctx.requests
    repos = ctx.run("InvokeApi", route="_apis/git/repositories", headers=["Content-Type"])
    projects = ctx.run("InvokeApi", route="_apis/projects", relative_to="organization")
    assert ctx.requests - before == 2  # one request each, counted like any action's
    assert repos["status"] == 200 and repos["body"]["count"] == len(project(sandbox).repositories)
    assert repos["headers"] == {"content-type": "application/json; charset=utf-8"}
    assert "Payments" in [p["name"] for p in projects["body"]["value"]]
    last = sandbox.state.requests[-1]
    assert last["path"] == "/contoso/_apis/projects" and last["query"]["api-version"] == "7.1"


def test_a_post_creates_and_a_url_of_the_organization_is_accepted(sandbox, ctx):
    made = ctx.run("InvokeApi", method="POST", route="_apis/git/repositories",
                   body={"name": "made-by-invoke"})
    assert made["status"] == 201 and made["body"]["name"] == "made-by-invoke"
    assert "made-by-invoke" in [r.name for r in project(sandbox).repositories]
    pasted = ctx.run("InvokeApi", route=f"{ORG}/Payments/_apis/git/repositories/made-by-invoke"
                                        "?api-version=7.1")
    assert pasted["body"]["id"] == made["body"]["id"]


def test_a_json_patch_creates_and_updates_a_work_item(sandbox, ctx):
    created = ctx.run("InvokeApi", method="POST", route="_apis/wit/workitems/$Task",
                      body_type="json_patch", body=[
                          {"op": "add", "path": "/fields/System.Title", "value": "From a route"}])
    item = created["body"]["id"]
    updated = ctx.run("InvokeApi", method="PATCH", route=f"_apis/wit/workitems/{item}",
                      body_type="json_patch", body=[
                          {"op": "test", "path": "/rev", "value": created["body"]["rev"]},
                          {"op": "replace", "path": "/fields/System.State", "value": "Active"}])
    assert updated["status"] == 200
    assert sandbox.state.work_items[item].fields["System.State"] == "Active"
    sent = [r for r in sandbox.state.requests if r["method"] == "PATCH"][-1]
    assert sent["content_type"] == "application/json-patch+json"


def test_paginate_follows_continuation_tokens_up_to_max_items(sandbox, ctx):
    payments = project(sandbox)
    with sandbox.state.lock:
        for number in range(7):
            payments.pipelines.append(Pipeline(
                id=900 + number, name=f"paged-{number}", folder="\\", path="azure-pipelines.yml",
                repository_id=payments.repositories[0].id))
    total = len(payments.pipelines)
    before = ctx.requests
    every = ctx.run("InvokeApi", route="_apis/pipelines", query={"$top": 2}, paginate=True)
    assert every["body"]["count"] == total and every["continuation_token"] is None
    assert ctx.requests - before == -(-total // 2)  # one request a page
    some = ctx.run("InvokeApi", route="_apis/pipelines", query={"$top": 2}, paginate=True,
                   max_items=5)
    assert some["body"]["count"] == 5 and some["continuation_token"] == "6"
    one = ctx.run("InvokeApi", route="_apis/pipelines", query={"$top": 2})
    assert one["body"]["count"] == 2 and one["continuation_token"] == "2"


def test_paginate_refuses_a_continuation_token_handed_back_twice(sandbox, ctx):
    """The client's own paging: a page repeated would make the listing endless."""
    sandbox.state.faults.add({"kind": "headers", "times": 5,
                              "headers": {"x-ms-continuationtoken": "again"}})
    error = failure(ctx, route="_apis/git/repositories", paginate=True)
    assert error.code == "SERVICE_ERROR" and "a second time" in error.message


@pytest.mark.parametrize("inputs, code, words", [
    ({"route": "_apis/wit/workitems/424242"}, "NOT_FOUND", "TF401232"),
    ({"route": "_apis/nothing/here"}, "NOT_FOUND", "_apis/nothing/here"),
    ({"method": "POST", "route": "_apis/git/repositories", "body": {"name": "payments-api"}},
     "ALREADY_EXISTS", "payments-api"),
    ({"method": "POST", "route": "_apis/wit/wiql", "body": {"query": "SELECT nonsense"}},
     "INVALID_INPUT", "WIQL"),
])
def test_the_services_refusals_are_the_usual_codes(sandbox, ctx, inputs, code, words):
    error = failure(ctx, **inputs)
    assert error.code == code and words.lower() in error.message.lower(), error.message


def test_a_token_revoked_after_connect_is_auth_failed(sandbox, ctx):
    sandbox.state.tokens[DEMO_PAT].expired = True
    assert failure(ctx, route="_apis/git/repositories").code == "AUTH_FAILED"


def test_a_token_without_the_scope_is_permission_denied(sandbox):
    with api.Context(sandbox=sandbox, variables={"pat": "sandbox-code-read-pat"}) as ctx:
        ctx.run("Connect", organization_url=ORG, project="Payments",
                personal_access_token={"variable": "pat"})
        error = failure(ctx, method="POST", route="_apis/wit/workitems/$Task",
                        body_type="json_patch",
                        body=[{"op": "add", "path": "/fields/System.Title", "value": "t"}])
    assert error.code == "PERMISSION_DENIED"


def test_a_5xx_on_a_post_is_a_service_error_whose_outcome_is_unknown(sandbox, ctx):
    sandbox.state.faults.add({"kind": "error", "status": 500, "times": 1})
    error = failure(ctx, method="POST", route="_apis/git/repositories", body={"name": "x5"})
    assert error.code == "SERVICE_ERROR" and error.outcome_unknown


@pytest.mark.parametrize("route", [
    "https://evil.example/contoso/_apis/projects",
    "https://dev.azure.com/contoso-evil/_apis/projects",
    "https://dev.azure.com/fabrikam/_apis/projects",
    "http://dev.azure.com/contoso/_apis/projects",
    "https://almsearch.dev.azure.com.evil.example/contoso/_apis/search",
])
def test_a_host_outside_the_organization_is_refused_with_nothing_sent(sandbox, ctx, route):
    before = requests_sent(sandbox)
    error = failure(ctx, route=route)
    assert error.code == "INVALID_INPUT" and error.field == "route"
    assert "nothing was sent" in error.message and "almsearch" in error.hint
    assert requests_sent(sandbox) == before


@pytest.mark.parametrize("route", [
    "https://dev.azure.com/contoso/../fabrikam/_apis/projects",
    "https://dev.azure.com/contoso/Payments/../../fabrikam/_apis/projects",
    "https://dev.azure.com/contoso/%2e%2e/fabrikam/_apis/projects",
    "https://dev.azure.com/contoso/%2E%2e/fabrikam/_apis/projects",
    "https://dev.azure.com/contoso/./_apis/projects",
    "_apis/%2e%2e/%2e%2e/fabrikam/_apis/projects",
])
def test_dot_segments_cannot_leave_the_organization(sandbox, ctx, route):
    """A URL that starts in the organization and climbs out of it (as a server or a proxy
    would resolve it) is refused before anything is sent, as a relative route is."""
    before = requests_sent(sandbox)
    error = failure(ctx, route=route)
    assert error.code == "INVALID_INPUT" and error.field == "route", error
    assert "'.' or '..'" in error.message
    assert requests_sent(sandbox) == before


def test_the_organizations_service_hosts_are_accepted(sandbox, ctx):
    found = ctx.run("InvokeApi", method="POST",
                    route="https://almsearch.dev.azure.com/contoso/Payments/_apis/search/"
                          "codesearchresults", api_version="7.1",
                    body={"searchText": "retry", "$top": 5})
    assert found["status"] == 200 and found["body"]["count"] >= 1


@pytest.mark.parametrize("inputs, field", [
    ({"route": "/_apis/projects"}, "route"),
    ({"route": "_apis/../../other/_apis/projects"}, "route"),
    ({"route": "_apis/projects?api-version=7.1"}, "route"),
    ({"route": "_apis/projects", "query": {"api-version": "6.0"}}, "query"),
    ({"route": "_apis/projects", "api_version": "latest"}, "api_version"),
    ({"route": "_apis/projects", "body": {"a": 1}}, None),               # a GET with a body
    ({"method": "PATCH", "route": "_apis/wit/workitems/1", "body_type": "json_patch",
      "body": {"op": "add"}}, None),
    ({"method": "POST", "route": "_apis/x", "paginate": True}, None),
    ({"route": "_apis/projects", "headers": ["Set-Cookie"]}, "headers"),
    ({"method": "TRACE", "route": "_apis/projects"}, "method"),
])
def test_bad_inputs_are_refused_before_anything_is_sent(sandbox, ctx, inputs, field):
    before = requests_sent(sandbox)
    error = failure(ctx, **inputs)
    assert error.code == "INVALID_INPUT" and (field is None or error.field == field)
    assert requests_sent(sandbox) == before


def test_bodies_are_never_logged(sandbox, ctx, caplog):
    caplog.set_level(logging.DEBUG, logger="adobot")
    ctx.run("InvokeApi", method="POST", route="_apis/git/repositories",
            body={"name": "logged-not-its-body", "note": "body-canary-7d1"})
    assert "InvokeApi POST" in caplog.text and "body-canary-7d1" not in caplog.text


# --- Microsoft's SDK on the same connection ------------------------------------------------------

def test_the_sdk_lists_repositories_and_creates_a_work_item_with_the_sessions_sign_in(sandbox,
                                                                                      ctx):
    from azure.devops.v7_1.work_item_tracking.models import JsonPatchOperation

    connection = ctx.sdk_connection()
    assert DEMO_PAT not in repr(connection._creds) and connection.base_url.startswith("http://127.")
    git = connection.clients_v7_1.get_git_client()
    names = {repo.name for repo in git.get_repositories("Payments")}
    assert names == {r.name for r in project(sandbox).repositories}
    work = connection.clients_v7_1.get_work_item_tracking_client()
    item = work.create_work_item([JsonPatchOperation(op="add", path="/fields/System.Title",
                                                     value="Filed through the SDK")],
                                 "Payments", "Task")
    assert sandbox.state.work_items[item.id].fields["System.Title"] == "Filed through the SDK"


def test_the_sdk_connection_follows_a_renewed_entra_token():
    """A service principal's session with one-second tokens: the SDK signs each request with
    the session's current bearer token, so the renewed one is used without a second sign-in
    (the sandbox refuses an expired token with 401)."""
    from adobot.sandbox import Sandbox
    from tests.integration.test_entra_connect import SECRET, SP, seed

    with Sandbox(seed=seed(lifetime=1)) as entra, \
            api.Context(sandbox=entra, variables={"secret": SECRET}) as ctx:
        ctx.run("Connect", organization_url=ORG, project="Payments", **SP)
        git = ctx.sdk_connection().clients_v7_1.get_git_client()
        assert git.get_repositories("Payments")
        issued = entra.state.entra.issued
        time.sleep(1.2)  # the first token has expired
        assert {r.name for r in git.get_repositories("Payments")}
        assert entra.state.entra.issued > issued


def test_without_the_sdk_the_error_says_how_to_install_it(ctx, monkeypatch):
    monkeypatch.setitem(sys.modules, "azure.devops.connection", None)
    with pytest.raises(AdobotError) as caught:
        ctx.sdk_connection()
    assert caught.value.code == "INVALID_INPUT" and "adobot[sdk]" in caught.value.hint
