"""Azure DevOps Server: /{collection} and /tfs/{collection} URLs, the REST API version learnt
from the server's own answer (one extra request per session at most), Pipelines as a preview
on Server 2020, an action refused clearly on a server too old for it, and plain http to an
intranet host only when the person running the bot allows it."""
from __future__ import annotations

import copy
import logging

import pytest

from adobot.rest.urls import parse_organization_url
from adobot.runtime.loader import parse_bot
from adobot.actions.environment import Environment
from adobot.runtime.runner import Runner
from adobot.sandbox import Sandbox
from adobot.sandbox.state import default_seed
from tests.conftest import DEMO_PAT

SERVERS = {"Server2022": "7.0", "Server2020": "6.0", "Server2019": "5.1"}


@pytest.fixture(scope="module")
def served():
    seed = default_seed()
    contoso = seed["organizations"]["contoso"]
    for name, version in {**SERVERS, "DefaultCollection": "7.0"}.items():
        seed["organizations"][name] = {**copy.deepcopy(contoso), "server_version": version}
    with Sandbox(seed=seed) as sandbox:
        yield sandbox


def bot(url: str, *steps: str) -> str:
    return (f"name: t\nsteps:\n  - action: Connect\n    inputs: {{organization_url: '{url}', "
            "project: Payments, personal_access_token: {variable: pat}}\n" + "".join(steps))


LIST = "  - action: ListRepos\n    outputs: {count: n}\n"
QUEUE = "  - action: QueueRun\n    inputs: {pipeline: payments-api-ci}\n    outputs: {run: run}\n"


def run(text: str, **options):
    return Runner(Environment(**options)).run(parse_bot(text), {"pat": DEMO_PAT})


def versions_sent(sandbox, since: int) -> list[tuple[str, str]]:
    return [(r["path"].split("/_apis/")[-1], r["query"].get("api-version"))
            for r in sandbox.state.requests[since:]]


@pytest.mark.parametrize("prefix", ["", "/tfs"])
def test_server_2022_speaks_7_0_learnt_once(served, prefix):
    start = len(served.state.requests)
    result = run(bot(f"{served.url}{prefix}/Server2022", LIST, QUEUE))
    assert result.status == "succeeded", result.error
    assert [s.requests for s in result.steps] == [3, 1, 2]  # one extra request, once
    sent = versions_sent(served, start)
    assert sent[:4] == [
        ("connectionData", "7.1-preview.1"), ("connectionData", "7.0-preview.1"),
        ("projects/Payments", "7.0"), ("git/repositories", "7.0")]
    assert sent[4] == ("pipelines", "7.0") and sent[5][0].endswith("/runs")
    assert sent[5][1] == "7.0"
    assert result.variables["run"]["web_url"].startswith(f"{served.url}{prefix}/Server2022/")


def test_server_2020_gets_the_pipelines_preview(served):
    start = len(served.state.requests)
    result = run(bot(f"{served.url}/tfs/Server2020", QUEUE))
    assert result.status == "succeeded", result.error
    sent = versions_sent(served, start)
    assert sent[-2] == ("pipelines", "6.0-preview.1")
    assert sent[-1][0].endswith("/runs") and sent[-1][1] == "6.0-preview.1"


def test_a_server_too_old_for_an_action_is_refused_before_sending(served):
    start = len(served.state.requests)
    result = run(bot(f"{served.url}/Server2019", QUEUE))
    assert result.status == "failed" and result.exit_code == 2
    error = result.error
    assert error["code"] == "INVALID_INPUT" and error["path"] == "2"
    assert "Pipelines API" in error["message"] and "Server 2019 Update 1" in error["message"]
    assert not [p for p, _ in versions_sent(served, start) if p.startswith("pipelines")]


def test_the_sandbox_answers_out_of_range_as_a_server_does(served):
    import requests

    answer = requests.get(f"{served.url}/Server2022/_apis/projects", auth=("", DEMO_PAT),
                          params={"api-version": "7.1"}, timeout=10)
    assert answer.status_code == 400
    assert answer.json()["typeKey"] == "VssVersionOutOfRangeException"
    assert "supports is 7.0" in answer.json()["message"]
    preview = requests.get(f"{served.url}/Server2020/Payments/_apis/pipelines",
                           auth=("", DEMO_PAT), params={"api-version": "6.0"}, timeout=10)
    assert preview.status_code == 400
    assert preview.json()["typeKey"] == "VssInvalidPreviewVersionException"


@pytest.mark.parametrize("url, base", [
    ("https://tfs.corp.example/tfs/DefaultCollection", "https://tfs.corp.example/tfs/DefaultCollection"),
    ("https://tfs.corp.example:8443/Fabrikam", "https://tfs.corp.example:8443/Fabrikam"),
    ("http://localhost:8080/tfs/DefaultCollection", "http://localhost:8080/tfs/DefaultCollection"),
])
def test_server_url_forms(url, base):
    organization = parse_organization_url(url)
    assert organization.base_url == base and organization.kind == "server"


def test_plain_http_to_an_intranet_host_needs_the_run_to_allow_it(served, caplog):
    caplog.set_level(logging.WARNING, logger="adobot")
    text = bot("http://tfs.corp.example/tfs/DefaultCollection", LIST)
    refused = run(text, route=served.route)
    assert refused.error["code"] == "INVALID_INPUT" and refused.exit_code == 2
    assert "--allow-plain-http" in refused.error["message"]
    assert refused.steps[0].requests == 0
    allowed = run(text, route=served.route, allow_plain_http=True)
    assert allowed.status == "succeeded", allowed.error
    assert any("clear text" in r.getMessage() for r in caplog.records)
