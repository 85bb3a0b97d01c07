"""The routes behind the page's catalogue and bot checker, over real HTTP: who may use them, and
that a bot tried there reaches no vault, no connection, no file outside its own folder and no
organization but a sandbox of its own."""
from __future__ import annotations

import json

import pytest
import requests

from adobot.control_room.workbench import MAX_BOT_BYTES
from tests.conftest import DEMO_PAT, ROOT
from tests.control_room.conftest import CANARY

QUICKSTART = (ROOT / "examples" / "quickstart.yaml").read_text()


def test_the_page_is_served_with_a_strict_policy(room):
    answer = requests.get(room.url + "/", timeout=30)
    assert answer.status_code == 200 and "<title>adobot control room</title>" in answer.text
    assert answer.headers["Content-Security-Policy"].startswith("default-src 'self'")
    assert "frame-ancestors 'none'" in answer.headers["Content-Security-Policy"]
    for asset in ("app.js", "style.css"):
        assert requests.get(f"{room.url}/static/{asset}", timeout=30).status_code == 200


def test_the_catalogue_is_every_manifest_grouped(standard):
    from adobot.actions import registry

    groups = standard.get("/api/v1/actions").json()["groups"]
    names = [action["name"] for group in groups for action in group["actions"]]
    assert sorted(names) == sorted(registry.names())
    assert all(action["group"] == group["name"] for group in groups for action in group["actions"])


def test_runners_may_not_use_the_page_routes(runner):
    for answer in (runner.get("/api/v1/actions"),
                   runner.post("/api/v1/bots/check", json={"bot": QUICKSTART})):
        assert answer.status_code == 403 and "runner" in answer.json()["error"]["message"]


def test_check_lists_every_finding_with_line_and_step(standard):
    broken = "name: b\nsteps:\n  - action: ListRepoz\n  - action: Connect\n    inputs: {}\n"
    checked = standard.post("/api/v1/bots/check", json={"bot": broken}).json()
    assert checked["valid"] is False and checked["errors"] == 2
    first = checked["findings"][0]
    assert first["line"] == 3 and first["step"] == "1" and "ListRepoz" in first["message"]


@pytest.mark.parametrize("body, field", [
    ({"bot": ""}, "bot"),
    ({"bot": "x" * (MAX_BOT_BYTES + 1)}, "bot"),
    ({"bot": "name: b", "file_name": "../etc/passwd.yaml"}, "file_name"),
    ({"bot": "name: b", "variables": {"pat": 1}}, "variables.pat"),
])
def test_bad_bodies_are_refused_naming_the_field(standard, body, field):
    answer = standard.post("/api/v1/bots/check", json=body)
    assert answer.status_code == 422 and answer.json()["error"]["field"] == field


def test_a_run_goes_to_a_sandbox_of_its_own_and_masks_its_variables(standard):
    result = standard.post("/api/v1/bots/run", json={
        "bot": QUICKSTART, "variables": {"pat": DEMO_PAT}}).json()
    assert result["status"] == "succeeded" and len(result["steps"]) == 8
    assert DEMO_PAT not in json.dumps(result)
    again = standard.post("/api/v1/bots/run", json={
        "bot": QUICKSTART, "variables": {"pat": DEMO_PAT}}).json()
    assert again["status"] == "succeeded"  # a fresh sandbox: nothing left from the first run


def test_a_bot_tried_on_the_page_reaches_no_connection_vault_or_file(standard, admin,
                                                                      organizations):
    admin.post("/api/v1/connections", json={"name": "contoso-main", "pat": CANARY,
                                            "organization": organizations.org_url(),
                                            "project": "Payments"})
    by_connection = "name: b\nsteps:\n  - action: Connect\n    inputs: {connection: contoso-main}\n"
    result = standard.post("/api/v1/bots/run", json={"bot": by_connection}).json()
    assert result["status"] == "failed" and "connections' secrets never go" in \
        result["error"]["message"]
    by_vault = ("name: b\nsteps:\n  - action: Connect\n    inputs:\n"
                "      organization_url: https://dev.azure.com/contoso\n      project: Payments\n"
                "      personal_access_token: {credential: {locker: ado, name: ci, attribute: pat}}\n")
    result = standard.post("/api/v1/bots/run", json={"bot": by_vault}).json()
    assert result["status"] == "failed" and result["error"]["code"] == "INVALID_INPUT"
    assert "has no vault" in result["error"]["message"]
    # sign-ins the sandbox does not answer are refused before anything is tried: no server
    # file is read (a token file), no metadata address or sign-in host is asked
    for method, more in (("workload_identity", "      tenant_id: 72f988bf-86f1-41af-91ab-"
                                                "2d7cd011db47\n      client_id: 0b5b2d5c-6a21-"
                                                "4f3f-8bbb-111122223333\n      token_file: "
                                                "/etc/hostname\n"),
                         ("managed_identity", "")):
        bot = ("name: b\nsteps:\n  - action: Connect\n    inputs:\n"
               "      organization_url: https://dev.azure.com/contoso\n      project: Payments\n"
               f"      authentication_method: {method}\n{more}")
        result = standard.post("/api/v1/bots/run", json={"bot": bot}).json()
        assert result["error"]["code"] == "INVALID_INPUT", result
        assert f"{method} is not available to this run" in result["error"]["message"]
        assert "/etc/" not in json.dumps(result) and "/tmp" not in json.dumps(result)
    reading = ("name: b\nsteps:\n  - action: ReadCsv\n    inputs: {path: /etc/passwd}\n")
    result = standard.post("/api/v1/bots/run", json={"bot": reading}).json()
    assert result["status"] == "failed" and result["error"]["code"] == "INVALID_INPUT"
    assert CANARY not in json.dumps(result)
