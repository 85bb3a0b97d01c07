"""Whole bots over real HTTP against the sandbox."""
from __future__ import annotations

import pytest

from adobot.runtime.loader import parse_bot
from adobot.runtime.runner import Runner
from adobot.actions.environment import Environment
from adobot.sessions.store import SessionStore
from tests.conftest import DEMO_PAT, EXAMPLES, run_file, run_text, sandbox_route

CONNECT = """
  - action: Connect
    inputs:
      organization_url: https://dev.azure.com/contoso
      project: {project}
      personal_access_token: {{variable: pat}}
      session: {{name: {name}, scope: {scope}}}
"""


def bot(*steps: str) -> str:
    return "name: t\nsteps:\n" + "".join(steps)


def connect(name="ado", project="Payments", scope="local") -> str:
    return CONNECT.format(name=name, project=project, scope=scope)


def step(action: str, **inputs) -> str:
    inner = ", ".join(f"{k}: {v}" for k, v in inputs.items())
    return f"  - action: {action}\n    inputs: {{{inner}}}\n"


def test_quickstart_lists_the_seeded_repositories(sandbox):
    result = run_file(EXAMPLES / "quickstart.yaml", sandbox, pat=DEMO_PAT)
    assert result.status == "succeeded", result.error
    assert result.exit_code == 0
    names = [r["name"] for r in result.variables["repos"]]
    assert names == ["payments-api", "payments-web", "settlement-jobs", "infra"]
    assert result.variables["repo_count"] == 4
    assert result.variables["connected_as"] == "Sandbox Demo User"
    assert result.variables["pat"] == "***"
    first = result.variables["repos"][0]
    assert set(first) == {"id", "name", "default_branch", "remote_url", "web_url", "size"}
    assert first["web_url"].endswith("/contoso/Payments/_git/payments-api")
    assert result.variables["repos"][3]["default_branch"] is None  # empty repository
    assert [(s.action, s.requests) for s in result.steps][:2] == [("Connect", 2), ("ListRepos", 1)]
    assert [r["path"] for r in sandbox.state.requests][:3] == [
        "/contoso/_apis/connectionData", "/contoso/_apis/projects/Payments",
        f"/contoso/{result.variables['project_id']}/_apis/git/repositories"]


def test_two_sessions_in_one_bot(sandbox):
    text = bot(connect("pay", "Payments", "global"), connect("empty", "empty", "local"),
               step("ListRepos", session="pay") + "    outputs: {count: pay_count}\n",
               step("ListRepos", session="{name: empty, scope: local}")
               + "    outputs: {repositories: empty_repos}\n",
               step("Disconnect", session="pay"), step("Disconnect", session="empty"))
    result = run_text(text, sandbox, pat=DEMO_PAT)
    assert result.status == "succeeded", result.error
    assert result.variables["pay_count"] == 4
    assert result.variables["empty_repos"] == []  # an empty project is an empty list


def test_name_filter_is_a_case_insensitive_glob(sandbox):
    text = bot(connect(), step("ListRepos", session="ado", name_filter="'PAYMENTS-*'")
               + "    outputs: {repositories: r}\n")
    result = run_text(text, sandbox, pat=DEMO_PAT)
    assert [r["name"] for r in result.variables["r"]] == ["payments-api", "payments-web"]


def test_default_session_needs_no_name(sandbox):
    text = ("name: t\nsteps:\n  - action: Connect\n    inputs: {organization_url: "
            "'https://dev.azure.com/contoso', project: Payments, personal_access_token: "
            "{variable: pat}}\n  - action: ListRepos\n    outputs: {count: n}\n"
            "  - action: Disconnect\n")
    result = run_text(text, sandbox, pat=DEMO_PAT)
    assert result.status == "succeeded" and result.variables["n"] == 4


def test_connecting_a_name_twice_is_session_exists_before_sending(sandbox):
    result = run_text(bot(connect("ado", scope="global"), connect("ado", scope="local")),
                      sandbox, pat=DEMO_PAT)
    assert result.error["code"] == "SESSION_EXISTS" and result.error["path"] == "2"
    assert result.exit_code == 2
    assert result.steps[1].requests == 0
    assert len(sandbox.state.requests) == 2


def test_disconnected_session_is_not_found(sandbox):
    result = run_text(bot(connect(), step("Disconnect", session="ado"),
                          step("ListRepos", session="ado")), sandbox, pat=DEMO_PAT)
    assert result.error["code"] == "SESSION_NOT_FOUND"
    assert "'ado' is not connected" in result.error["message"]
    assert result.exit_code == 2


def test_scope_mismatch_is_not_found(sandbox):
    result = run_text(bot(connect("ado", scope="local"),
                          step("ListRepos", session="{name: ado, scope: global}")),
                      sandbox, pat=DEMO_PAT)
    assert result.error["code"] == "SESSION_NOT_FOUND"
    assert "global scope" in result.error["message"]


def test_unknown_project_is_not_found_naming_it(sandbox):
    result = run_text(bot(connect(project="Nope")), sandbox, pat=DEMO_PAT)
    assert result.error["code"] == "NOT_FOUND" and result.exit_code == 1
    assert "project 'Nope' in organization 'contoso'" in result.error["message"]
    assert "TF200016" in result.error["message"]


def test_project_is_found_by_id_and_any_case(sandbox):
    result = run_text(bot(connect(project="payments")) + "    outputs: {project_id: pid, "
                      "project_name: pname}\n", sandbox, pat=DEMO_PAT)
    assert result.variables["pname"] == "Payments"
    again = run_text(bot(connect(project=result.variables["pid"])), sandbox, pat=DEMO_PAT)
    assert again.status == "succeeded", again.error


def test_unknown_organization_is_not_found(sandbox):
    text = bot(connect()).replace("contoso", "fabrikam")
    result = run_text(text, sandbox, pat=DEMO_PAT)
    assert result.error["code"] == "NOT_FOUND" and "organization 'fabrikam'" in result.error["message"]


@pytest.mark.parametrize("token, step_path, code, said", [
    ("no-such-token", "1", "AUTH_FAILED", "not accepted"),
    ("sandbox-expired-pat", "1", "AUTH_FAILED", "expired"),
    ("sandbox-work-only-pat", "2", "PERMISSION_DENIED", "Code (Read)"),
])
def test_token_failures(sandbox, token, step_path, code, said):
    result = run_text(bot(connect(), step("ListRepos", session="ado")), sandbox, pat=token)
    assert result.error["code"] == code and result.error["path"] == step_path
    assert said in result.error["message"]
    assert result.exit_code == 1


def test_code_read_token_may_list(sandbox):
    result = run_text(bot(connect(), step("ListRepos", session="ado")), sandbox,
                      pat="sandbox-code-read-pat")
    assert result.status == "succeeded", result.error


def test_token_from_a_credential_is_not_found_until_the_vault_exists(sandbox):
    text = bot(connect()).replace("{variable: pat}",
                                  "{credential: {locker: ado, name: ci, attribute: pat}}")
    result = run_text(text, sandbox)
    assert result.error["code"] == "CREDENTIAL_NOT_FOUND"
    assert "ado/ci/pat" in result.error["message"]
    assert result.exit_code == 2 and sandbox.state.requests == []


def test_pasted_newline_around_a_token_is_cleaned(sandbox):
    result = run_text(bot(connect()), sandbox, pat=f"  {DEMO_PAT}\n")
    assert result.status == "succeeded", result.error


def test_all_sessions_are_closed_when_the_bot_ends(sandbox):
    shared = SessionStore("global")
    runner = Runner(Environment(route=sandbox_route(sandbox)))
    result = runner.run(parse_bot(bot(connect("g", scope="global"), connect("l"))),
                        {"pat": DEMO_PAT}, global_sessions=shared)
    assert result.status == "succeeded"
    session = shared.get("g")
    assert session is not None and not session.closed  # a parent's store outlives the child
    shared.close_all()
    assert session.closed


def test_sessions_are_closed_when_the_bot_fails(sandbox, monkeypatch):
    from adobot.rest.client import RestClient

    clients = []
    original_init = RestClient.__init__

    def recording_init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        clients.append(self)

    monkeypatch.setattr(RestClient, "__init__", recording_init)
    result = run_text(bot(connect("g", scope="global"), connect("l"), connect("x", project="Nope")),
                      sandbox, pat=DEMO_PAT)
    assert result.status == "failed" and result.error["path"] == "3"
    assert len(clients) == 3
    assert all(client.closed for client in clients)  # global, local and the failed Connect's


def test_for_each_runs_steps_per_item(sandbox):
    text = ("name: t\nvariables:\n  filters: ['payments-*', 'infra', 'zzz*']\nsteps:\n"
            + connect() + "  - for_each: ${filters}\n    as: f\n    steps:\n"
            "      - action: ListRepos\n        inputs: {session: ado, name_filter: '${f}'}\n"
            "        outputs: {count: last}\n")
    result = run_text(text, sandbox, pat=DEMO_PAT)
    assert result.status == "succeeded", result.error
    assert [s.path for s in result.steps] == ["1", "2[0].1", "2[1].1", "2[2].1"]
    assert result.variables["last"] == 0


def test_unreachable_host_is_network_error():
    import socket

    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    text = bot(connect()).replace("https://dev.azure.com/contoso", f"http://127.0.0.1:{port}/contoso")
    text = text.replace("name: t\n", "name: t\nsettings: {retry_attempts: 2}\n")
    result = run_text(text, pat=DEMO_PAT)
    assert result.error["code"] == "NETWORK_ERROR" and result.exit_code == 1
    assert "gave up after 2 attempts" in result.error["message"]  # refused: safe to retry
    assert result.steps[0].requests == 2
    assert f"127.0.0.1:{port}" in result.error["message"]
    assert "refused" in result.error["message"].lower()
    assert "object at 0x" not in result.error["message"]
