"""With --sandbox, no sign-in leaves the machine: a sandbox whose seed names no Entra identity
signs a service principal in nowhere (before, a control room started with --sandbox sent the
app's secret to Microsoft's Entra). A guard fails the test on any name lookup or connection to
a host that is not this machine."""
from __future__ import annotations

import socket

import pytest

from adobot.control_room.check import connection_check
from adobot.control_room.state import open_state
from adobot.credentials.secret import Secret
from adobot.credentials.vault import Vault
from adobot.errors import AuthFailed
from adobot.runtime.environment import Settings, build_environment
from adobot.runtime.loader import parse_bot
from adobot.runtime.runner import Runner
from adobot.sandbox import Sandbox

LOOPBACK = {"127.0.0.1", "::1", "localhost"}
APP_SECRET = "app-secret-canary-5e0d"


@pytest.fixture
def loopback_only(monkeypatch):
    """Every lookup and connection to another host is recorded and refused."""
    tried: list[str] = []
    lookup, connect = socket.getaddrinfo, socket.socket.connect

    def guarded_lookup(host, *args, **kwargs):
        if str(host) not in LOOPBACK:
            tried.append(str(host))
            raise OSError(f"the test refuses {host}: only this machine")
        return lookup(host, *args, **kwargs)

    def guarded_connect(self, address):
        if isinstance(address, tuple) and str(address[0]) not in LOOPBACK:
            tried.append(str(address[0]))
            raise OSError(f"the test refuses {address[0]}: only this machine")
        return connect(self, address)
    monkeypatch.setattr(socket, "getaddrinfo", guarded_lookup)
    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    return tried


def test_a_sandboxed_control_room_signs_an_app_in_nowhere(tmp_path, loopback_only):
    with Sandbox() as sandbox:  # the default seed: no Entra identity
        entra = sandbox.entra_route()
        with open_state(Vault(tmp_path / "v.json"), check=connection_check(
                sandbox.route, entra), entra=entra) as state:
            with pytest.raises(AuthFailed) as refused:
                state.connections.add("release-app", "contoso", Secret(APP_SECRET),
                                      authentication_method="service_principal",
                                      tenant_id="11111111-2222-3333-4444-555555555555",
                                      client_id="sp-secret", project="Payments")
    assert "signs in nowhere else" in refused.value.message
    assert APP_SECRET not in refused.value.message + refused.value.hint
    assert loopback_only == []


def test_a_sandboxed_bot_signs_in_nowhere_but_the_sandbox(loopback_only):
    bot = parse_bot(
        "name: app\nsteps:\n  - action: Connect\n    inputs: {organization_url: "
        "'https://dev.azure.com/contoso', project: Payments, authentication_method: "
        "service_principal, tenant_id: 11111111-2222-3333-4444-555555555555, client_id: "
        "sp-secret, client_secret: {variable: app_secret}}\n")
    with Sandbox() as sandbox:
        result = Runner(build_environment(Settings(sandbox=sandbox))).run(
            bot, {"app_secret": APP_SECRET})
    assert result.error["code"] == "AUTH_FAILED", result.error
    assert "signs in nowhere else" in result.error["message"]
    assert loopback_only == []
