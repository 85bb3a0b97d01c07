"""Schemathesis against the control room's own OpenAPI document, over real HTTP: a bounded
number of generated requests per operation (valid and invalid, with an administrator's token),
failing on any 5xx or any status the document does not list for the route.

Two passes: one with generated connection names (most are refused or not there), and one where
the routes of one connection name a connection that exists (and nothing deletes it), so the
generated bodies reach the rules behind the 404. The API, not the store, is under test: SQLite alone."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import DEMO_PAT
from tests.control_room.conftest import Caller, issue

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
EXAMPLES = 8  # per operation and phase: bounded, so a pass takes under a minute
KNOWN = r"""
[[operations]]
include-method = "DELETE"
enabled = false

[[operations]]
include-path-regex = '/connections/\{name\}'
parameters = { "path.name" = "contoso-main" }
"""


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
@pytest.mark.parametrize("known", [False, True], ids=["generated-names", "a-known-connection"])
def test_every_answer_is_documented_and_none_is_a_server_error(room, state, organizations,
                                                               tmp_path, known, monkeypatch):
    from adobot.control_room import guard

    # Schemathesis also sends requests without the token: past 20 a minute the address would
    # be held back (429) and the rest of the run would test nothing but that.
    monkeypatch.setattr(guard, "FAILURES", 1_000_000)
    # Generated organizations are proved against the sandbox, as with --sandbox: none of them
    # is sent to dev.azure.com (closed here: every one would be an honest 502).
    from adobot.control_room.check import connection_check

    monkeypatch.setattr(state.connections, "check", connection_check(organizations.route))
    token = issue(state, "administrator", "alice")
    config = tmp_path / "schemathesis.toml"
    if known:
        created = Caller(room.url, token).post(
            "/api/v1/connections", json={"name": "contoso-main", "pat": DEMO_PAT,
                                         "organization": organizations.org_url()})
        assert created.status_code == 201, created.text
    config.write_text(KNOWN if known else "")
    done = subprocess.run(
        [str(SCHEMATHESIS), "--config-file", str(config), "run",
         f"{room.url}/api/v1/openapi.json", "--url", room.url,
         "--checks", "not_a_server_error,status_code_conformance",
         "--max-examples", str(EXAMPLES), "--workers", "1", "--seed", "31",
         "--header", f"Authorization: Bearer {token}", "--request-timeout", "60",
         "--no-color"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert "Rate limited" not in done.stdout, done.stdout[-6000:]
    document = Caller(room.url, None).get("/api/v1/openapi.json").json()
    methods = [method for path in document["paths"].values() for method in path]
    total = len(methods)  # the deletes are not in the pass that needs the connection:
    selected = total - methods.count("delete") if known else total
    assert f"Operations:       {selected} selected / {total} total" in done.stdout, \
        done.stdout[:2000]
    if known:  # the generated requests reached the rules behind the 404, and it was there all along
        reached = {(row["event"], row["outcome"]) for row in state.audit.read(5000)
                   if row.get("connection") == "contoso-main"}
        assert {("credential.fetch", "refused: PERMISSION_DENIED"),
                ("connection.test", "ok")} <= reached, reached
        assert state.connections.get("contoso-main")
