"""Security review finding 6: the vault's files. Each as the attack was: links, other owners and
open modes refused; the MAC over the file's exact bytes; `vault list` saying when it could not
check; rotation racing readers; recovery after a cut-short rotation; stale temporary files."""
from __future__ import annotations

import json
import os
import subprocess

import pytest

from adobot.credentials.secret import Secret
from adobot.credentials.vault import KEY_ENV, Vault, _Keys
from adobot.errors import AdobotError
from tests.conftest import ADOBOT

ORGS = ["https://dev.azure.com/contoso"]
pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX file modes and owners")


@pytest.fixture
def vault(tmp_path, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    folder = tmp_path / "vault"
    stored = Vault(folder / "vault.json")
    stored.put("ado", "ci-bot", "pat", Secret("token-value"), organizations=ORGS)
    return stored


def error_of(call) -> AdobotError:
    with pytest.raises(AdobotError) as caught:
        call()
    return caught.value


def read(vault: Vault) -> str:
    return Vault(vault.path).get("ado", "ci-bot", "pat", organization=ORGS[0]).reveal()


def test_the_folder_is_made_private(vault):
    assert oct(vault.path.parent.stat().st_mode & 0o777) == "0o700"
    assert oct(vault.path.stat().st_mode & 0o777) == "0o600"
    assert oct(vault.key_path.stat().st_mode & 0o777) == "0o600"


@pytest.mark.parametrize("which", ["path", "key_path", "lock_path"])
def test_a_file_that_is_a_symbolic_link_is_refused(vault, tmp_path, which):
    target = getattr(vault, which)
    moved = tmp_path / f"elsewhere-{target.name}"
    if target.exists():
        target.rename(moved)
    else:
        moved.write_text("")
        moved.chmod(0o600)
    target.symlink_to(moved)
    error = error_of(lambda: read(vault))
    assert error.code == "VAULT_ERROR" and "symbolic link" in error.message


def test_the_lock_link_is_never_followed(vault, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("untouched")
    vault.lock_path.unlink()
    vault.lock_path.symlink_to(victim)
    error_of(lambda: Vault(vault.path).put("ado", "x", "pat", Secret("v"), organizations=ORGS))
    assert victim.read_text() == "untouched"


def test_a_folder_that_is_a_link_is_refused(vault, tmp_path):
    link = tmp_path / "linked"
    link.symlink_to(vault.path.parent)
    error = error_of(lambda: Vault(link / "vault.json").get("ado", "ci-bot", "pat",
                                                            organization=ORGS[0]))
    assert "symbolic link" in error.message


def test_files_of_another_user_are_refused(vault, monkeypatch):
    monkeypatch.setattr(os, "getuid", lambda: os.stat(vault.path).st_uid + 1)
    error = error_of(lambda: read(vault))
    assert error.code == "VAULT_ERROR" and "belongs to another user" in error.message


def test_a_planted_readable_key_in_an_open_folder_is_refused(tmp_path, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    folder = tmp_path / "open"
    folder.mkdir(mode=0o777)
    folder.chmod(0o777)
    planted = folder / "vault.json.key"
    planted.write_text("A" * 43 + "=\n")
    planted.chmod(0o644)
    error = error_of(lambda: Vault(folder / "vault.json").put("ado", "x", "pat", Secret("v"),
                                                               organizations=ORGS))
    assert "can be read or written by others" in error.message and "chmod 700" in error.hint
    folder.chmod(0o700)
    error = error_of(lambda: Vault(folder / "vault.json").put("ado", "x", "pat", Secret("v"),
                                                               organizations=ORGS))
    assert "key file" in error.message and "chmod 600" in error.hint
    assert not (folder / "vault.json").exists()


def test_a_group_readable_folder_is_refused(vault):
    vault.path.parent.chmod(0o755)
    assert "mode 755" in error_of(lambda: read(vault)).message


@pytest.mark.parametrize("change", ["reindent", "duplicate"])
def test_the_mac_covers_the_files_bytes(vault, change):
    body, _, seal = vault.path.read_text().rpartition("\nmac ")
    if change == "reindent":  # the same document, laid out otherwise
        body = json.dumps(json.loads(body), indent=4, sort_keys=True)
    else:  # a duplicated key, which a JSON parser would silently resolve
        body = body.replace('"version": 2', '"version": 2, "version": 2', 1)
    vault.path.write_text(body + "\nmac " + seal)
    error = error_of(lambda: read(vault))
    assert error.code == "VAULT_ERROR"
    assert "modified" in error.message or "not a vault file" in error.message


def test_list_says_when_it_could_not_check_the_names(vault):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADOBOT_")}
    checked = subprocess.run([str(ADOBOT), "vault", "list", "--vault", str(vault.path)],
                             capture_output=True, text=True, env=env, timeout=60)
    assert checked.returncode == 0 and "not checked" not in checked.stderr
    vault.key_path.rename(vault.path.parent / "elsewhere.key")
    unchecked = subprocess.run([str(ADOBOT), "vault", "list", "--vault", str(vault.path)],
                               capture_output=True, text=True, env=env, timeout=60)
    assert unchecked.returncode == 0 and "ci-bot" in unchecked.stdout
    assert "not checked" in unchecked.stderr


READER = """
import sys
from adobot.credentials.vault import Vault
failed = 0
for _ in range(150):
    try:
        value = Vault(sys.argv[1]).get("ado", "ci-bot", "pat", organization=sys.argv[2]).reveal()
        failed += value != "token-value"
    except Exception:
        failed += 1
print(failed)
"""


def test_rotation_racing_600_reads_fails_none(vault):
    """Four processes read 150 times each while the key is rotated again and again."""
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("ADOBOT_")}
    readers = [subprocess.Popen([sys.executable, "-c", READER, str(vault.path), ORGS[0]],
                                stdout=subprocess.PIPE, text=True, env=env) for _ in range(4)]
    rotations = 0
    while any(reader.poll() is None for reader in readers):
        Vault(vault.path).rotate_key()
        rotations += 1
    failed = [int(reader.communicate()[0]) for reader in readers]
    assert rotations >= 2 and failed == [0, 0, 0, 0]


def test_recovery_drops_the_pending_key_only_when_the_old_key_opens_the_vault(vault):
    pending = vault.key_path.with_name(vault.key_path.name + ".new")
    pending.write_text("B" * 43 + "=\n")  # a rotation that died before writing the vault
    pending.chmod(0o600)
    assert read(vault) == "token-value" and not pending.exists()
    # Now the vault opens with neither: both keys are kept, and the error says so.
    key = vault.key_path.read_text()
    vault.key_path.write_text("C" * 43 + "=\n")
    pending.write_text("B" * 43 + "=\n")
    pending.chmod(0o600)
    error = error_of(lambda: read(vault))
    assert "neither" in error.message and pending.exists()
    vault.key_path.write_text(key)
    pending.unlink()
    assert read(vault) == "token-value"


def test_stale_temporary_files_are_swept_by_the_next_writer(vault):
    stale = vault.path.parent / ".vault.json.crashed.tmp"
    stale.write_text("half a vault")
    Vault(vault.path).put("ado", "other", "pat", Secret("v"), organizations=ORGS)
    assert not stale.exists()


def test_a_version_1_vault_is_still_read_and_rewritten_as_version_2(vault):
    keys = _Keys(vault._key(create=False))
    doc = vault._read(keys)
    body = {"version": 1, "key_id": keys.key_id, "lockers": doc["lockers"]}
    vault.path.write_text(json.dumps({**body, "mac": keys.mac_v1(body)}, indent=1))
    assert read(vault) == "token-value"
    Vault(vault.path).put("ado", "other", "pat", Secret("v"), organizations=ORGS)
    assert "\nmac " in vault.path.read_text() and read(vault) == "token-value"
