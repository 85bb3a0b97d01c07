"""`adobot` as users run it: a subprocess, exit codes, one JSON document, logs on stderr."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import requests

from tests.conftest import ADOBOT, DEMO_PAT, EXAMPLES


def adobot(*args: str, env: dict | None = None, cwd: Path | None = None, timeout: float = 60):
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([str(ADOBOT), *args], capture_output=True, text=True, env=full_env,
                          cwd=cwd, timeout=timeout)


def write_bot(tmp_path: Path, text: str, name: str = "bot.yaml") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


QUICKSTART = str(EXAMPLES / "quickstart.yaml")
PAT_ENV = {"ADOBOT_PAT": DEMO_PAT}


def test_quickstart_human_summary():
    done = adobot("run", QUICKSTART, "--sandbox", "--var-env", "pat=ADOBOT_PAT", env=PAT_ENV)
    assert done.returncode == 0, done.stderr
    assert "Bot 'quickstart' succeeded: 8 steps, 10 requests" in done.stdout
    assert "connected to contoso/Payments as Sandbox Demo User" in done.stdout
    assert "4 repositories: payments-api" in done.stdout
    assert "pat = ***" in done.stdout
    assert "adobot: step 1 Connect" in done.stderr  # logs on stderr


def test_quickstart_json_document():
    done = adobot("run", QUICKSTART, "--sandbox", "--var-env", "pat=ADOBOT_PAT", "--json",
                  env=PAT_ENV)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)  # exactly one document: json.loads refuses trailing text
    assert doc["bot"] == "quickstart" and doc["status"] == "succeeded" and doc["error"] is None
    assert [(s["path"], s["action"], s["status"], s["requests"]) for s in doc["steps"]] == [
        ("1", "Connect", "succeeded", 2), ("2", "ListRepos", "succeeded", 1),
        ("3", "CreateRepo", "succeeded", 1), ("4", "PushFiles", "succeeded", 1),
        ("5", "CreatePipeline", "succeeded", 1), ("6", "QueueRun", "succeeded", 3),
        ("7", "CreateWorkItem", "succeeded", 1), ("8", "Disconnect", "succeeded", 0)]
    assert all(isinstance(s["duration_ms"], float) for s in doc["steps"])
    assert doc["variables"]["repo_count"] == 4 and doc["variables"]["pat"] == "***"
    assert doc["variables"]["run"]["result"] == "succeeded"
    assert doc["variables"]["task"]["id"] == 1


def test_failure_after_sending_exits_1_with_error_in_json():
    done = adobot("run", QUICKSTART, "--sandbox", "--var-env", "pat=ADOBOT_PAT", "--json",
                  env={"ADOBOT_PAT": "sandbox-work-only-pat"})
    assert done.returncode == 1
    doc = json.loads(done.stdout)
    assert doc["status"] == "failed"
    assert doc["error"]["code"] == "PERMISSION_DENIED"
    assert doc["error"]["path"] == "2" and doc["error"]["action"] == "ListRepos"
    assert "Code (Read)" in doc["error"]["message"] and doc["error"]["hint"]
    assert "error at step 2 (ListRepos): PERMISSION_DENIED" in done.stderr
    assert "Traceback" not in done.stderr


def test_bad_input_exits_2(tmp_path):
    done = adobot("run", QUICKSTART, "--sandbox", "--var-env", "pat=ADOBOT_PAT", "--json",
                  "--var", "org_url=http://dev.azure.com/contoso", env=PAT_ENV)
    assert done.returncode == 2
    doc = json.loads(done.stdout)
    assert doc["error"]["code"] == "INVALID_INPUT" and "organization_url" in doc["error"]["message"]
    assert doc["steps"][0]["requests"] == 0


@pytest.mark.parametrize("args, code, said", [
    (["run", "missing.yaml"], "INVALID_BOT", "does not exist"),
    (["run", QUICKSTART, "--var", "no-equals"], "INVALID_INPUT", "NAME=VALUE"),
    (["run", QUICKSTART, "--var-env", "pat=ADOBOT_UNSET_VARIABLE"], "INVALID_INPUT", "is not set"),
    (["run", QUICKSTART, "--sandbox"], "INVALID_INPUT", "'pat'"),
])
def test_errors_before_running_exit_2_with_one_json_document(args, code, said):
    done = adobot(*args, "--json")
    assert done.returncode == 2, done.stderr
    doc = json.loads(done.stdout)
    assert doc["status"] == "failed" and doc["error"]["code"] == code
    assert said in doc["error"]["message"]
    assert set(doc) == {"bot", "status", "variables", "steps", "error", "failures",
                        "duration_ms", "requests", "warnings"}  # the shape of every result
    assert f"{code}:" in done.stderr and "hint:" in done.stderr


def test_invalid_yaml_names_the_line(tmp_path):
    path = write_bot(tmp_path, "name: x\nsteps:\n  - action: Connect\n    inputs: {a: [}\n")
    done = adobot("run", path)
    assert done.returncode == 2
    assert "INVALID_BOT" in done.stderr and "line 4" in done.stderr


def test_debug_shows_the_traceback_only_when_asked(tmp_path):
    # The session's name is known only at run time, so the failure comes from the run itself.
    path = write_bot(tmp_path, "name: x\nvariables: {s: nope}\nsteps:\n"
                               "  - action: ListRepos\n    inputs: {session: '${s}'}\n")
    quiet = adobot("run", path)
    loud = adobot("run", path, "--debug")
    assert quiet.returncode == loud.returncode == 2
    assert "Traceback" not in quiet.stderr
    assert "Traceback" in loud.stderr and "SessionNotFound" in loud.stderr


def test_actions_lists_them():
    done = adobot("actions", "--json")
    assert done.returncode == 0
    assert [a["name"] for a in json.loads(done.stdout)] == [
        "Connect", "ListRepos", "CreateRepo", "PushFiles", "CreatePipeline", "QueueRun",
        "CreateWorkItem", "ListRuns", "ListCommits", "ListFiles", "GetFile", "SearchCode",
        "GetWikiPage", "SearchWiki", "CreatePullRequest", "QueryWorkItems", "UpdateWorkItem",
        "InvokeApi", "Disconnect", "RunBot", "ReadCsv"]
    assert "ListRepos" in adobot("actions").stdout


def test_help_and_usage_errors():
    assert "run" in adobot("--help").stdout
    assert adobot("frobnicate").returncode == 2


@pytest.mark.parametrize("args, code, exit_code", [
    (("sandbox", "--seed", "no-such-seed.json"), "INVALID_INPUT", 2),
    (("manifest", "ListRepo"), "INVALID_BOT", 2),
    (("vault", "remove", "no", "such", "--vault", "{tmp}/vault.json"), "VAULT_ERROR", 2),
    (("run", "no-such-bot.yaml"), "INVALID_BOT", 2),
])
def test_every_command_tells_a_failure_the_same_way(tmp_path, args, code, exit_code):
    done = adobot(*(arg.format(tmp=tmp_path) for arg in args), cwd=tmp_path)
    assert done.returncode == exit_code
    lines = done.stderr.strip().splitlines()
    assert lines[0].startswith(f"error: {code}: ") and lines[1].startswith("  hint: ")
    assert "Traceback" not in done.stderr


def test_standalone_sandbox_serves_until_stopped():
    process = subprocess.Popen([str(ADOBOT), "sandbox"], stdout=subprocess.PIPE, text=True)
    try:
        first = process.stdout.readline()
        assert first.startswith("Azure DevOps sandbox on http://127.0.0.1:")
        url = first.split(" on ")[1].strip()
        response = requests.get(f"{url}/contoso/_apis/projects", auth=("", DEMO_PAT), timeout=5)
        assert response.status_code == 200 and response.json()["count"] == 2
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_run_against_a_standalone_sandbox_by_url(tmp_path):
    process = subprocess.Popen([str(ADOBOT), "sandbox"], stdout=subprocess.PIPE, text=True)
    try:
        url = process.stdout.readline().split(" on ")[1].strip()
        done = adobot("run", QUICKSTART, "--var", f"org_url={url}/contoso", "--var-env",
                      "pat=ADOBOT_PAT", "--json", env=PAT_ENV)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["variables"]["repo_count"] == 4
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_run_with_a_seed_of_faults(tmp_path):
    seed = json.loads((EXAMPLES.parent / "adobot" / "sandbox" / "seed.json").read_text())
    seed["faults"] = [{"kind": "reset_after", "method": "POST", "path": "git/repositories"}]
    (tmp_path / "seed.json").write_text(json.dumps(seed))
    done = adobot("run", QUICKSTART, "--sandbox", "--sandbox-seed", str(tmp_path / "seed.json"),
                  "--var-env", "pat=ADOBOT_PAT", "--json", env=PAT_ENV)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["steps"][2]["action"] == "CreateRepo" and doc["steps"][2]["requests"] == 2
    assert "was lost, but it exists now" in done.stderr
    bad = adobot("run", QUICKSTART, "--sandbox", "--sandbox-seed", str(tmp_path / "none.json"),
                 "--json", env=PAT_ENV)
    assert bad.returncode == 2 and json.loads(bad.stdout)["error"]["code"] == "INVALID_INPUT"


def test_a_bad_sandbox_port_is_invalid_input():
    done = adobot("sandbox", "--port", "99999")
    assert done.returncode == 2 and "INVALID_INPUT" in done.stderr and "--port 99999" in done.stderr


def test_an_unknown_organization_says_what_to_check(tmp_path, sandbox):
    bot = write_bot(tmp_path, "name: o\nsteps:\n  - action: Connect\n    inputs:\n"
                    f"      organization_url: {sandbox.url}/fabrikam\n      project: Payments\n"
                    "      personal_access_token: {variable: pat}\n")
    error = json.loads(adobot("run", bot, "--var-env", "pat=ADOBOT_PAT", "--json",
                              env=PAT_ENV).stdout)["error"]
    assert error["code"] == "NOT_FOUND" and "organization 'fabrikam'" in error["message"]
    assert "organization_url" in error["hint"] and "project of the session" not in error["hint"]


def test_exit_2_means_nothing_was_sent(tmp_path, sandbox):
    """Issue 14: run checks the whole bot before its first request (here: step 3's input)."""
    path = write_bot(tmp_path, "name: x\nsteps:\n  - action: Connect\n    inputs:\n"
                     f"      organization_url: {sandbox.org_url()}\n      project: Payments\n"
                     "      personal_access_token: {variable: pat}\n"
                     "  - action: CreateRepo\n    inputs: {name: made-before-the-error}\n"
                     "  - action: ListRepos\n    inputs: {name_filter: ''}\n")
    done = adobot("run", path, "--var-env", "pat=ADOBOT_PAT", "--json", env=PAT_ENV)
    result = json.loads(done.stdout)
    assert done.returncode == 2 and result["steps"] == []
    assert result["error"]["code"] == "INVALID_INPUT" and result["error"]["path"] == "3"
    assert not sandbox.state.requests  # nothing was sent, nothing changed
    help_text = " ".join(adobot("run", "--help").stdout.split())
    assert "found before the first request: then nothing was sent and nothing changed" in help_text


def test_the_sandbox_latency_options():
    slow = adobot("run", QUICKSTART, "--sandbox", "--sandbox-latency", "5", "--var-env",
                  "pat=ADOBOT_PAT", "--json", env=PAT_ENV)
    assert slow.returncode == 0 and json.loads(slow.stdout)["status"] == "succeeded"
    alone = adobot("run", QUICKSTART, "--sandbox-latency", "5")
    assert alone.returncode == 2 and "go with --sandbox" in alone.stderr
    bad = adobot("sandbox", "--latency", "5", "--jitter", "10")
    assert bad.returncode == 2 and "INVALID_INPUT" in bad.stderr
