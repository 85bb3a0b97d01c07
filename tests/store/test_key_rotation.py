"""`adobot vault rotate-key` re-seals the connections in the control room's database with the
new key, so they still open after it, and the old key opens nothing."""
from __future__ import annotations

import subprocess

import pytest

from adobot.control_room.state import open_state
from adobot.credentials.secret import Secret
from adobot.credentials.vault import Vault
from adobot.errors import VaultError
from tests.conftest import ADOBOT


def test_rotation_reseals_the_databases_connections(tmp_path, database_url):
    vault = Vault(tmp_path / "v" / "vault.json")
    with open_state(vault, database_url, check=lambda c, s: "Someone") as state:
        state.connections.add("contoso-main", "contoso", Secret("rotated-canary-1f2e"))
        vault.put("ado", "ci", "pat", Secret("locker-value"),
                  organizations=["https://dev.azure.com/contoso"])
        old_key = vault.key_path.read_text()
    done = subprocess.run([str(ADOBOT), "vault", "rotate-key", "--vault", str(vault.path),
                           "--database", database_url], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0 and "re-encrypted 2 values" in done.stdout, done
    assert vault.key_path.read_text() != old_key
    with open_state(Vault(vault.path), database_url) as state:
        assert state.connections.credential("contoso-main").secret.reveal() == "rotated-canary-1f2e"
    # the old key opens neither the vault nor the database's secrets any more
    vault.key_path.write_text(old_key)
    with pytest.raises(VaultError):
        Vault(vault.path).get("ado", "ci", "pat")
    with open_state(Vault(vault.path), database_url) as state:
        with pytest.raises(VaultError) as refused:
            state.connections.credential("contoso-main")
    assert "sealed with another vault key" in refused.value.message
