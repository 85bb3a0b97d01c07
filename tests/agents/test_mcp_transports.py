"""`adobot mcp` as assistants run it: a subprocess over stdio, and streamable HTTP behind a
bearer token, each with the mcp SDK's own client against the embedded sandbox; and review
mode's confirmation by elicitation, in both eras of the protocol."""
from __future__ import annotations

import io
import os
import subprocess
import sys
import tempfile
import time

import anyio
import pytest
import requests

from tests.agents.test_mcp_server import serve
from tests.conftest import DEMO_PAT, free_port

HTTP_TOKEN = "mcp-http-canary-4f1c9e"


def adobot(*args: str) -> list[str]:
    return [sys.executable, "-m", "adobot", *args]


def names(tools) -> set[str]:
    return {tool.name for tool in tools}


def test_over_stdio_a_subprocess_lists_calls_and_confirms_with_the_token_in_no_message():
    from mcp import Client, StdioServerParameters
    from mcp.client.stdio import stdio_client

    params = StdioServerParameters(
        command=sys.executable, args=["-m", "adobot", "mcp", "--sandbox", "--token-env",
                                      "ADOBOT_TEST_PAT"],
        env={**os.environ, "ADOBOT_TEST_PAT": DEMO_PAT})
    errors = io.StringIO()
    said: list[str] = []

    async def main() -> None:
        # The server's stderr goes to a real file (the SDK hands it to the subprocess).
        with tempfile.TemporaryFile("w+") as errlog:
            async with Client(stdio_client(params, errlog=errlog)) as client:
                tools = (await client.list_tools()).tools
                listed = await client.call_tool("ListRepos", {"name_filter": "payments-*"})
                preview = await client.call_tool("CreateRepo", {"name": "from-stdio"})
                done = await client.call_tool("Confirm", {
                    "confirmation": preview.structured_content["confirmation"]})
                after = await client.call_tool("ListRepos", {"name_filter": "from-*"})
                said.extend(r.model_dump_json() for r in (listed, preview, done, after))
                said.append(str([t.model_dump_json() for t in tools]))
                assert "Confirm" in names(tools) and "Connect" not in names(tools)
                assert listed.structured_content["count"] >= 1
                assert preview.structured_content["error"]["code"] == "CONFIRMATION_REQUIRED"
                assert done.structured_content["created"] is True
                assert after.structured_content["count"] == 1
            errlog.seek(0)
            errors.write(errlog.read())

    anyio.run(main)
    assert all(DEMO_PAT not in message for message in said)
    assert DEMO_PAT not in errors.getvalue() and "Traceback" not in errors.getvalue()



@pytest.fixture
def http_server():
    port = free_port()
    process = subprocess.Popen(
        adobot("mcp", "--sandbox", "--mode", "read-only", "--http", "--port", str(port),
               "--http-token-env", "ADOBOT_MCP_HTTP_TOKEN"),
        env={**os.environ, "ADOBOT_MCP_HTTP_TOKEN": HTTP_TOKEN},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}/mcp"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        try:
            requests.get(url, timeout=1)
            break
        except requests.ConnectionError:
            time.sleep(0.1)
    try:
        yield url, process
    finally:
        process.terminate()
        process.communicate(timeout=10)


def test_over_http_a_request_without_the_bearer_token_is_refused(http_server):
    url, _ = http_server
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": HTTP_TOKEN}):
        answer = requests.post(url, json=body, headers=headers, timeout=10)
        assert answer.status_code == 401 and answer.headers["WWW-Authenticate"] == "Bearer"
        assert answer.json()["error"]["code"] == "AUTH_FAILED"
        assert HTTP_TOKEN not in answer.text


def test_over_http_the_sdk_client_with_the_token_lists_and_calls(http_server):
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    url, process = http_server
    found = {}

    async def main() -> None:
        async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {HTTP_TOKEN}"}) as http:
            async with Client(streamable_http_client(url, http_client=http)) as client:
                found["tools"] = (await client.list_tools()).tools
                found["repos"] = await client.call_tool("ListRepos", {})
                found["refused"] = await client.call_tool("CreateRepo", {"name": "nope"})

    anyio.run(main)
    assert "CreateRepo" not in names(found["tools"]) and "Confirm" not in names(found["tools"])
    assert found["repos"].structured_content["count"] >= 1
    assert found["refused"].is_error and "--mode review" in found["refused"].content[0].text
    process.terminate()
    out, err = process.communicate(timeout=10)
    assert HTTP_TOKEN not in out + err and DEMO_PAT not in out + err


def test_over_http_off_loopback_a_bearer_token_is_required():
    done = subprocess.run(adobot("mcp", "--sandbox", "--http", "--host", "0.0.0.0"),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "--http-token-env" in done.stderr
    assert "Traceback" not in done.stderr


def test_over_http_off_loopback_tls_is_required_as_for_the_control_room():
    env = {**os.environ, "ADOBOT_MCP_HTTP_TOKEN": HTTP_TOKEN}
    done = subprocess.run(adobot("mcp", "--sandbox", "--http", "--host", "0.0.0.0",
                                 "--http-token-env", "ADOBOT_MCP_HTTP_TOKEN"),
                          capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 2 and "--certificate and --key" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and HTTP_TOKEN not in done.stderr
    alone = subprocess.run(adobot("mcp", "--sandbox", "--certificate", "c.pem", "--key", "k.pem"),
                           capture_output=True, text=True, timeout=60)
    assert alone.returncode == 2 and "go with --http" in alone.stderr


def test_over_https_the_server_answers_and_stops_with_a_client_still_connected(tmp_path):
    """TLS with --certificate/--key; and SIGTERM stops it while a client keeps its connection
    open (asyncio would wait 30 s for that client's TLS close without a shutdown bound)."""
    from adobot.sandbox.tls import make_certificate

    certificate, key = make_certificate(tmp_path)
    port = free_port()
    process = subprocess.Popen(
        adobot("mcp", "--sandbox", "--mode", "read-only", "--http", "--port", str(port),
               "--http-token-env", "ADOBOT_MCP_HTTP_TOKEN", "--certificate", str(certificate),
               "--key", str(key)), env={**os.environ, "ADOBOT_MCP_HTTP_TOKEN": HTTP_TOKEN},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    with requests.Session() as client:  # its connection stays open until the end
        try:
            answer = None
            for _ in range(300):
                try:
                    answer = client.post(f"https://127.0.0.1:{port}/mcp", timeout=5,
                                         verify=str(certificate), json={})
                    break
                except requests.ConnectionError:
                    time.sleep(0.1)
            assert answer is not None and answer.status_code == 401  # TLS, then the guard
        finally:
            process.terminate()
            _, err = process.communicate(timeout=30)  # a hang fails here
    assert HTTP_TOKEN not in err and "Traceback" not in err


# --- review mode by elicitation -----------------------------------------------------------------

def repositories(sandbox) -> list[str]:
    project = sandbox.state.organizations["contoso"].projects[0]
    return [repo.name for repo in project.repositories]


@pytest.mark.parametrize("era", ["legacy", "2026-07-28"])
@pytest.mark.parametrize("answer", ["accept", "decline"])
def test_review_mode_asks_by_elicitation_and_sends_only_after_a_yes(sandbox, era, answer):
    from mcp import Client, types

    asked: list[str] = []

    async def elicit(context, params):
        asked.append(params.message)
        assert repositories(sandbox).count("elicited") == 0  # nothing sent before the answer
        if answer == "accept":
            return types.ElicitResult(action="accept", content={"confirm": True})
        return types.ElicitResult(action="decline")

    server = serve(sandbox, "review", DEMO_PAT)
    found = []

    async def main() -> None:
        async with Client(server.server(), mode=era, elicitation_callback=elicit) as client:
            found.append(await client.call_tool("CreateRepo", {"name": "elicited"}))

    anyio.run(main)
    result = found[0]
    assert len(asked) == 1 and "CreateRepo" in asked[0] and '"elicited"' in asked[0]
    if answer == "accept":
        assert not result.is_error and result.structured_content["created"] is True
        assert repositories(sandbox).count("elicited") == 1
    else:
        assert result.is_error and result.structured_content["error"]["field"] == "confirm"
        assert repositories(sandbox).count("elicited") == 0
    assert DEMO_PAT not in result.model_dump_json() and DEMO_PAT not in asked[0]
