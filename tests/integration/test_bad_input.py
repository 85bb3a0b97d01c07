"""Bad input: exit 2, INVALID_INPUT naming the field, and not one request sent."""
from __future__ import annotations

import json

import pytest

from tests.conftest import DEMO_PAT, run_text
from tests.unit.test_urls_and_names import INVALID_URLS


def connect_bot(**overrides) -> str:
    inputs = {"organization_url": "https://dev.azure.com/contoso", "project": "Payments",
              "personal_access_token": {"variable": "pat"}}
    inputs.update(overrides)
    inputs = {k: v for k, v in inputs.items() if v is not ...}
    return json.dumps({"name": "bad", "steps": [{"action": "Connect", "inputs": inputs}]})


def assert_refused(sandbox, text: str, field: str, **variables) -> dict:
    result = run_text(text, sandbox, **{"pat": DEMO_PAT, **variables})
    assert result.status == "failed"
    assert result.exit_code == 2
    error = result.error
    assert error["code"] == "INVALID_INPUT", error
    assert field in error["message"]
    assert error["hint"]
    assert sandbox.state.requests == []  # nothing reached the service
    assert result.steps[0].requests == 0
    return error


@pytest.mark.parametrize("url", INVALID_URLS)
def test_invalid_organization_urls(sandbox, url):
    assert_refused(sandbox, connect_bot(organization_url=url), "organization_url")


@pytest.mark.parametrize("org", ["-lead", "trail-", "under_score", "dot.ted", "a" * 51, "sp ace",
                                 "ünï", "semi;colon"])
def test_invalid_organization_names(sandbox, org):
    error = assert_refused(sandbox, connect_bot(organization_url=f"https://dev.azure.com/{org}"),
                           "organization_url")
    assert "organization" in error["message"]


@pytest.mark.parametrize("project", ["", "a/b", "x" * 65, "_private", ".hidden", "end.", "CON",
                                     "LPT1", "web.config", "App_Data", "semi;colon", "q?",
                                     "hash#", "tab\tname", "brace{", 42, None, ["Payments"]])
def test_invalid_project_names(sandbox, project):
    assert_refused(sandbox, connect_bot(project=project), "project")


@pytest.mark.parametrize("token_source, said", [
    ("plain-token-in-file", "personal_access_token"),
    ({}, "personal_access_token"),
    ({"variable": "pat", "insecure": "x"}, "exactly one"),
    ({"vault": "x"}, "exactly one"),
    ({"credential": {"locker": "a"}}, "personal_access_token"),
    ({"variable": ""}, "personal_access_token"),
    ({"insecure": "   "}, "empty"),
    ({"insecure": "two words"}, "spaces or control characters"),
    ({"insecure": "tab\tinside"}, "spaces or control characters"),
    ({"variable": "undefined_var"}, "'undefined_var'"),
])
def test_invalid_token_sources(sandbox, token_source, said):
    error = assert_refused(sandbox, connect_bot(personal_access_token=token_source),
                           "personal_access_token")
    assert said in error["message"]


@pytest.mark.parametrize("overrides, field", [
    ({"organization_url": ...}, "organization_url"),
    ({"project": ...}, "project"),
    ({"personal_access_token": ...}, "personal_access_token"),
    ({"authentication_method": "oauth"}, "authentication_method"),
    ({"session": {"name": "9starts-with-digit"}}, "session"),
    ({"session": {"name": "ado", "scope": "shared"}}, "session"),
    ({"session": {"name": "x" * 40}}, "session"),
    ({"sesion": "ado"}, "sesion"),
])
def test_other_invalid_inputs(sandbox, overrides, field):
    assert_refused(sandbox, connect_bot(**overrides), field)


def test_misspelled_input_suggests_the_right_one(sandbox):
    error = assert_refused(sandbox, connect_bot(projet="Payments", project=...), "projet")
    assert "'project'" in error["hint"] or "'project'" in error["message"]


def test_empty_token_variable(sandbox):
    assert_refused(sandbox, connect_bot(), "personal_access_token", pat="   ")


@pytest.mark.parametrize("inputs, field", [
    ({"session": "ado", "name_filter": ""}, "name_filter"),
    ({"session": "ado", "name_filter": 7}, "name_filter"),
    ({"session": "ado", "extra": 1}, "extra"),
    ({"session": {"name": "ado", "scope": "everywhere"}}, "session"),
])
def test_list_repos_bad_inputs(sandbox, inputs, field):
    text = json.dumps({"name": "bad", "steps": [{"action": "ListRepos", "inputs": inputs}]})
    assert_refused(sandbox, text, field)
