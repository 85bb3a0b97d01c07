"""The audit log is append-only (the database refuses UPDATE and DELETE) and tamper-evident:
``verify`` and ``adobot audit --verify`` name the first row that was changed or removed."""
from __future__ import annotations

import subprocess

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from adobot.cli.control import printable
from adobot.control_room.state import open_state
from adobot.credentials.vault import Vault
from tests.conftest import ADOBOT


def entries(count: int) -> list[dict]:
    return [{"at": f"2026-12-05T10:00:{n:02d}.000000Z", "event": "credential.fetch",
             "actor": f"runner-{n}", "role": "runner", "outcome": "ok",
             "connection": "contoso-main", "run": {"bot": "nightly", "run": str(n)}}
            for n in range(1, count + 1)]


def owner_sql(store, statement: str) -> None:
    """What someone holding the database (not adobot) can do: drop the triggers and write."""
    with store.database.engine.begin() as db:
        if store.database.sqlite:
            db.exec_driver_sql("DROP TRIGGER IF EXISTS audit_log_no_update")
            db.exec_driver_sql("DROP TRIGGER IF EXISTS audit_log_no_delete")
        else:
            db.exec_driver_sql("DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log")
        db.execute(text(statement))


def test_a_whole_chain_verifies(store):
    assert store.audit.verify().whole and store.audit.verify().rows == 0
    assert store.audit.append(entries(3)) == [1, 2, 3]
    assert store.audit.append(entries(2)) == [4, 5]
    verdict = store.audit.verify()
    assert verdict.whole and verdict.rows == 5
    read = store.audit.read(2)
    assert [e["seq"] for e in read] == [4, 5] and read[0]["run"] == {"bot": "nightly", "run": "1"}


@pytest.mark.parametrize("statement", ["UPDATE audit_log SET actor = 'mallory' WHERE seq = 2",
                                       "DELETE FROM audit_log WHERE seq = 2"])
def test_the_database_refuses_to_change_or_remove_a_row(store, statement):
    store.audit.append(entries(3))
    with pytest.raises(DBAPIError) as refused:
        with store.database.writing() as db:
            db.execute(text(statement))
    assert "append-only" in str(refused.value)
    assert store.audit.verify().whole


@pytest.mark.parametrize("statement, first_bad, said", [
    ("UPDATE audit_log SET actor = 'mallory' WHERE seq = 3", 3, "row 3 was changed"),
    ("UPDATE audit_log SET run = NULL WHERE seq = 1", 1, "row 1 was changed"),
    ("DELETE FROM audit_log WHERE seq = 2", 2, "row 2 was removed"),
    ("DELETE FROM audit_log WHERE seq = 5", 5, "row 5 was removed"),
    ("DELETE FROM audit_log", 1, "row 1 was removed"),
])
def test_a_changed_or_removed_row_is_named(store, statement, first_bad, said):
    store.audit.append(entries(5))
    owner_sql(store, statement)
    verdict = store.audit.verify()
    assert not verdict.whole and verdict.first_bad == first_bad and said in verdict.problem


def test_a_row_rewritten_with_a_fresh_hash_still_shows(store):
    """A forger who recomputes the changed row's hash breaks the link to the next row."""
    from adobot.store.audit import FIELDS, row_hash

    store.audit.append(entries(4))
    with store.database.reading() as db:
        row = dict(db.execute(text("SELECT * FROM audit_log WHERE seq = 2")).mappings().one())
    forged = {**row, "actor": "mallory"}
    new_hash = row_hash(2, {name: forged[name] for name in FIELDS}, row["prev_hash"])
    owner_sql(store, f"UPDATE audit_log SET actor = 'mallory', hash = '{new_hash}' WHERE seq = 2")
    verdict = store.audit.verify()
    assert not verdict.whole and verdict.first_bad == 2


def test_the_command_exits_1_naming_the_row(tmp_path, database_url):
    vault = Vault(tmp_path / "v" / "vault.json")
    with open_state(vault, database_url) as state:
        state.audit.record("connection.create", actor="alice", role="administrator",
                           connection="contoso-main", detail="fine")
        # a name from a request's path is recorded as it came: here, one that would clear the
        # screen and print a forged row
        state.audit.record("connection.delete", actor="alice", role="administrator",
                           connection="x\x1b[2J\r\n9  2026-12-05  bob  administrator  ok",
                           outcome="refused: CREDENTIAL_NOT_FOUND")
        args = [str(ADOBOT), "audit", "--vault", str(vault.path), "--database", database_url]
        shown = subprocess.run(args, capture_output=True, text=True, timeout=60)
        whole = subprocess.run(args + ["--verify"], capture_output=True, text=True, timeout=60)
        assert whole.returncode == 0 and "whole: 2 rows" in whole.stdout
        owner_sql(state.store, "UPDATE audit_log SET outcome = 'ok' WHERE seq = 2")
        broken = subprocess.run(args + ["--verify"], capture_output=True, text=True, timeout=60)
    assert broken.returncode == 1 and "row 2 was changed" in broken.stdout, broken
    # the stored value cannot forge a line or clear a terminal: it is shown escaped
    assert shown.returncode == 0 and "\x1b" not in shown.stdout and "\r" not in shown.stdout
    assert len(shown.stdout.strip().splitlines()) == 3  # the header and two rows
    assert "x\\x1b[2J\\r\\n9  2026-12-05" in shown.stdout


def test_values_are_printed_with_control_characters_escaped():
    assert printable("a\x1b[31mb\nc\u2028d\x7f") == "a\\x1b[31mb\\nc\\u2028d\\x7f"
    assert printable("plain text, ünïcode") == "plain text, ünïcode"
