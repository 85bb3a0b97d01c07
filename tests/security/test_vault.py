"""The encrypted vault: round trip, modes, tamper/wrong key/truncation, concurrency, crashes,
rotation, and the admin commands (the secret in on stdin, never out)."""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from adobot.credentials.secret import Secret
from adobot.credentials.vault import KEY_ENV, NEW_KEY_ENV, Vault, generate_key
from adobot.errors import AdobotError
from tests.conftest import ADOBOT, DEMO_PAT, ROOT

ORGS = ["https://dev.azure.com/contoso"]  # where the tests' secrets may be sent

CANARY = "vault-canary-5e1f0c9a7b3d2e4f6a8c0b1d3e5f7a9c"


@pytest.fixture(autouse=True)
def no_key_in_environment(monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    monkeypatch.delenv(NEW_KEY_ENV, raising=False)
    monkeypatch.delenv("ADOBOT_VAULT", raising=False)


@pytest.fixture
def vault(tmp_path) -> Vault:
    return Vault(tmp_path / "vault.json")


def code_of(call) -> AdobotError:
    with pytest.raises(AdobotError) as caught:
        call()
    return caught.value


def test_round_trip_and_file_modes(tmp_path):
    vault = Vault(tmp_path / "admin" / "vault.json")  # the vault makes its own folder
    vault.put("ado", "ci-bot", "pat", Secret(CANARY), organizations=ORGS)
    assert vault.get("ado", "ci-bot", "pat").reveal() == CANARY
    for path in (vault.path, vault.key_path, vault.lock_path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE(vault.path.parent.stat().st_mode) == 0o700
    data = vault.path.read_bytes()
    assert CANARY.encode() not in data
    import base64
    assert base64.b64encode(CANARY.encode()) not in data


def test_values_are_bound_to_their_place(vault):
    vault.put("ado", "a", "pat", Secret("first-secret"), organizations=ORGS)
    vault.put("ado", "b", "pat", Secret("second-secret"), organizations=ORGS)
    body, _, seal = vault.path.read_text().rpartition("\nmac ")  # the MAC line ends the file
    doc = json.loads(body)
    lockers = doc["lockers"]["ado"]
    lockers["a"]["pat"]["value"], lockers["b"]["pat"]["value"] = (
        lockers["b"]["pat"]["value"], lockers["a"]["pat"]["value"])
    vault.path.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\nmac " + seal)
    error = code_of(lambda: vault.get("ado", "a", "pat"))
    assert error.code == "VAULT_ERROR" and "modified" in error.message


def test_list_shows_names_and_dates_only(vault):
    vault.put("ado", "ci-bot", "pat", Secret(CANARY), organizations=ORGS)
    vault.put("ado", "ci-bot", "user", Secret("svc-account"), organizations=ORGS)
    entries = vault.entries()
    assert [(e.locker, e.credential, e.attribute) for e in entries] == [
        ("ado", "ci-bot", "pat"), ("ado", "ci-bot", "user")]
    assert all(e.set_at.endswith("Z") for e in entries)


@pytest.mark.parametrize("position", ["start", "value", "name", "mac", "end"])
def test_a_flipped_byte_is_caught(vault, position):
    vault.put("ado", "ci-bot", "pat", Secret(CANARY), organizations=ORGS)
    data = bytearray(vault.path.read_bytes())
    text = data.decode()
    index = {"start": 0, "end": len(data) - 3,
             "value": text.index('"value": "') + 14, "name": text.index("ci-bot") + 1,
             "mac": text.index("\nmac ") + 8}[position]  # the MAC line that ends the file
    data[index] ^= 0x01
    vault.path.write_bytes(bytes(data))
    error = code_of(lambda: vault.get("ado", "ci-bot", "pat"))
    assert error.code == "VAULT_ERROR"
    assert "modified" in error.message or "not a vault file" in error.message
    assert CANARY not in error.message


def test_wrong_key_says_so(vault, monkeypatch):
    vault.put("ado", "ci-bot", "pat", Secret(CANARY), organizations=ORGS)
    monkeypatch.setenv(KEY_ENV, generate_key())  # the key source is read when a vault opens
    error = code_of(lambda: Vault(vault.path).get("ado", "ci-bot", "pat"))
    assert error.code == "VAULT_ERROR" and "another key" in error.message


def test_malformed_key_says_so(vault, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "too-short")
    error = code_of(lambda: Vault(vault.path).put("ado", "x", "pat", Secret("v"),
                                                  organizations=ORGS))
    assert error.code == "VAULT_ERROR" and "not valid" in error.message


@pytest.mark.parametrize("cut", [0, 1, 0.5, -2])
def test_truncation_says_so(vault, cut):
    vault.put("ado", "ci-bot", "pat", Secret(CANARY), organizations=ORGS)
    data = vault.path.read_bytes()
    keep = int(len(data) * cut) if isinstance(cut, float) else (cut if cut >= 0 else len(data) + cut)
    vault.path.write_bytes(data[:keep])
    error = code_of(lambda: vault.get("ado", "ci-bot", "pat"))
    assert error.code == "VAULT_ERROR"
    assert "truncated" in error.message or "modified" in error.message
    assert code_of(vault.entries).code == "VAULT_ERROR"


def test_missing_key_file(vault):
    vault.put("ado", "ci-bot", "pat", Secret(CANARY), organizations=ORGS)
    vault.key_path.unlink()
    error = code_of(lambda: vault.get("ado", "ci-bot", "pat"))
    assert error.code == "VAULT_ERROR" and "no vault key" in error.message


def test_missing_entries_name_what_is_missing(vault):
    assert "there is no vault" in code_of(lambda: vault.get("a", "b", "c")).message
    vault.put("ado", "ci-bot", "pat", Secret("v"), organizations=ORGS)
    for args, said in ((("x", "ci-bot", "pat"), "locker 'x'"),
                       (("ado", "x", "pat"), "credential 'x' in locker 'ado'"),
                       (("ado", "ci-bot", "x"), "attribute 'x' of ado/ci-bot")):
        error = code_of(lambda args=args: vault.get(*args))
        assert error.code == "CREDENTIAL_NOT_FOUND" and said in error.message


def test_env_key_works_without_a_key_file(vault, monkeypatch):
    monkeypatch.setenv(KEY_ENV, generate_key())
    vault = Vault(vault.path)
    vault.put("ado", "ci-bot", "pat", Secret(CANARY), organizations=ORGS)
    assert not vault.key_path.exists()
    assert vault.get("ado", "ci-bot", "pat").reveal() == CANARY


def test_threads_writing_at_once_lose_nothing(vault):
    def writer(n: int) -> None:
        for i in range(10):
            Vault(vault.path).put("load", f"t{n}", f"a{i}", Secret(f"value-{n}-{i}"),
                                  organizations=ORGS)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(vault.entries()) == 80
    assert vault.get("load", "t7", "a9").reveal() == "value-7-9"


def test_processes_writing_at_once_lose_nothing(vault):
    script = ("import sys; sys.path.insert(0, sys.argv[1]);"
              "from adobot.credentials.vault import Vault; from adobot.credentials.secret import Secret;"
              "[Vault(sys.argv[2]).put('load', 'p' + sys.argv[3], f'a{i}', Secret(f'v{i}'), "
              "organizations=['https://dev.azure.com/contoso'])"
              " for i in range(10)]")
    # the key file exists before they race
    vault.put("load", "seed", "a", Secret("s"), organizations=ORGS)
    procs = [subprocess.Popen([sys.executable, "-c", script, str(ROOT), str(vault.path), str(n)])
             for n in range(4)]
    assert [p.wait(timeout=60) for p in procs] == [0, 0, 0, 0]
    assert len(vault.entries()) == 41


def test_a_crash_during_write_keeps_the_old_vault(vault, monkeypatch):
    vault.put("ado", "ci-bot", "pat", Secret("old-value"), organizations=ORGS)
    before = vault.path.read_bytes()

    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        vault.put("ado", "ci-bot", "pat", Secret("new-value"), organizations=ORGS)
    monkeypatch.undo()
    assert vault.path.read_bytes() == before
    assert vault.get("ado", "ci-bot", "pat").reveal() == "old-value"
    assert [p.name for p in vault.path.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_rotate_key_keeps_every_value(vault):
    for i in range(5):
        vault.put("ado", f"c{i}", "pat", Secret(f"value-{i}"), organizations=ORGS)
    old_key = vault.key_path.read_text()
    assert vault.rotate_key() == 5
    assert vault.key_path.read_text() != old_key
    assert [vault.get("ado", f"c{i}", "pat").reveal() for i in range(5)] == [
        f"value-{i}" for i in range(5)]
    vault.key_path.write_text(old_key)
    assert "another key" in code_of(lambda: vault.get("ado", "c0", "pat")).message


def test_a_crash_mid_rotation_is_finished_on_next_use(vault, monkeypatch):
    vault.put("ado", "ci-bot", "pat", Secret("kept"), organizations=ORGS)
    real_replace = os.replace

    def crash_on_key(src, dst):
        if Path(dst) == vault.key_path:
            raise OSError("power cut")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", crash_on_key)
    with pytest.raises(OSError):
        vault.rotate_key()
    monkeypatch.undo()
    assert vault.get("ado", "ci-bot", "pat").reveal() == "kept"
    assert not vault.key_path.with_name(vault.key_path.name + ".new").exists()


def test_rotate_with_an_environment_key(vault, monkeypatch):
    monkeypatch.setenv(KEY_ENV, generate_key())
    vault = Vault(vault.path)
    vault.put("ado", "ci-bot", "pat", Secret("kept"), organizations=ORGS)
    assert "ADOBOT_VAULT_NEW_KEY" in code_of(vault.rotate_key).message
    new = generate_key()
    monkeypatch.setenv(NEW_KEY_ENV, new)
    assert vault.rotate_key() == 1
    monkeypatch.setenv(KEY_ENV, new)
    assert Vault(vault.path).get("ado", "ci-bot", "pat").reveal() == "kept"


def test_remove(vault):
    vault.put("ado", "a", "pat", Secret("x"), organizations=ORGS)
    vault.put("ado", "b", "pat", Secret("y"), organizations=ORGS)
    vault.remove("ado", "a")
    assert [(e.credential) for e in vault.entries()] == ["b"]
    assert code_of(lambda: vault.remove("ado", "a")).code == "CREDENTIAL_NOT_FOUND"


@pytest.mark.parametrize("args", [("", "c", "a"), ("l/x", "c", "a"), ("l", "c c", "a"),
                                  ("l", "c", "-a"), ("l" * 65, "c", "a")])
def test_names_are_checked(vault, args):
    assert code_of(lambda: vault.put(*args, Secret("v"), organizations=ORGS)).code == "INVALID_INPUT"


# --- the admin commands ------------------------------------------------------------------------

def adobot(*args: str, stdin: str = "", env: dict | None = None, cwd: Path | None = None):
    full = {k: v for k, v in os.environ.items() if not k.startswith("ADOBOT")}
    full.update(env or {})
    return subprocess.run([str(ADOBOT), *args], input=stdin, capture_output=True, text=True,
                          env=full, cwd=cwd, timeout=60)


def test_put_reads_stdin_strips_the_newline_and_never_prints(tmp_path):
    path = str(tmp_path / "v.json")
    done = adobot("vault", "put", "ado", "ci-bot", "pat", "--vault", path, "--org", ORGS[0],
                  stdin=CANARY + "\n")
    assert done.returncode == 0, done.stderr
    assert Vault(path).get("ado", "ci-bot", "pat").reveal() == CANARY
    listed = adobot("vault", "list", "--json", "--vault", path)
    assert json.loads(listed.stdout)[0]["attribute"] == "pat"
    for out in (done, listed):
        assert CANARY not in out.stdout + out.stderr


def test_put_refuses_an_empty_secret(tmp_path):
    done = adobot("vault", "put", "ado", "ci-bot", "pat", "--vault", str(tmp_path / "v.json"),
                  "--org", ORGS[0], stdin="\n")
    assert done.returncode == 2 and "INVALID_INPUT" in done.stderr and "empty" in done.stderr
    assert not (tmp_path / "v.json").exists()


def test_there_is_no_command_that_prints_a_value():
    text = adobot("vault", "--help").stdout
    assert {"put", "list", "remove", "rotate-key", "generate-key"} <= set(
        word.strip(",{}") for word in text.split())
    for word in ("get", "show", "read", "export", "print"):
        assert adobot("vault", word, "ado", "ci-bot", "pat").returncode == 2


def test_vault_errors_are_one_line_with_a_hint(tmp_path):
    path = tmp_path / "v.json"
    path.write_text("{not json")
    done = adobot("vault", "list", "--vault", str(path))
    assert done.returncode == 2
    assert "VAULT_ERROR" in done.stderr and "hint:" in done.stderr
    assert "Traceback" not in done.stderr


def test_rotate_key_command(tmp_path):
    path = str(tmp_path / "v.json")
    adobot("vault", "put", "ado", "ci-bot", "pat", "--vault", path, "--org", ORGS[0],
           stdin="abc-token")
    done = adobot("vault", "rotate-key", "--vault", path)
    assert done.returncode == 0 and "re-encrypted 1 values" in done.stdout
    assert Vault(path).get("ado", "ci-bot", "pat").reveal() == "abc-token"


@pytest.mark.parametrize("token, code, said", [
    (DEMO_PAT, None, None),
    ("not-a-real-token", "AUTH_FAILED", "not accepted"),
    ("sandbox-expired-pat", "AUTH_FAILED", "expired"),
    ("sandbox-work-only-pat", "PERMISSION_DENIED", "Code (Read)"),
])
def test_put_check_proves_the_token_first(tmp_path, sandbox, token, code, said):
    path = tmp_path / "v.json"
    done = adobot("vault", "put", "ado", "ci-bot", "pat", "--vault", str(path),
                  "--check", sandbox.org_url(), stdin=token)
    if code is None:
        assert done.returncode == 0, done.stderr
        assert "can read code" in done.stderr
        assert Vault(path).get("ado", "ci-bot", "pat").reveal() == token
    else:
        assert done.returncode == 1
        assert code in done.stderr and said in done.stderr
        assert not path.exists()  # nothing stored
    assert token not in done.stdout + done.stderr


def test_bots_read_tokens_from_the_vault(tmp_path, sandbox):
    path = str(tmp_path / "v.json")
    Vault(path).put("ado", "ci-bot", "pat", Secret(DEMO_PAT), organizations=[sandbox.org_url()])
    bot = tmp_path / "bot.yaml"
    bot.write_text("name: v\nsteps:\n  - action: Connect\n    inputs:\n"
                   f"      organization_url: {sandbox.org_url()}\n      project: Payments\n"
                   "      personal_access_token: {credential: {locker: ado, name: ci-bot, "
                   "attribute: pat}}\n  - action: ListRepos\n    outputs: {count: n}\n")
    done = adobot("run", str(bot), "--vault", path, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["variables"]["n"] == 4
    by_env = adobot("run", str(bot), "--json", env={"ADOBOT_VAULT": path})
    assert by_env.returncode == 0, by_env.stderr
    missing = adobot("run", str(bot), "--json", "--vault", str(tmp_path / "none.json"))
    assert missing.returncode == 2
    assert json.loads(missing.stdout)["error"]["code"] == "CREDENTIAL_NOT_FOUND"
