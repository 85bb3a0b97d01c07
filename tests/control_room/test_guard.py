"""Issue #31's findings, each written as the attack over real HTTP on loopback: no body is read
before the token is checked, bodies are held to their route's size, every refusal is the one
envelope, nothing a request sends comes back echoed, names are checked before they are audited,
and a connection's saved secret never goes to a new organization."""
from __future__ import annotations

import socket
from urllib.parse import urlsplit

import pytest
import requests

from tests.conftest import DEMO_PAT, Listener
from tests.control_room.conftest import CANARY, Caller

BIG = 20 * 1024 * 1024


def raw(url: str, head: str, body: bytes = b"", timeout: float = 10) -> tuple[int, dict, bytes]:
    """Send ``head`` (and ``body``, if any) on a socket of its own; the answer's status, headers
    and body. Raises socket.timeout if the server waits for more than was sent."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as conn:
        conn.sendall(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
        header_text, _, rest = data.partition(b"\r\n\r\n")
        lines = header_text.decode("latin-1").split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        length = int(headers.get("content-length", "0"))
        while len(rest) < length:
            chunk = conn.recv(65536)
            if not chunk:
                break
            rest += chunk
    return int(lines[0].split()[1]), headers, rest


def test_a_request_without_a_token_gets_its_401_before_any_body_byte(room):
    status, headers, body = raw(room.url, f"POST /api/v1/connections HTTP/1.1\nHost: x\n"
                                          f"Content-Type: application/json\n"
                                          f"Content-Length: {BIG}\n")
    assert status == 401 and headers["www-authenticate"] == "Bearer"
    assert b'"code":"AUTH_FAILED"' in body.replace(b" ", b"")


def test_a_body_over_its_routes_limit_is_413_before_it_is_read(room, admin):
    status, _, body = raw(room.url, f"POST /api/v1/connections HTTP/1.1\nHost: x\n"
                                    f"Authorization: Bearer {admin.token}\n"
                                    f"Content-Type: application/json\nContent-Length: {BIG}\n")
    assert status == 413 and b"16 KiB" in body
    # a route that takes no body takes none
    status, _, _ = raw(room.url, f"GET /api/v1/connections HTTP/1.1\nHost: x\n"
                                 f"Authorization: Bearer {admin.token}\nContent-Length: 10\n",
                       b"0123456789")
    assert status == 413


def test_a_chunked_body_is_read_no_further_than_the_limit(room, admin):
    chunk = b"x" * 8192
    stream = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(3))  # 24 KiB, no end
    status, _, _ = raw(room.url, f"POST /api/v1/connections HTTP/1.1\nHost: x\n"
                                 f"Authorization: Bearer {admin.token}\n"
                                 f"Content-Type: application/json\n"
                                 f"Transfer-Encoding: chunked\n", stream)
    assert status == 413
    small = b'{"name": "x"}'
    status, _, body = raw(room.url, f"POST /api/v1/connections HTTP/1.1\nHost: x\n"
                                    f"Authorization: Bearer {admin.token}\n"
                                    f"Content-Type: application/json\n"
                                    f"Transfer-Encoding: chunked\n",
                          b"%x\r\n%s\r\n0\r\n\r\n" % (len(small), small))
    assert status == 422 and b"organization" in body  # read whole, then checked as JSON


@pytest.mark.parametrize("body", ["{not json", "[{}, {}, {}]", '"text"', "17"])
def test_a_body_that_is_not_a_json_object_is_400_in_the_envelope(admin, body):
    answer = admin.post("/api/v1/connections", data=body,
                        headers={"Content-Type": "application/json"})
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "INVALID_INPUT"
    assert answer.json()["error"]["field"] is None


def test_every_refusal_is_the_one_envelope(room, admin):
    for answer in (admin.get("/api/v1/no-such-route"), admin.delete("/api/v1/me"),
                   requests.get(room.url + "/api/v1/no-such-route", timeout=30)):
        assert set(answer.json()) == {"error"}, answer.text
        assert set(answer.json()["error"]) == {"code", "message", "hint", "field"}
    assert admin.get("/api/v1/no-such-route").status_code == 404
    assert admin.delete("/api/v1/me").status_code == 405


def test_the_page_has_its_security_headers_by_either_address(room):
    for path in ("/", "/static/index.html", "/static/app.js"):
        answer = requests.get(room.url + path, timeout=30)
        assert answer.status_code == 200
        assert "frame-ancestors 'none'" in answer.headers["Content-Security-Policy"], path
        assert answer.headers["X-Content-Type-Options"] == "nosniff", path


@pytest.mark.parametrize("form", [
    {"organization": "contoso", "pat": "", CANARY: "x"},                  # a value as a name
    {"organization": "contoso", "pat": "sandbox-demo-pat", CANARY: CANARY},
    {CANARY: "organization"},                                            # swapped
])
def test_the_registration_never_echoes_what_it_was_sent(admin, form):
    answer = admin.post("/api/v1/azuredevops/auth/pat", data=form)
    assert answer.status_code in (400, 422) and CANARY not in answer.text
    audit = admin.get("/api/v1/audit").text
    assert CANARY not in audit


def test_a_registration_of_another_type_does_not_echo_its_type(admin):
    answer = admin.post("/api/v1/azuredevops/auth/pat", data=b"{}",
                        headers={"Content-Type": f"text/{CANARY}"})
    assert answer.status_code == 415 and CANARY not in answer.text


@pytest.mark.parametrize("name", ["x\x1b[2J\nalice  administrator  ok", "a" * 300, "../etc"])
def test_a_name_is_checked_before_it_is_audited(admin, runner, state, name):
    before = len(state.audit.read(1000))
    for answer in (runner.post(f"/api/v1/connections/{requests.utils.quote(name, safe='')}"
                               "/credential", json={}),
                   admin.delete(f"/api/v1/connections/{requests.utils.quote(name, safe='')}"),
                   admin.delete("/api/v1/connections", params={"name": [name]})):
        assert answer.status_code in (404, 422), answer.text  # 404: no route has that path
        if answer.status_code == 422:
            assert answer.json()["error"]["field"] == "name", answer.text
    assert len(state.audit.read(1000)) == before


def test_changing_the_organization_needs_a_new_secret(admin, organizations, state):
    """The saved secret is never sent to a new organization: a listener stands in for it."""
    admin.post("/api/v1/connections", json={"name": "contoso-main", "pat": CANARY,
                                             "organization": organizations.org_url()})
    elsewhere = Listener()
    try:
        moved = admin.patch("/api/v1/connections/contoso-main",
                            json={"organization": f"http://127.0.0.1:{elsewhere.port}/org1"})
        assert moved.status_code == 422 and moved.json()["error"]["field"] == "pat"
        assert "new secret" in moved.json()["error"]["message"]
        assert elsewhere.connections == 0 and not elsewhere.received
    finally:
        elsewhere.close()
    assert state.connections.get("contoso-main").organization_url == organizations.org_url()
    moved = admin.patch("/api/v1/connections/contoso-main",
                        json={"organization": organizations.org_url("org1"), "pat": DEMO_PAT})
    assert moved.status_code == 200, moved.text
    assert state.connections.credential("contoso-main").secret.reveal() == DEMO_PAT


def test_the_audit_records_who_connected_unless_a_trusted_proxy_says_otherwise(state,
                                                                               organizations):
    """X-Forwarded-For is believed only from a proxy the operator names: by default uvicorn
    would take it from any local process, and the audit would record a forged client."""
    from adobot.control_room.server import ControlRoom
    from tests.control_room.conftest import Caller, issue

    forged = {"X-Forwarded-For": "203.0.113.9"}
    with ControlRoom(state) as room:
        admin = Caller(room.url, issue(state, "administrator", "alice"))
        admin.post("/api/v1/connections/no-such/test", headers=forged)
    with ControlRoom(state, trusted_proxies=["127.0.0.1"]) as proxied:
        admin = Caller(proxied.url, admin.token)
        admin.post("/api/v1/connections/no-such/test", headers=forged)
    first, second = state.audit.read(2)
    assert first["client"] == "127.0.0.1" and second["client"] == "203.0.113.9"


def test_failed_sign_ins_are_limited_per_source_and_audited_once_a_window(room, state, admin):
    """Guessing tokens from one address: after 20 failures in a minute every request from it
    is 429 with Retry-After, before its token is even looked up, and the audit holds two rows
    for the whole flood, not one a request."""
    from adobot.control_room.guard import FAILURES

    guessing = Caller(room.url, "adobot_not-a-token")
    before = len(state.audit.read(1000))
    answers = [guessing.get("/api/v1/me") for _ in range(FAILURES + 5)]
    assert [a.status_code for a in answers] == [401] * FAILURES + [429] * 5
    retry_after = int(answers[-1].headers["Retry-After"])
    assert 0 < retry_after <= 60 and answers[-1].json()["error"]["code"] == "THROTTLED"
    # the address is held back whatever it sends, a good token included
    assert admin.get("/api/v1/me").status_code == 429
    rows = state.audit.read(1000)[before:]
    assert [(r["event"], r["client"]) for r in rows] == [("auth.refused", "127.0.0.1"),
                                                        ("auth.throttled", "127.0.0.1")]
    assert "adobot_not-a-token" not in str(rows)


def test_repeated_refused_fetches_are_one_row_a_window(admin, runner, state, organizations):
    """200 refused credential fetches by one token from one address: the first is a row at
    once, the other 199 are counted in one row when the window ends (or the room stops)."""
    from adobot.control_room.audit import WINDOW_SECONDS

    admin.post("/api/v1/connections", json={"name": "contoso-main", "pat": DEMO_PAT,
                                             "organization": organizations.org_url()})
    admin.patch("/api/v1/connections/contoso-main", json={"runners": ["build-02"]})
    now = [0.0]
    state.audit.clock = lambda: now[0]
    before = len(state.audit.read(1000))
    for _ in range(200):
        assert runner.post("/api/v1/connections/contoso-main/credential",
                           json={}).status_code == 403
    assert runner.post("/api/v1/connections/nosuch/credential", json={}).status_code == 404
    rows = state.audit.read(1000)[before:]
    assert [(r["event"], r["outcome"]) for r in rows] == [
        ("credential.fetch", "refused: PERMISSION_DENIED"),
        ("credential.fetch", "refused: CREDENTIAL_NOT_FOUND")]  # another refusal: its own row
    now[0] += WINDOW_SECONDS
    runner.post("/api/v1/connections/contoso-main/credential", json={})
    counted, first = state.audit.read(1000)[before + 2:]
    assert counted["detail"].startswith(f"refused 199 more time(s) within {WINDOW_SECONDS:g} s")
    assert counted["connection"] == "contoso-main" and counted["actor"] == "build-01"
    assert first["outcome"] == "refused: PERMISSION_DENIED" and "limited to build-02" in \
        first["detail"]
    runner.post("/api/v1/connections/contoso-main/credential", json={})
    state.audit.flush()  # what the control room does when it stops
    last = state.audit.read(1)[0]
    assert last["detail"].startswith("refused 1 more time(s)")
    assert state.audit.verify().whole


def test_every_route_that_takes_a_body_documents_400(room):
    """A body that is not JSON (or not a form) is 400 on every route that takes one: the
    document says so for each (schemathesis found the ones it did not)."""
    document = Caller(room.url, None).get("/api/v1/openapi.json").json()
    missing = [f"{method.upper()} {path}" for path, operations in document["paths"].items()
               for method, operation in operations.items()
               if "requestBody" in operation and "400" not in operation["responses"]]
    assert missing == []
