"""`adobot vault rotate-key` re-seals the connections in the control room's database with the
new key, so they still open after it, and the old key opens nothing."""
from __future__ import annotations

import subprocess

import pytest

from adobot.control_room.state import open_state
from adobot.credentials.secret import Secret
from adobot.credentials.vault import Vault
from adobot.errors import VaultError
from adobot.runs.bundles import Upload
from adobot.runs.schedules import NewSchedule, Schedules
from adobot.runs.service import StartRun
from tests.conftest import ADOBOT

TICK = {"main": "tick.yaml", "variables": ["pat"], "files": {"tick.yaml": (
    "name: tick\nsteps:\n  - action: Connect\n    inputs: {organization_url: "
    "'https://dev.azure.com/contoso', project: Payments, personal_access_token: "
    "{variable: pat}}\n")}}


def queue_a_run(state, pat: str) -> str:
    state.runs.upload(Upload.model_validate(TICK), "bob")
    return state.runs.start(StartRun(bot="tick", variables={"pat": pat}), "bob")[0]["id"]


def taken_variables(state) -> dict:
    run = state.runs.claim("default", "build-01")
    assert run is not None, "the run's variables did not open"
    return run["variables"]


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


def test_rotation_keeps_queued_runs_and_schedules(tmp_path, database_url):
    """A run waiting in the queue and a schedule's variables are sealed with the vault's key
    too: after a rotation the run still starts with its variables, and the schedule's next
    run gets its own."""
    vault = Vault(tmp_path / "v" / "vault.json")
    with open_state(vault, database_url) as state:
        vault.put("ado", "ci", "pat", Secret("locker-value"),
                  organizations=["https://dev.azure.com/contoso"])
        queue_a_run(state, "queued-canary-31c")
        Schedules(state.runs).create(NewSchedule(name="nightly", bot="tick", cron="0 2 * * *",
                                                 variables={"pat": "schedule-canary-9d"}),
                                     "alice")
    done = subprocess.run([str(ADOBOT), "vault", "rotate-key", "--vault", str(vault.path),
                           "--database", database_url], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0 and "re-encrypted 3 values" in done.stdout, done
    with open_state(Vault(vault.path), database_url) as state:
        assert taken_variables(state) == {"pat": "queued-canary-31c"}
        Schedules(state.runs).trigger("nightly", "alice")
        assert taken_variables(state) == {"pat": "schedule-canary-9d"}


@pytest.mark.parametrize("crash_at", ["the vault's rewrite", "the key file's replacement"])
def test_a_rotation_cut_short_loses_no_connection(tmp_path, database_url, monkeypatch, crash_at):
    """The database's secrets are sealed under the new key beside the old ones first, and
    promoted only after the vault has the new key: wherever the rotation stops, the next start
    opens every connection."""
    from adobot.credentials import vault as vault_module

    vault = Vault(tmp_path / "v" / "vault.json")
    with open_state(vault, database_url, check=lambda c, s: "Someone") as state:
        state.connections.add("contoso-main", "contoso", Secret("crash-canary-7a1c"))
        vault.put("ado", "ci", "pat", Secret("locker-value"),
                  organizations=["https://dev.azure.com/contoso"])
        queue_a_run(state, "run-canary-51")
        queue_a_run(state, "run-canary-52")

        def crash(*args, **kwargs):
            raise OSError("the machine lost power")

        if crash_at == "the vault's rewrite":
            monkeypatch.setattr(vault_module.Vault, "_write", crash)
        else:
            real = vault_module.os.replace
            monkeypatch.setattr(vault_module.os, "replace", lambda src, dst: crash()
                                if str(dst) == str(vault.key_path) else real(src, dst))
        with pytest.raises(OSError):
            vault.rotate_key(state.reseal)
        monkeypatch.undo()
    with open_state(Vault(vault.path), database_url) as state:  # the next start
        assert state.connections.credential("contoso-main").secret.reveal() == "crash-canary-7a1c"
        assert Vault(vault.path).get("ado", "ci", "pat").reveal() == "locker-value"
        assert taken_variables(state) == {"pat": "run-canary-51"}
        # and a rotation run again afterwards finishes the job

        Vault(vault.path).rotate_key(state.reseal)
        state.promote()
        assert state.connections.credential("contoso-main").secret.reveal() == "crash-canary-7a1c"
        assert taken_variables(state) == {"pat": "run-canary-52"}


def test_an_instance_without_the_shared_key_refuses_to_seal_with_a_new_one(tmp_path,
                                                                           database_url):
    """Two instances on one database need one key: the second, started without it, would seal
    with a key of its own that the first cannot open. It refuses and names the key."""
    first = Vault(tmp_path / "a" / "vault.json")
    with open_state(first, database_url, check=lambda c, s: "Someone") as state:
        state.connections.add("contoso-main", "contoso", Secret("shared-canary"))
        key_id = first.keys().key_id
    second = Vault(tmp_path / "b" / "vault.json")
    with open_state(second, database_url, check=lambda c, s: "Someone") as state:
        with pytest.raises(VaultError) as refused:
            state.connections.add("fabrikam-main", "fabrikam", Secret("other-canary"))
        assert key_id in refused.value.message and "ADOBOT_VAULT_KEY" in refused.value.hint
        assert not second.key_path.exists() and [c.name for c in state.connections.list()] == \
            ["contoso-main"]


def test_a_key_another_writer_made_meanwhile_is_used_not_refused(tmp_path, database_url):
    """Twenty admins saving on a fresh control room: one makes the key, and another, which
    looked for it a moment before, then sees that one's row. It must seal with the key, not
    refuse as if it were an instance without the shared key (it did, under load)."""
    vault = Vault(tmp_path / "v" / "vault.json")
    with open_state(vault, database_url, check=lambda c, s: "Someone") as state:
        state.connections.add("first-conn", "contoso", Secret("first"))  # makes the key
        looks = [False]  # the first look came before the other writer made it
        real = vault.has_key
        vault.has_key = lambda: looks.pop() if looks else real()  # type: ignore[method-assign]
        state.connections.add("second-conn", "fabrikam", Secret("second"))
        assert not looks and state.connections.credential("second-conn").secret.reveal() == \
            "second"
