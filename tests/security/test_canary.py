"""A canary token goes through every path; it must come out nowhere: not on stdout or stderr,
not in the JSON result, not in any file written (the bot file that holds it excepted)."""
from __future__ import annotations

import base64
import json
import os
import subprocess
from pathlib import Path

import pytest

from adobot.sandbox import Sandbox
from tests.conftest import ADOBOT

CANARY = "canary-7f3a9c1e5b2d4f60a8e1c3b5d7f9a0b2"
ENCODED = base64.b64encode(f":{CANARY}".encode()).decode()


@pytest.fixture
def sandbox_with_canary():
    with Sandbox() as sb:
        yield sb


def allow(sb: Sandbox, scopes: list[str]) -> None:
    sb.state.add_token(CANARY, user="Canary User", scopes=scopes)


def bot_file(tmp_path: Path, sb: Sandbox, token_source: str, extra_steps: str = "",
             project: str = "Payments", org_url: str | None = None) -> Path:
    path = tmp_path / "bot.yaml"
    path.write_text(
        "name: canary\nsettings: {retry_attempts: 2}\nsteps:\n  - action: Connect\n    inputs:\n"
        f"      organization_url: {org_url or sb.org_url()}\n      project: {project}\n"
        f"      personal_access_token: {token_source}\n      session: ado\n"
        "    outputs: {user: who}\n"
        + extra_steps, encoding="utf-8")
    return path


LIST = "  - action: ListRepos\n    inputs: {session: ado}\n    outputs: {repositories: r}\n"


def run(tmp_path: Path, bot: Path, *args: str, token_in_env: str | None = CANARY):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADOBOT")}
    env["HOME"] = str(tmp_path)
    if token_in_env is not None:
        env["CANARY_PAT"] = token_in_env
    return subprocess.run([str(ADOBOT), "run", str(bot), *args], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=60)


def assert_no_canary(tmp_path: Path, done: subprocess.CompletedProcess, bot: Path) -> None:
    for name, text in (("stdout", done.stdout), ("stderr", done.stderr)):
        assert CANARY not in text, f"canary in {name}"
        assert ENCODED not in text, f"encoded canary in {name}"
    for file in tmp_path.rglob("*"):
        if file.is_file() and file != bot:
            data = file.read_bytes()
            assert CANARY.encode() not in data and ENCODED.encode() not in data, file


VARIABLE = "{variable: pat}"
ENV_ARGS = ("--var-env", "pat=CANARY_PAT")

CASES = {
    # name: (scopes granted to the canary, steps after Connect, project, expected code, exit)
    "success": (["app_token"], LIST, "Payments", None, 0),
    "auth_failed": (None, LIST, "Payments", "AUTH_FAILED", 1),
    "permission_denied": (["vso.work"], LIST, "Payments", "PERMISSION_DENIED", 1),
    "not_found": (["app_token"], LIST, "Nope", "NOT_FOUND", 1),
    "session_not_found": (["app_token"], LIST.replace("session: ado", "session: other"),
                          "Payments", "SESSION_NOT_FOUND", 2),
    "session_exists": (["app_token"], "  - action: Connect\n    inputs: {organization_url: "
                       "'URL', project: Payments, personal_access_token: {variable: pat}, "
                       "session: ado}\n", "Payments", "SESSION_EXISTS", 2),
    "invalid_input": (["app_token"], "  - action: ListRepos\n    inputs: {session: ado, "
                      "name_filter: ''}\n", "Payments", "INVALID_INPUT", 2),
    "invalid_project": (["app_token"], "", "bad/name", "INVALID_INPUT", 2),
    "already_exists": (["app_token"], "  - action: CreateRepo\n    inputs: {session: ado, "
                       "name: payments-api}\n", "Payments", "ALREADY_EXISTS", 1),
    "invalid_bot": (["app_token"], "  - action: ListRepo\n", "Payments", "INVALID_BOT", 2),
}


CREDENTIAL = "{credential: {locker: ado, name: canary, attribute: pat}}"


@pytest.mark.parametrize("source", ["variable", "vault"])
@pytest.mark.parametrize("debug", [False, True], ids=["plain", "debug"])
@pytest.mark.parametrize("output", [(), ("--json",)], ids=["text", "json"])
@pytest.mark.parametrize("case", list(CASES))
def test_canary_never_leaks(tmp_path, sandbox_with_canary, case, output, debug, source):
    sb = sandbox_with_canary
    scopes, steps, project, code, exit_code = CASES[case]
    if scopes is not None:
        allow(sb, scopes)
    args: tuple[str, ...] = ENV_ARGS
    token_source = VARIABLE
    if source == "vault":  # the vault (and its key) sit in tmp_path: scanned like every file
        from adobot.credentials.secret import Secret
        from adobot.credentials.vault import Vault

        Vault(tmp_path / "vault.json").put("ado", "canary", "pat", Secret(CANARY),
                                           organizations=[sb.org_url()])
        args, token_source = ("--vault", str(tmp_path / "vault.json")), CREDENTIAL
    steps = steps.replace("URL", sb.org_url()).replace(VARIABLE, token_source)
    bot = bot_file(tmp_path, sb, token_source, steps, project)
    done = run(tmp_path, bot, *args, *output, *(("--debug",) if debug else ()))
    assert done.returncode == exit_code, done.stderr
    if output:
        doc = json.loads(done.stdout)
        assert (doc["error"] or {}).get("code") == code
    assert_no_canary(tmp_path, done, bot)


def test_insecure_string_is_masked_and_warned(tmp_path, sandbox_with_canary):
    allow(sandbox_with_canary, ["app_token"])
    bot = bot_file(tmp_path, sandbox_with_canary, f"{{insecure: '{CANARY}'}}", LIST)
    done = run(tmp_path, bot, "--json", "--debug", token_in_env=None)
    assert done.returncode == 0, done.stderr
    assert "insecure string" in done.stderr
    assert_no_canary(tmp_path, done, bot)


def test_padded_token_is_cleaned_and_masked(tmp_path, sandbox_with_canary):
    allow(sandbox_with_canary, ["app_token"])
    bot = bot_file(tmp_path, sandbox_with_canary, VARIABLE, LIST)
    done = run(tmp_path, bot, *ENV_ARGS, "--json", token_in_env=f"  {CANARY}\n")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["variables"]["pat"] == "***"
    assert_no_canary(tmp_path, done, bot)


def test_token_with_inner_whitespace_is_refused_without_echo(tmp_path, sandbox_with_canary):
    bot = bot_file(tmp_path, sandbox_with_canary, VARIABLE, LIST)
    done = run(tmp_path, bot, *ENV_ARGS, "--json", token_in_env=f"{CANARY[:10]} {CANARY[10:]}")
    assert done.returncode == 2
    assert json.loads(done.stdout)["error"]["code"] == "INVALID_INPUT"
    assert CANARY[10:] not in done.stdout + done.stderr
    assert sandbox_with_canary.state.requests == []


def test_token_used_in_text_is_refused(tmp_path, sandbox_with_canary):
    allow(sandbox_with_canary, ["app_token"])
    steps = "  - action: ListRepos\n    inputs: {session: ado, name_filter: 'x${pat}'}\n"
    bot = bot_file(tmp_path, sandbox_with_canary, VARIABLE, steps)
    done = run(tmp_path, bot, *ENV_ARGS, "--json", "--debug")
    assert done.returncode == 2
    assert "holds a secret" in json.loads(done.stdout)["error"]["message"]
    assert_no_canary(tmp_path, done, bot)


def test_token_echoed_by_the_service_is_masked(tmp_path):
    """Even a service message that repeats the token (a proxy, a bug) is scrubbed."""
    seed = {"organizations": {}, "tokens": []}
    with Sandbox(seed=seed) as sb:
        # The canary is also a valid organization name: the sandbox's 404 repeats it.
        bot = bot_file(tmp_path, sb, VARIABLE, "", org_url=f"{sb.url}/{CANARY}")
        done = run(tmp_path, bot, *ENV_ARGS, "--json", "--debug")
    assert done.returncode == 1
    error = json.loads(done.stdout)["error"]
    assert error["code"] == "NOT_FOUND" and "***" in error["message"]
    assert_no_canary(tmp_path, done, bot)


@pytest.mark.parametrize("damage, code", [("missing", "CREDENTIAL_NOT_FOUND"),
                                          ("tampered", "VAULT_ERROR"),
                                          ("wrong_key", "VAULT_ERROR")])
def test_canary_never_leaks_from_a_broken_vault(tmp_path, sandbox_with_canary, damage, code):
    from adobot.credentials.secret import Secret
    from adobot.credentials.vault import Vault, generate_key

    vault = Vault(tmp_path / "vault.json")
    vault.put("ado", "canary" if damage != "missing" else "other", "pat", Secret(CANARY),
              organizations=[sandbox_with_canary.org_url()])
    if damage == "tampered":
        vault.path.write_text(vault.path.read_text().replace('"value": "', '"value": "A', 1))
    if damage == "wrong_key":
        vault.key_path.write_text(generate_key())
    bot = bot_file(tmp_path, sandbox_with_canary, CREDENTIAL, LIST)
    done = run(tmp_path, bot, "--vault", str(vault.path), "--json", "--debug")
    assert done.returncode == 2
    assert json.loads(done.stdout)["error"]["code"] == code
    assert_no_canary(tmp_path, done, bot)


def test_canary_never_leaks_on_a_network_error(tmp_path, sandbox_with_canary):
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    bot = bot_file(tmp_path, sandbox_with_canary, VARIABLE, LIST,
                   org_url=f"http://127.0.0.1:{port}/contoso")
    done = run(tmp_path, bot, *ENV_ARGS, "--json", "--debug")
    assert done.returncode == 1
    assert json.loads(done.stdout)["error"]["code"] == "NETWORK_ERROR"
    assert_no_canary(tmp_path, done, bot)
