"""The sandbox's route records, checked over real HTTP for every route it serves: a route
under /{project} refuses an unknown project as the service does (404 TF200016), and a route
that names scopes refuses a token that holds none of them (401 TF400813), one that holds one
of them gets past authentication."""
from __future__ import annotations

import base64
import re

import pytest
import requests

from adobot.sandbox import Sandbox
from adobot.sandbox.routes import ROUTER
from adobot.sandbox.state import default_seed

SAMPLES = {"org": "contoso", "project": "Payments", "repo": "payments-api", "pipeline": "1",
           "run": "1", "type": "Task", "id": "1", "wiki": "Payments.wiki", "team": "Payments Team"}
ROUTES = ROUTER.routes


def path_of(route, **values: str) -> str:
    """A concrete path for a route, from its own pattern."""
    pattern = route.regex.pattern.removeprefix("^(?:/tfs)?").removesuffix("/?$")
    text = re.sub(r"\(\?P<(\w+)>(?:[^()]|\[[^\]]*\])*\)",
                  lambda m: {**SAMPLES, **values}[m.group(1)], pattern)
    return text.replace("\\$", "$")


def label(route) -> str:
    return f"{route.method} {route.handler.__module__.rsplit('.', 1)[-1]}.{route.handler.__name__}"


@pytest.fixture(scope="module")
def served():
    seed = default_seed()
    seed["tokens"].append({"token": "unrelated-scope-pat", "user": "Dashboards Only",
                           "scopes": ["vso.dashboards"]})
    for scope in sorted({s for r in ROUTES for s in r.scopes}):
        seed["tokens"].append({"token": f"only-{scope}", "user": scope, "scopes": [scope]})
    with Sandbox(seed=seed) as sandbox:
        yield sandbox


def send(sandbox, route, token: str, **values: str) -> requests.Response:
    auth = base64.b64encode(f":{token}".encode()).decode()
    body = [] if route.content_type else {}
    return requests.request(route.method, f"{sandbox.url}{path_of(route, **values)}",
                            params={"api-version": "7.1-preview.1" if route.preview else "7.1"},
                            json=body, timeout=10,
                            headers={"Authorization": f"Basic {auth}",
                                     "X-TFS-FedAuthRedirect": "Suppress",
                                     "Content-Type": route.content_type or "application/json"})


def test_every_route_is_a_record_of_a_resource_module():
    modules = {route.handler.__module__ for route in ROUTES}
    assert modules == {f"adobot.sandbox.routes.{name}" for name in (
        "core", "git", "pipelines", "work_items", "wiki", "search")}
    assert all(route.method in {"GET", "POST", "PATCH", "OPTIONS"} for route in ROUTES)


@pytest.mark.parametrize("route", [r for r in ROUTES if r.project], ids=label)
def test_a_project_route_refuses_an_unknown_project(served, route):
    answer = send(served, route, "sandbox-demo-pat", project="NoSuchProject")
    assert answer.status_code == 404
    assert answer.json()["typeKey"] == "ProjectDoesNotExistWithNameException"
    assert answer.json()["message"].startswith("TF200016: ")


@pytest.mark.parametrize("route", [r for r in ROUTES if r.scopes], ids=label)
def test_a_route_refuses_a_token_without_its_scopes(served, route):
    answer = send(served, route, "unrelated-scope-pat")
    assert answer.status_code == 401
    assert answer.json()["message"].startswith("TF400813: The user ")
    assert "WWW-Authenticate" in answer.headers
    for scope in route.scopes:  # any one of the route's scopes gets past authentication
        assert send(served, route, f"only-{scope}").status_code != 401, scope
