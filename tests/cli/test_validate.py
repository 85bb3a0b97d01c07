"""`adobot validate`: every problem of a bot tree, with file, line and step, and no network."""
from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from adobot.runtime.loader import parse_bot
from adobot.runtime.runner import Runner
from adobot.runtime.validate import validate_file
from tests.cli.test_cli import adobot
from tests.conftest import EXAMPLES

CONNECT = """  - action: Connect
    inputs:
      organization_url: https://dev.azure.com/contoso
      project: Payments
      personal_access_token: {variable: pat}
      session: {name: ado, scope: global}
"""


def findings(tmp_path: Path, text: str, name: str = "bot.yaml", **kwargs) -> list[str]:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return [str(f) for f in validate_file(path, **kwargs)]


def only(found: list[str]) -> str:
    errors = [f for f in found if f.startswith("error")]
    assert len(errors) == 1, found
    return errors[0]


@pytest.mark.parametrize("text, expected", [
    ("name: x\nsteps:\n  - action: ListRepo\n",
     "error: bot.yaml:3: step 1: unknown action 'ListRepo'\n  hint: Did you mean 'ListRepos'?"),
    ("name: x\nsteps:\n" + CONNECT + "  - action: ListRepos\n    inputs: {session: ado}\n"
     "    outputs: {repos: r}\n", "bot.yaml:9: step 2: ListRepos has no output 'repos'"),
    ("name: x\nsteps:\n" + CONNECT + "  - action: CreateRepo\n    inputs: {session: ado}\n",
     "bot.yaml:9: step 2 (CreateRepo): input 'name' is required"),
    ("name: x\nsteps:\n" + CONNECT + "  - action: CreateWorkItem\n"
     "    inputs: {session: ado, type: Task, title: x, priority: high}\n",
     "bot.yaml:9: step 2 (CreateWorkItem): input 'priority': Input should be a valid integer"),
    ("name: x\nsteps:\n" + CONNECT + "  - action: ListRepos\n"
     "    inputs: {session: ado, name_filter: '${later}'}\n    outputs: {count: later}\n",
     "bot.yaml:9: step 2 (ListRepos): variable 'later' is not defined here"),
    ("name: x\nsteps:\n  - action: ListRepos\n    inputs: {session: ado}\n",
     "bot.yaml:3: step 1 (ListRepos): session 'ado' is used but no Connect before this step"),
    ("name: x\nsteps:\n" + CONNECT + "  - action: Disconnect\n    inputs: {session: ado}\n"
     "  - action: ListRepos\n    inputs: {session: ado}\n",
     "bot.yaml:11: step 3 (ListRepos): session 'ado' is used but no Connect"),
    ("name: x\nsteps:\n" + CONNECT + CONNECT,
     "bot.yaml:9: step 2 (Connect): session 'ado' is already connected here"),
    ("name: x\nsteps:\n" + CONNECT + "  - action: ListRepos\n"
     "    inputs: {session: {name: ado, scope: local}}\n",
     "session 'ado' is used but no Connect before this step makes it in the local scope"),
    ("name: x\nsteps:\n  - for_each: ${nothing}\n    steps:\n      - action: ReadCsv\n"
     "        inputs: {path: a.csv}\n",
     "bot.yaml:3: step 1: variable 'nothing' is not defined here"),
    ("name: x\nsteps:\n  - action: ReadCsv\n    inputs: {path: a.csv}\n    on_error: ignore\n",
     "bot.yaml:3: step 1: on_error must be 'fail' or 'continue'"),
    ("name: x\nsteps:\n  - action: ReadCsv\n    inputs: {path: a.csv}\n    input: {}\n",
     "bot.yaml:3: step 1: unknown key 'input'"),
])
def test_each_finding_names_file_line_and_step(tmp_path, text, expected):
    assert expected in only(findings(tmp_path, text, declared=["pat"]))


def test_every_problem_is_listed_at_once_in_line_order(tmp_path):
    text = ("name: x\nsteps:\n  - action: Conect\n  - action: ListRepos\n"
            "    inputs: {name_filter: ''}\n  - action: CreateRepo\n    inputs: {nam: x}\n")
    found = findings(tmp_path, text)
    lines = [int(f.split(":")[2]) for f in found]
    assert lines == sorted(lines) and len(found) == 6, found
    assert any("Did you mean 'name'?" in f for f in found)


def test_insecure_token_and_undefined_token_variable_are_warnings(tmp_path):
    text = CONNECT.replace("{variable: pat}", "{insecure: s3cr3t-value}")
    found = findings(tmp_path, "name: x\nsteps:\n" + text)
    assert found == ["warning: bot.yaml:3: step 1 (Connect): the token is an insecure string in "
                     "the bot file; store it in the vault or pass it in a variable (--var-env)"]
    token = findings(tmp_path, "name: x\nsteps:\n" + CONNECT)
    assert token == ["warning: bot.yaml:3: step 1 (Connect): token variable 'pat' is not defined "
                     "in the bot\n  hint: Give it when running: --var-env pat=ENVVAR."]


def test_children_are_checked_with_what_the_parent_gives_them(tmp_path):
    (tmp_path / "child.yaml").write_text(
        "name: c\nsteps:\n  - action: ListRepos\n    inputs: {session: ado, name_filter: "
        "'${prefix}*'}\n  - action: ListRepos\n    inputs: {session: mine}\n"
        "  - action: CreateRepo\n    inputs: {session: ado, name: '${missing}'}\n")
    found = findings(tmp_path, "name: p\nsteps:\n" + CONNECT + "  - action: RunBot\n"
                     "    inputs: {bot: child.yaml, variables: {prefix: x}}\n"
                     "  - action: RunBot\n    inputs: {bot: gone.yaml}\n", declared=["pat"])
    assert found == [
        "error: bot.yaml:11: step 3 (RunBot): bot file "
        f"{str(tmp_path / 'gone.yaml')!r} does not exist\n  hint: Check the path; it is relative "
        "to the current directory (for RunBot: to the calling bot's file).",
        "error: child.yaml:5: step 2 (ListRepos): session 'mine' is used but no Connect before "
        "this step makes it\n  hint: Connect it earlier in this bot, or (for a child bot) in the "
        "parent with scope: global.",
        "error: child.yaml:7: step 3 (CreateRepo): variable 'missing' is not defined here\n  hint: "
        "Define it under 'variables:', map an earlier step's output to it, or declare it with "
        "`adobot validate --var missing` if the run gives it."]


def test_a_child_connecting_globally_serves_the_parent_after(tmp_path):
    (tmp_path / "child.yaml").write_text("name: c\nvariables: {pat: x}\nsteps:\n" + CONNECT)
    assert findings(tmp_path, "name: p\nsteps:\n  - action: RunBot\n    inputs: {bot: child.yaml}\n"
                    "  - action: ListRepos\n    inputs: {session: ado}\n") == []


def test_a_cycle_of_bots_is_found(tmp_path):
    (tmp_path / "b.yaml").write_text("name: b\nsteps:\n  - action: RunBot\n    inputs: {bot: a.yaml}\n")
    found = findings(tmp_path, "name: a\nsteps:\n  - action: RunBot\n    inputs: {bot: b.yaml}\n",
                     name="a.yaml")
    assert "b.yaml:3: step 1 (RunBot): a.yaml is already running in this chain" in only(found)


@pytest.mark.parametrize("action, inputs", [
    ("CreateRepo", {"session": "ado"}), ("CreateWorkItem", {"session": "ado", "type": "Task"}),
    ("QueueRun", {"session": "ado"}), ("RunBot", {}), ("ReadCsv", {}),
])
def test_a_missing_input_reads_the_same_in_validate_and_at_run_time(tmp_path, action, inputs):
    text = "name: x\nsteps:\n" + CONNECT + json.dumps([{"action": action, "inputs": inputs}])[1:-1].join(["  - ", "\n"])
    validate_message = only(findings(tmp_path, text, declared=["pat"])).split(f"({action}): ")[1]
    result = Runner().run(parse_bot(text.replace(CONNECT, "")), {})
    assert result.error["message"] == f"{action}: {validate_message}"


def test_the_examples_are_clean():
    for bot in ("quickstart.yaml", "parent.yaml", "bulk_work_items.yaml"):
        assert validate_file(EXAMPLES / bot, declared=["pat"]) == [], bot
    assert validate_file(EXAMPLES / "child.yaml", sessions=["ado"]) == []


def test_validate_command_sends_nothing(tmp_path):
    with socket.socket() as listener:  # would see any connection attempt
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(0.2)
        port = listener.getsockname()[1]
        bot = tmp_path / "bot.yaml"
        bot.write_text("name: x\nsteps:\n" + CONNECT.replace(
            "https://dev.azure.com/contoso", f"http://127.0.0.1:{port}/contoso")
            + "  - action: ListRepos\n    inputs: {session: ado, name_filter: ''}\n")
        done = adobot("validate", str(bot), "--var-env", "pat=X")
        with pytest.raises(socket.timeout):
            listener.accept()
    assert done.returncode == 2
    assert "error: bot.yaml:9: step 2 (ListRepos): input 'name_filter'" in done.stderr
    assert "bot.yaml: 1 problem" in done.stderr


def test_validate_command_ok_and_declarations():
    done = adobot("validate", str(EXAMPLES / "child.yaml"), "--session", "ado")
    assert done.returncode == 0 and "child.yaml: OK" in done.stdout
    assert adobot("validate", str(EXAMPLES / "child.yaml")).returncode == 2


def test_a_token_variable_written_into_text_is_refused_as_run_refuses_it(tmp_path):
    """Issue 14: validate said OK to `name: "x${pat}"`, which run refuses."""
    path = tmp_path / "bot.yaml"
    path.write_text("name: t\nsteps:\n  - action: Connect\n    inputs:\n"
                    "      organization_url: https://dev.azure.com/contoso\n      project: P\n"
                    "      personal_access_token: {variable: pat}\n"
                    "  - action: CreateRepo\n    inputs: {name: 'x${pat}'}\n"
                    "  - action: RunBot\n    inputs: {bot: child.yaml, variables: {t: '${pat}'}}\n")
    (tmp_path / "child.yaml").write_text("name: c\nsteps:\n  - action: ReadCsv\n"
                                         "    inputs: {path: 'rows-${t}.csv'}\n")
    done = adobot("validate", str(path), "--var", "pat")
    assert done.returncode == 2
    assert "bot.yaml:8: step 2 (CreateRepo): variable 'pat' holds a secret" in done.stderr
    assert "child.yaml:3: step 1 (ReadCsv): variable 't' holds a secret" in done.stderr
