"""A vault written by round two's code (tests/fixtures/round2-vault) moves into the database on
first start, once, with nothing lost: connections with their secrets and bindings, token hashes
(revocations included), the audit log in order; the vault keeps its lockers."""
from __future__ import annotations

import datetime as dt
import json
import shutil

import pytest

from adobot.control_room.state import open_state
from adobot.control_room.tokens import Tokens
from adobot.credentials.vault import Vault
from adobot.errors import PermissionDenied
from tests.conftest import ROOT

FIXTURE = ROOT / "tests" / "fixtures" / "round2-vault"
ALICE = "adobot_zfhUQO5jucAL2F6iDxjkzYyIYZVN3jJGHoMV41Oc1Ys"
CANARIES = ("round2-connection-canary-4b9a", "round2-sp-canary-c3f0", "round2-locker-canary-7d1e")


@pytest.fixture
def old_vault(tmp_path):
    folder = tmp_path / "old"
    folder.mkdir(mode=0o700)
    for name in ("round2.json", "round2.json.key", "round2.json.audit.jsonl"):
        shutil.copy(FIXTURE / name, folder / name)
        (folder / name).chmod(0o600)
    return Vault(folder / "round2.json")


def test_the_vaults_sections_move_into_the_database_once(old_vault, database_url):
    journal = old_vault.path.with_name("round2.json.audit.jsonl")
    before = json.loads(old_vault.path.read_bytes().rpartition(b"\nmac ")[0])
    with open_state(old_vault, database_url) as state:
        connections = {c.name: c for c in state.connections.list()}
        assert sorted(connections) == ["contoso-main", "fabrikam-app"]
        main = connections["contoso-main"]
        assert (main.organization_url, main.project, main.runners, main.status.user) == \
            ("https://dev.azure.com/contoso", "Payments", ("build-01",), "Canary Admin")
        assert main.created_at == before["connections"]["contoso-main"]["created_at"]
        app = state.connections.credential("fabrikam-app")
        assert (app.authentication_method, app.client_id, app.secret.reveal()) == \
            ("service_principal", "0b5b2d5c-6a21-4f3f-8bbb-111122223333",
             "round2-sp-canary-c3f0")
        assert connections["fabrikam-app"].roles == ("runner", "administrator")
        # still bound to its one organization
        assert state.connections.credential(
            "contoso-main", "https://dev.azure.com/contoso").secret.reveal() == CANARIES[0]
        with pytest.raises(PermissionDenied):
            state.connections.credential("contoso-main", "https://dev.azure.com/fabrikam")
        # token hashes moved: alice's token still works, build-01's is still revoked
        clock = lambda: dt.datetime(2026, 12, 6, tzinfo=dt.timezone.utc)  # noqa: E731
        assert Tokens(state.store.tokens, clock).verify(ALICE).name == "alice"
        assert [(t.name, t.to_dict()["state"] == "revoked") for t in state.tokens.list()] == \
            [("alice", False), ("build-01", True)]
        # the audit entries, in their order, chained
        read = state.audit.read(10)
        assert [(e["seq"], e["event"]) for e in read] == [
            (1, "connection.create"), (2, "credential.fetch"), (3, "connection.edit")]
        assert read[1]["run"] == {"bot": "nightly", "run": "abc123"}
        assert read[2]["detail"] == "project \x1b[2J\nforged line"  # stored as data
        assert state.audit.verify().whole
    # the vault keeps its lockers and no longer holds the sections; the journal is kept aside
    after = json.loads(old_vault.path.read_bytes().rpartition(b"\nmac ")[0])
    assert "connections" not in after and "api_tokens" not in after
    assert after["lockers"] == before["lockers"]
    assert old_vault.get("ado", "ci-bot", "pat").reveal() == CANARIES[2]
    assert not journal.exists() and journal.with_name(journal.name + ".imported").exists()
    # a second start moves nothing again
    with open_state(old_vault, database_url) as again:
        assert len(again.connections.list()) == 2 and len(again.audit.read(10)) == 3


def test_a_move_cut_short_is_finished_without_doubling(old_vault, database_url, monkeypatch):
    """The store committed, then the process died before the vault was rewritten: the next
    start finds the rows there and adds nothing twice."""
    def die(self):
        raise OSError("killed")

    monkeypatch.setattr(Vault, "transaction", die)
    with pytest.raises(OSError):
        open_state(old_vault, database_url)
    monkeypatch.undo()
    with open_state(old_vault, database_url) as state:
        assert len(state.connections.list()) == 2 and len(state.tokens.list()) == 2
        assert len(state.audit.read(10)) == 3 and state.audit.verify().whole


def test_no_secret_is_in_the_database_dump(old_vault, database_url, tmp_path):
    from tests.control_room.conftest import stored_bytes

    with open_state(old_vault, database_url) as state:
        dump = stored_bytes(state)
        assert b"contoso-main" in dump and b"fabrikam" in dump
        for canary in CANARIES + (ALICE,):
            assert canary.encode() not in dump, canary
        key = old_vault.key_path.read_text().strip()
        assert key.encode() not in dump
