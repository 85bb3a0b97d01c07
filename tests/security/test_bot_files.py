"""Security review findings 2-4, each as the attack was: files a bot reads stay in its folder,
a YAML bomb or a deep bot is INVALID_BOT quickly, and a token handed to a child bot that fails
to load is never printed."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ADOBOT, DEMO_PAT

CANARY = "canary-child-token-93e1f0"


def adobot(*args: str, env: dict | None = None, cwd: Path | None = None,
           timeout: float = 60) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if not k.startswith("ADOBOT_")}
    return subprocess.run([str(ADOBOT), *args], capture_output=True, text=True, timeout=timeout,
                          env={**full, **(env or {})}, cwd=cwd)


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def read_csv_bot(folder: Path, target: str) -> Path:
    return write(folder, "bot.yaml", "name: r\nsteps:\n  - action: ReadCsv\n"
                                     f"    inputs: {{path: '{target}'}}\n    outputs: {{rows: rows}}\n")


def error_of(done: subprocess.CompletedProcess) -> dict:
    return json.loads(done.stdout)["error"]


@pytest.fixture
def layout(tmp_path):
    """A bot folder, and beside it a folder with a secret file in it."""
    bots = tmp_path / "bots"
    outside = tmp_path / "outside"
    write(outside, "secret.csv", f"token\n{CANARY}\n")
    bots.mkdir()
    return bots, outside


@pytest.mark.parametrize("target", ["../outside/secret.csv", "{outside}/secret.csv",
                                    "/etc/passwd", "link.csv"])
def test_read_csv_stays_in_the_bots_folder(layout, target):
    bots, outside = layout
    (bots / "link.csv").symlink_to(outside / "secret.csv")  # a link that leads out
    bot = read_csv_bot(bots, target.format(outside=outside))
    done = adobot("run", str(bot), "--json")
    assert done.returncode == 2
    error = error_of(done)
    assert error["code"] == "INVALID_INPUT" and "outside the bot's folder" in error["message"]
    assert "--allow-dir" in error["hint"]
    assert CANARY not in done.stdout + done.stderr


def test_the_person_running_the_bot_may_allow_another_folder(layout):
    bots, outside = layout
    bot = read_csv_bot(bots, "../outside/secret.csv")
    done = adobot("run", str(bot), "--json", "--allow-dir", str(outside))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["variables"]["rows"] == [{"token": CANARY}]


def test_run_bot_stays_in_the_top_level_bots_folder(layout):
    bots, outside = layout
    write(outside, "child.yaml", "name: c\nsteps:\n  - action: Disconnect\n")
    for target in ("../outside/child.yaml", f"{outside}/child.yaml"):
        bot = write(bots, "parent.yaml", "name: p\nsteps:\n  - action: RunBot\n"
                                         f"    inputs: {{bot: '{target}'}}\n")
        error = error_of(adobot("run", str(bot), "--json"))
        assert error["code"] == "INVALID_INPUT" and "outside the bot's folder" in error["message"]


def test_a_vault_file_cannot_be_read_as_csv(layout, tmp_path):
    bots, _ = layout
    vault = write(tmp_path, "vault.json", '{"lockers": {}}')
    done = adobot("run", str(read_csv_bot(bots, str(vault))), "--json")
    assert error_of(done)["code"] == "INVALID_INPUT"


def test_read_csv_reads_regular_files_only(layout):
    bots, _ = layout
    os.mkfifo(bots / "pipe.csv")  # nobody ever writes to it: opening must not wait
    done = adobot("run", str(read_csv_bot(bots, "pipe.csv")), "--json", timeout=30)
    assert "not a regular file" in error_of(done)["message"]
    zero = adobot("run", str(read_csv_bot(bots, "/dev/zero")), "--json", "--allow-dir", "/dev",
                  timeout=30)
    assert "not a regular file" in error_of(zero)["message"]


def test_read_csv_stops_at_its_size_limit_while_reading(layout, monkeypatch, tmp_path):
    from adobot.actions import read_csv
    from adobot.actions.base import ActionContext
    from adobot.errors import AdobotError
    from adobot.sessions.store import SessionScopes

    bots, _ = layout
    write(bots, "big.csv", "a\n" + "x\n" * 100)
    monkeypatch.setattr(read_csv, "MAX_BYTES", 64)
    ctx = ActionContext(sessions=SessionScopes(), bot_dir=bots, allowed_dirs=(bots,))
    with pytest.raises(AdobotError) as caught:
        read_csv.run(ctx, read_csv.Inputs(path="big.csv"))
    assert "larger than" in caught.value.message


BOMB = """name: lol
variables:
  a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
  b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
  c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
  d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
  e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
  f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
  g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
  h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
  i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
steps:
  - for_each: ${i}
    steps: [{action: Disconnect}]
"""


@pytest.mark.parametrize("command", ["run", "validate"])
def test_a_yaml_alias_bomb_is_refused_at_once(tmp_path, command):
    bot = write(tmp_path, "bomb.yaml", BOMB)
    assert len(BOMB) < 700
    done = adobot(command, str(bot), timeout=20)  # before: never ended, past 2 GB
    assert done.returncode == 2
    assert "INVALID_BOT" in done.stderr or "anchors and aliases" in done.stderr
    assert "anchors and aliases" in done.stderr


@pytest.mark.parametrize("text", [
    "name: deep\nsteps:\n" + "".join("  " * (2 * i) + "- for_each: [1]\n" + "  " * (2 * i)
                                     + "  steps:\n" for i in range(400))
    + "  " * 800 + "- action: Disconnect\n",
    "name: deep\nvariables: {v: " + "[" * 20000 + "]" * 20000 + "}\nsteps: [{action: Disconnect}]\n",
])
@pytest.mark.parametrize("command", ["run", "validate"])
def test_a_deeply_nested_bot_is_invalid_not_an_internal_error(tmp_path, text, command):
    done = adobot(command, str(write(tmp_path, "deep.yaml", text)), timeout=30)
    assert done.returncode == 2
    assert "more than 64 deep" in done.stderr and "INTERNAL_ERROR" not in done.stderr


def test_an_oversized_bot_file_is_refused(tmp_path):
    bot = write(tmp_path, "big.yaml", "name: big\n# " + "x" * (2 * 2**20) + "\nsteps: []\n")
    done = adobot("validate", str(bot))
    assert done.returncode == 2 and "larger than 1 MiB" in done.stderr


def test_a_token_passed_to_a_child_that_fails_to_load_is_never_printed(tmp_path):
    write(tmp_path, "child.yaml", "name: child\nsteps: [\n")  # not valid YAML
    parent = write(tmp_path, "parent.yaml", "name: parent\nsteps:\n  - action: RunBot\n"
                   "    inputs: {bot: child.yaml, variables: {token: '${pat}'}}\n")
    for output in ((), ("--json",)):
        done = adobot("run", str(parent), "--var-env", "pat=CHILD_TOKEN", *output,
                      env={"CHILD_TOKEN": CANARY})
        assert done.returncode == 2
        assert CANARY not in done.stdout + done.stderr


def test_a_variable_a_child_uses_as_a_token_is_secret_in_the_parent(tmp_path, sandbox):
    """Given with --var (not from the environment), known secret across the tree."""
    write(tmp_path, "child.yaml", "name: child\nsteps:\n  - action: Connect\n    inputs:\n"
          f"      organization_url: {sandbox.org_url()}\n      project: Payments\n"
          "      personal_access_token: {variable: token}\n")
    parent = write(tmp_path, "parent.yaml", "name: parent\nsteps:\n  - action: RunBot\n"
                   "    inputs: {bot: child.yaml, variables: {token: '${pat}'}}\n")
    done = adobot("run", str(parent), "--var", f"pat={DEMO_PAT}", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["variables"]["pat"] == "***"
    assert DEMO_PAT not in done.stdout


def test_validate_says_the_same_about_paths_outside_the_folder(layout):
    bots, outside = layout
    write(outside, "child.yaml",
          "name: c\nsteps:\n  - action: ReadCsv\n    inputs: {path: secret.csv}\n")
    bot = write(bots, "bot.yaml", "name: b\nsteps:\n  - action: ReadCsv\n"
                "    inputs: {path: ../outside/secret.csv}\n  - action: RunBot\n"
                "    inputs: {bot: ../outside/child.yaml}\n")
    done = adobot("validate", str(bot))
    assert done.returncode == 2 and done.stderr.count("outside the bot's folder") == 2
    allowed = adobot("validate", str(bot), "--allow-dir", str(outside))
    assert allowed.returncode == 0, allowed.stderr


@pytest.mark.parametrize("inputs", [
    "{type: Task, title: t, fields: {Custom.Token: '${pat}'}}",
    "{type: Task, title: t, tags: [ok, '${pat}']}",
])
def test_a_secret_placed_in_a_map_is_invalid_input_and_nothing_is_sent(tmp_path, sandbox,
                                                                       inputs):
    """Security review finding 7: it was an INTERNAL_ERROR (a TypeError while sending)."""
    bot = write(tmp_path, "bot.yaml", "name: m\nsteps:\n  - action: Connect\n    inputs:\n"
                f"      organization_url: {sandbox.org_url()}\n      project: Payments\n"
                "      personal_access_token: {variable: pat}\n"
                f"  - action: CreateWorkItem\n    inputs: {inputs}\n")
    done = adobot("run", str(bot), "--var-env", "pat=PAT", "--json", env={"PAT": DEMO_PAT})
    result = json.loads(done.stdout)
    assert done.returncode == 2 and result["error"]["code"] == "INVALID_INPUT"
    assert "holds a secret variable" in result["error"]["message"]
    assert result["steps"][1]["requests"] == 0 and not sandbox.state.work_items
    assert DEMO_PAT not in done.stdout + done.stderr


def test_every_run_prints_its_json_document_even_on_an_internal_error(tmp_path, monkeypatch,
                                                                      capsys):
    from adobot import cli
    from adobot.runtime.runner import Runner

    def broken(self, *args, **kwargs):
        raise RuntimeError(f"boom {CANARY}")

    monkeypatch.setattr(Runner, "run", broken)
    bot = write(tmp_path, "bot.yaml", "name: i\nsteps:\n  - action: ReadCsv\n"
                                      "    inputs: {path: rows.csv}\n")
    monkeypatch.setenv("PAT", CANARY)
    code = cli.main(["run", str(bot), "--json", "--var-env", "pat=PAT"])
    out = capsys.readouterr()
    document = json.loads(out.out)  # exactly one document
    assert code == 1 and document["status"] == "failed"
    assert document["error"]["code"] == "INTERNAL_ERROR"
    assert CANARY not in out.out + out.err


def test_a_malformed_sandbox_seed_is_invalid_input(tmp_path):
    seed = write(tmp_path, "seed.json", '{"organizations": {"x": {"projects": [{}]}}}')
    bot = write(tmp_path, "bot.yaml", "name: s\nsteps:\n  - action: ReadCsv\n"
                                      "    inputs: {path: rows.csv}\n")
    done = adobot("run", str(bot), "--sandbox", "--sandbox-seed", str(seed), "--json")
    assert done.returncode == 2 and json.loads(done.stdout)["error"]["code"] == "INVALID_INPUT"


def test_a_folder_is_not_a_file(layout):
    """Found by the generated-input tests: RunBot `bot: ''` names the bot's own folder."""
    bots, _ = layout
    (bots / "sub.yaml").mkdir()
    for bot in (read_csv_bot(bots, "."),
                write(bots, "parent.yaml", "name: p\nsteps:\n  - action: RunBot\n"
                                           "    inputs: {bot: sub.yaml}\n")):
        error = error_of(adobot("run", str(bot), "--json"))
        assert error["code"] in ("INVALID_INPUT", "INVALID_BOT")
        assert "not a regular file" in error["message"]


@pytest.mark.parametrize("name", ["child\ud800.yaml", "child\x00.yaml"])
def test_a_path_no_system_can_open_is_invalid_input_not_a_crash(tmp_path, name):
    # YAML's "\ud800" escape gives a lone surrogate; found by the generated-input tests.
    from adobot.actions.files import confine
    from adobot.errors import InvalidInput

    with pytest.raises(InvalidInput, match="is not a file name this system can open"):
        confine(name, tmp_path, [tmp_path], field="bot")
