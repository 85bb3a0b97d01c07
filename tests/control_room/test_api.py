"""The control room's HTTP API, over real HTTP: connections, the CI/CD registration route,
roles and tokens, refusals, the OpenAPI document and concurrent admins."""
from __future__ import annotations

import json
import subprocess
import threading

import pytest
import requests

from tests.conftest import DEMO_PAT
from tests.control_room.conftest import CANARY, ORGANIZATIONS, Caller, issue, stored_bytes

REGISTER = "/api/v1/azuredevops/auth/pat"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def new(organizations, name="contoso-main", pat=DEMO_PAT, org="contoso", **more) -> dict:
    return {"name": name, "organization": organizations.org_url(org), "pat": pat, **more}


def error_of(answer: requests.Response) -> dict:
    return answer.json()["error"]


def curl(url: str, token: str, *fields: str) -> tuple[int, dict]:
    """The registration as a CI job sends it: curl with form fields."""
    command = ["curl", "-sS", "-o", "-", "-w", "\n%{http_code}", "-X", "POST", url,
               "-H", f"Authorization: Bearer {token}"]
    for field in fields:
        command += ["--data-urlencode", field]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True)
    body, _, status = done.stdout.rpartition("\n")
    return int(status), json.loads(body)


# --- the registration route ------------------------------------------------------------------

def test_ci_registers_then_rotates_an_organizations_pat_with_curl(room, admin, state,
                                                                  organizations):
    org = organizations.org_url("contoso")
    status, body = curl(room.url + REGISTER, admin.token, f"organization={org}",
                        f"pat={DEMO_PAT}")
    assert status == 201 and body["created"] is True
    connection = body["connection"]
    assert connection["name"] == "contoso" and connection["organization_url"] == org
    assert connection["status"]["state"] == "connected"
    assert connection["status"]["user"] == "Sandbox Demo User"
    assert "secret" not in connection and DEMO_PAT not in json.dumps(body)

    status, body = curl(room.url + REGISTER, admin.token, f"organization={org}",
                        "pat=sandbox-code-read-pat")
    assert status == 200 and body["created"] is False
    assert body["connection"]["status"]["user"] == "Code Reader"
    assert state.connections.credential("contoso").secret.reveal() == "sandbox-code-read-pat"


@pytest.mark.parametrize("pat, code, said", [
    ("not-a-real-token", "AUTH_FAILED", "not accepted"),
    ("sandbox-expired-pat", "AUTH_FAILED", "expired"),
    ("sandbox-work-only-pat", "PERMISSION_DENIED", "the token lacks Code (Read)"),
])
def test_a_pat_that_fails_its_test_is_not_saved(room, admin, state, organizations, pat, code,
                                                said):
    answer = admin.post(REGISTER, data={"organization": organizations.org_url(), "pat": pat})
    assert answer.status_code == 422
    assert error_of(answer)["code"] == code and said in error_of(answer)["message"]
    assert pat not in answer.text
    assert state.connections.list() == []


def test_a_rotation_that_fails_keeps_the_old_pat(admin, state, organizations):
    org = organizations.org_url()
    assert admin.post(REGISTER, data={"organization": org, "pat": DEMO_PAT}).status_code == 201
    answer = admin.post(REGISTER, data={"organization": org, "pat": "sandbox-expired-pat"})
    assert answer.status_code == 422
    assert state.connections.credential("contoso").secret.reveal() == DEMO_PAT


def test_an_organization_that_does_not_exist_is_named(admin, organizations):
    answer = admin.post(REGISTER, data={"organization": organizations.org_url("nosuch"),
                                        "pat": DEMO_PAT})
    assert answer.status_code == 422 and error_of(answer)["code"] == "NOT_FOUND"
    assert "organization 'nosuch'" in error_of(answer)["message"]
    assert "does not exist" in error_of(answer)["message"]


@pytest.mark.parametrize("body, headers, status, field", [
    ("pat=x", FORM, 422, "organization"),
    ("organization=contoso", FORM, 422, "pat"),
    ("organization=contoso&pat=", FORM, 422, "pat"),
    ("organization=a&organization=b&pat=x", FORM, 400, "organization"),
    ("organization=contoso&pat=x&owner=me", FORM, 422, "form"),  # the name is not repeated
    (b"organization=\xff&pat=x", FORM, 400, None),
    ('{"organization": "contoso", "pat": "x"}', {"Content-Type": "application/json"}, 415,
     "Content-Type"),
    ("organization=-bad-&pat=x", FORM, 422, "organization"),
])
def test_malformed_forms_name_the_field(admin, state, body, headers, status, field):
    answer = admin.post(REGISTER, data=body, headers=headers)
    assert answer.status_code == status, answer.text
    assert error_of(answer)["field"] == field
    assert error_of(answer)["hint"]
    assert state.connections.list() == []


def test_spaces_in_a_pasted_pat_are_refused_not_stored(admin, vault, organizations):
    answer = admin.post(REGISTER, data={"organization": organizations.org_url(),
                                        "pat": "two words"})
    assert answer.status_code == 422 and error_of(answer)["field"] == "pat"
    assert "two words" not in answer.text


# --- tokens and roles ------------------------------------------------------------------------

@pytest.mark.parametrize("who, status, said", [
    (None, 401, "no API token"),
    ("adobot_not-a-token", 401, "not known"),
])
def test_requests_without_a_valid_token_get_401(room, who, status, said):
    answer = Caller(room.url, who).get("/api/v1/connections")
    assert answer.status_code == status and said in error_of(answer)["message"]
    assert answer.headers["WWW-Authenticate"] == "Bearer"


def test_expired_and_revoked_tokens_get_401(room, state):
    expired = Caller(room.url, issue(state, "administrator", "old", days=30,
                                     issued_days_ago=31))
    answer = expired.get("/api/v1/connections")
    assert answer.status_code == 401 and "expired" in error_of(answer)["message"]
    revoked = Caller(room.url, issue(state, "administrator", "carol"))
    assert revoked.get("/api/v1/connections").status_code == 200
    state.tokens.revoke("carol")
    answer = revoked.get("/api/v1/connections")
    assert answer.status_code == 401 and "revoked" in error_of(answer)["message"]


def test_tokens_are_stored_as_hashes_only(room, vault, state, admin):
    import hashlib

    stored = stored_bytes(state)
    assert hashlib.sha256(admin.token.encode()).hexdigest().encode() in stored
    assert admin.token.encode() not in stored
    assert state.tokens.list()[0].name == "alice"


def test_standard_users_list_connections_but_change_nothing(admin, standard, organizations,
                                                            state):
    assert admin.post("/api/v1/connections", json=new(organizations)).status_code == 201
    listed = standard.get("/api/v1/connections")
    assert listed.status_code == 200 and listed.json()["count"] == 1
    assert DEMO_PAT not in listed.text and "secret" not in listed.json()["connections"][0]
    refusals = [
        standard.post("/api/v1/connections", json=new(organizations, name="other")),
        standard.patch("/api/v1/connections/contoso-main", json={"project": "Payments"}),
        standard.post("/api/v1/connections/contoso-main/test"),
        standard.delete("/api/v1/connections/contoso-main"),
        standard.post(REGISTER, data={"organization": "contoso", "pat": DEMO_PAT}),
        standard.get("/api/v1/audit"),
        standard.post("/api/v1/connections/contoso-main/credential", json={}),
    ]
    for answer in refusals:
        assert answer.status_code == 403, answer.text
        assert error_of(answer)["code"] == "PERMISSION_DENIED"
    assert "standard users never receive a secret" in error_of(refusals[-1])["message"]
    assert len(state.connections.list()) == 1


# --- the JSON API ----------------------------------------------------------------------------

def test_create_get_edit_test_and_delete_a_connection(admin, organizations, state):
    created = admin.post("/api/v1/connections", json=new(organizations, project="Payments"))
    assert created.status_code == 201, created.text
    assert created.json()["project"] == "Payments"
    assert created.json()["status"]["state"] == "connected"
    got = admin.get("/api/v1/connections/contoso-main")
    assert got.status_code == 200 and got.json()["organization"] == organizations.org_url()

    edited = admin.patch("/api/v1/connections/contoso-main",
                         json={"pat": "sandbox-code-read-pat", "runners": ["build-01"]})
    assert edited.status_code == 200 and edited.json()["status"]["user"] == "Code Reader"
    assert edited.json()["runners"] == ["build-01"] and edited.json()["project"] == "Payments"
    credential = state.connections.credential("contoso-main")
    assert credential.secret.reveal() == "sandbox-code-read-pat"

    no_project = admin.patch("/api/v1/connections/contoso-main", json={"project": ""})
    assert no_project.status_code == 200 and no_project.json()["project"] is None

    tested = admin.post("/api/v1/connections/contoso-main/test")
    assert tested.status_code == 200 and tested.json()["status"]["state"] == "connected"
    assert tested.json()["status"]["checked_at"]

    assert admin.delete("/api/v1/connections/contoso-main").status_code == 204
    assert admin.get("/api/v1/connections/contoso-main").status_code == 404


def test_an_edit_that_fails_its_test_changes_nothing(admin, organizations, state):
    admin.post("/api/v1/connections", json=new(organizations))
    before = state.connections.get("contoso-main")
    for change, code in (({"project": "NoSuchProject"}, "NOT_FOUND"),
                         ({"pat": "sandbox-expired-pat"}, "AUTH_FAILED"),
                         ({"organization": organizations.org_url("nosuch"), "pat": DEMO_PAT},
                          "NOT_FOUND")):
        answer = admin.patch("/api/v1/connections/contoso-main", json=change)
        assert answer.status_code == 422 and error_of(answer)["code"] == code, answer.text
    assert state.connections.get("contoso-main") == before
    assert state.connections.credential("contoso-main").secret.reveal() == DEMO_PAT


def test_moving_a_connection_to_another_organization_reseals_its_secret(admin, organizations,
                                                                        state):
    admin.post("/api/v1/connections", json=new(organizations))
    moved = admin.patch("/api/v1/connections/contoso-main",
                        json={"organization": organizations.org_url("org1"), "pat": DEMO_PAT})
    assert moved.status_code == 200 and moved.json()["organization_url"].endswith("/org1")
    credential = state.connections.credential("contoso-main")
    assert credential.organization_url == organizations.org_url("org1")
    assert credential.secret.reveal() == DEMO_PAT


def test_a_test_that_fails_records_why(admin, organizations, state):
    admin.post("/api/v1/connections", json=new(organizations))
    organizations.state.tokens.pop(DEMO_PAT)  # the token is revoked in the organization
    tested = admin.post("/api/v1/connections/contoso-main/test")
    assert tested.status_code == 200
    status = tested.json()["status"]
    assert status["state"] == "failed" and status["code"] == "AUTH_FAILED"
    assert admin.get("/api/v1/connections").json()["connections"][0]["status"] == status


def test_names_and_organizations_are_unique_in_the_words_of_the_issue(admin, organizations):
    assert admin.post("/api/v1/connections", json=new(organizations)).status_code == 201
    same_name = admin.post("/api/v1/connections", json=new(organizations, org="org1"))
    assert same_name.status_code == 409
    assert "A connection with this name already exists" in error_of(same_name)["message"]
    same_org = admin.post("/api/v1/connections", json=new(organizations, name="second"))
    assert same_org.status_code == 409
    assert "A connection for this organization already exists" in error_of(same_org)["message"]
    # the same organization in other letters, and by a moved connection
    upper = organizations.org_url("CONTOSO")
    assert admin.post("/api/v1/connections", json={**new(organizations, name="third"),
                                                   "organization": upper}).status_code == 409
    admin.post("/api/v1/connections", json=new(organizations, name="fourth", org="org2"))
    moved = admin.patch("/api/v1/connections/fourth",
                        json={"organization": organizations.org_url()})
    assert moved.status_code == 409 and error_of(moved)["field"] == "organization"


@pytest.mark.parametrize("change, status, field", [
    ({"name": "1st"}, 422, "name"),
    ({"name": "ab"}, 422, "name"),
    ({"name": "a" * 33}, 422, "name"),
    ({"name": "has space"}, 422, "name"),
    ({"organization": "ends-with-"}, 422, "organization"),
    ({"organization": "a" * 51}, 422, "organization"),
    ({"organization": "ftp://example.com/x"}, 422, "organization"),
    ({"pat": None}, 422, "pat"),
    ({"pat": 12345}, 422, "pat"),
    ({"roles": ["standard"]}, 422, "roles.0"),
    ({"runners": ["bad name"]}, 422, "runners"),
    ({"colour": "blue"}, 422, "colour"),
])
def test_invalid_connections_are_refused_naming_the_field(admin, organizations, state, change,
                                                          status, field):
    answer = admin.post("/api/v1/connections", json={**new(organizations), **change})
    assert answer.status_code == status, answer.text
    assert error_of(answer)["field"] == field
    assert "12345" not in answer.text  # a value is never echoed: it may be a token
    assert state.connections.list() == []


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b""])
def test_malformed_json_is_400(admin, body):
    answer = admin.post("/api/v1/connections", data=body,
                        headers={"Content-Type": "application/json"})
    assert answer.status_code in (400, 422), answer.text
    assert answer.status_code == 400 or error_of(answer)["field"]
    assert error_of(answer)["code"] == "INVALID_INPUT"


def test_deleting_several_is_all_or_none(admin, organizations, state):
    for number in range(3):
        admin.post("/api/v1/connections", json=new(organizations, name=f"conn-{number}",
                                                   org=f"org{number}"))
    missing = admin.delete("/api/v1/connections",
                           params={"name": ["conn-0", "conn-1", "nosuch"]})
    assert missing.status_code == 404 and "'nosuch'" in error_of(missing)["message"]
    assert len(state.connections.list()) == 3
    removed = admin.delete("/api/v1/connections", params={"name": ["conn-0", "conn-1"]})
    assert removed.status_code == 200 and removed.json()["removed"] == ["conn-0", "conn-1"]
    assert [c.name for c in state.connections.list()] == ["conn-2"]


def test_the_openapi_document_describes_every_route(room):
    document = requests.get(room.url + "/api/v1/openapi.json", timeout=30).json()
    paths = document["paths"]
    assert "application/x-www-form-urlencoded" in \
        paths[REGISTER]["post"]["requestBody"]["content"]
    for path, method in (("/api/v1/connections", "get"), ("/api/v1/connections", "post"),
                         ("/api/v1/connections/{name}", "patch"),
                         ("/api/v1/connections/{name}", "delete"),
                         ("/api/v1/connections/{name}/test", "post"),
                         ("/api/v1/connections/{name}/credential", "post"),
                         ("/api/v1/audit", "get")):
        assert method in paths[path]
    assert "HTTPBearer" in document["components"]["securitySchemes"]
    pat = document["components"]["schemas"]["NewConnection"]["properties"]["pat"]
    assert pat["anyOf"][0]["writeOnly"] is True
    # every answer is described: each success by its model, each error by the envelope
    envelope = "#/components/schemas/ErrorBody"
    for path, operations in paths.items():
        for method, operation in operations.items():
            answers = operation["responses"]
            assert "401" in answers, (method, path)
            for status, answer in answers.items():
                if status.startswith(("4", "5")):
                    assert answer["content"]["application/json"]["schema"]["$ref"] == \
                        envelope, (method, path, status)
                elif status != "204":
                    assert answer["content"]["application/json"]["schema"], (method, path)
    assert set(paths["/api/v1/connections"]["post"]["responses"]) == \
        {"201", "400", "401", "403", "409", "413", "422", "429", "500", "502"}
    assert set(paths["/api/v1/me"]["get"]["responses"]) == {"200", "401", "413", "429"}
    name = next(p for p in paths["/api/v1/connections/{name}"]["get"]["parameters"]
                if p["name"] == "name")
    assert name["schema"]["pattern"] and name["schema"]["maxLength"] == 32
    fetch = paths["/api/v1/connections/{name}/credential"]["post"]["responses"]["200"]
    assert fetch["content"]["application/json"]["schema"]["$ref"].endswith("/CredentialAnswer")
    assert "HTTPValidationError" not in document["components"]["schemas"]


# --- concurrency -----------------------------------------------------------------------------

def twenty_admins_register(room, state, organization, pat,
                           round_: str = "a") -> list[requests.Response]:
    """Twenty admins, each with a token of their own, post a registration at the same moment:
    ``organization(n)`` and ``pat(n)`` say what admin n registers."""
    callers = [Caller(room.url, issue(state, "administrator", f"admin-{round_}-{n}"))
               for n in range(ORGANIZATIONS)]
    answers: list = [None] * ORGANIZATIONS
    start = threading.Barrier(ORGANIZATIONS)

    def register(number: int) -> None:
        start.wait()
        answers[number] = callers[number].post(REGISTER, data={
            "organization": organization(number), "pat": pat(number)})

    threads = [threading.Thread(target=register, args=(n,)) for n in range(ORGANIZATIONS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return answers


def test_twenty_admins_registering_at_once_lose_nothing(room, state, organizations):
    answers = twenty_admins_register(room, state, lambda n: organizations.org_url(f"org{n}"),
                                     lambda n: DEMO_PAT)
    assert [answer.status_code for answer in answers] == [201] * ORGANIZATIONS
    saved = {c.name: c for c in state.connections.list()}
    assert sorted(saved) == sorted(f"org{n}" for n in range(ORGANIZATIONS))
    for name in saved:
        assert state.connections.credential(name).secret.reveal() == DEMO_PAT


def test_registrations_of_one_organization_at_once_make_one_connection(room, state,
                                                                       organizations):
    answers = twenty_admins_register(room, state, lambda n: organizations.org_url("org5"),
                                     lambda n: DEMO_PAT)
    assert sorted(answer.status_code for answer in answers) == [200] * 19 + [201], \
        [(a.status_code, a.text[:400]) for a in answers if a.status_code not in (200, 201)]
    assert [c.name for c in state.connections.list()] == ["org5"]
    # then twenty rotations at once, with three different PATs: one of them wins, whole
    tokens = [DEMO_PAT, "sandbox-code-read-pat", CANARY]
    answers = twenty_admins_register(room, state, lambda n: organizations.org_url("org5"),
                                     lambda n: tokens[n % 3], round_="b")
    assert [answer.status_code for answer in answers] == [200] * ORGANIZATIONS, \
        [(a.status_code, a.text[:400]) for a in answers if a.status_code != 200]
    users = dict(zip(tokens, ["Sandbox Demo User", "Code Reader", "Canary Admin"]))
    winner = state.connections.credential("org5").secret.reveal()
    assert state.connections.get("org5").status.user == users[winner]  # saved together
    assert [c.name for c in state.connections.list()] == ["org5"]


def test_a_connection_status_speaks_the_words_admins_know(admin, organizations):
    """"Connected as …" after a passing test; "Invalid or expired token" once the organization
    no longer takes the token (revoked meanwhile)."""
    org = organizations.org_url()
    added = admin.post(REGISTER, data={"organization": org, "pat": DEMO_PAT}).json()
    assert added["connection"]["status"]["headline"] == "Connected as Sandbox Demo User"
    with organizations.state.lock:
        revoked = organizations.state.tokens.pop(DEMO_PAT)
    try:
        tested = admin.post("/api/v1/connections/contoso/test").json()
    finally:
        with organizations.state.lock:
            organizations.state.tokens[DEMO_PAT] = revoked
    assert (tested["status"]["state"], tested["status"]["code"]) == ("failed", "AUTH_FAILED")
    assert tested["status"]["headline"] == "Invalid or expired token"
