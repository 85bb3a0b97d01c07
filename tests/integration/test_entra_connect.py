"""Connect without a PAT: service principals (secret, certificate), managed identities and
workload identities through azure-identity's own classes, against the sandbox playing Entra
over real HTTP (TLS for the authority). Tokens are fetched once and renewed before expiry;
refusals name their cause; no secret or token is ever printed."""
from __future__ import annotations

import base64
import json
import logging
import time

import pytest

from adobot.runtime.loader import parse_bot
from adobot.runtime.runner import Runner
from adobot.actions.environment import Environment
from adobot.runtime.validate import validate_file
from adobot.sandbox import Sandbox
from tests.sandbox.test_entra import BUNDLE, SECRET, TENANT, seed

CERT_PASSWORD_CANARY = "cert-password-canary-4711"


def encrypted_bundle(password: str) -> str:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(BUNDLE.encode(), None)
    cert = x509.load_pem_x509_certificate(BUNDLE[BUNDLE.index("-----BEGIN CERTIFICATE"):].encode())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.BestAvailableEncryption(password.encode())).decode() \
        + cert.public_bytes(serialization.Encoding.PEM).decode()


@pytest.fixture
def entra():
    with Sandbox(seed=seed()) as running:
        yield running


def connect_bot(inputs: dict, steps: list | None = None) -> str:
    connect = {"action": "Connect", "inputs": {"organization_url": "https://dev.azure.com/contoso",
                                               "project": "Payments", **inputs}}
    return json.dumps({"name": "entra", "steps": [connect, *(steps or [])]})


def run(sandbox: Sandbox, text: str, **variables):
    runner = Runner(Environment(route=sandbox.route, entra=sandbox.entra_route()))
    return runner.run(parse_bot(text), variables)


SP = {"authentication_method": "service_principal", "tenant_id": TENANT,
      "client_id": "sp-secret", "client_secret": {"variable": "secret"}}
LIST = [{"action": "ListRepos"}] * 5


def test_a_service_principal_connects_and_one_token_serves_the_session(entra):
    result = run(entra, connect_bot(SP, LIST), secret=SECRET)
    assert result.status == "succeeded", result.error
    assert entra.state.entra.issued == 1  # six actions, one token

    from adobot import api

    with api.Context(sandbox=entra, variables={"secret": SECRET}) as ctx:
        connected = ctx.run("Connect", organization_url="https://dev.azure.com/contoso",
                            project="Payments", **SP)
    assert connected["user"] == "Release Bot"  # the service principal's own name


def test_a_service_principal_connects_with_an_encrypted_certificate(entra):
    inputs = {**SP, "client_id": "sp-cert", "client_secret": None,
              "certificate": {"variable": "pem"}, "certificate_password": {"variable": "pw"}}
    inputs.pop("client_secret")
    result = run(entra, connect_bot(inputs, LIST[:1]), pem=encrypted_bundle(CERT_PASSWORD_CANARY),
                 pw=CERT_PASSWORD_CANARY)
    assert result.status == "succeeded", result.error


def test_a_workload_identity_connects_with_its_token_file(entra, tmp_path):
    import base64

    part = lambda data: base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=")  # noqa: E731
    token_file = tmp_path / "token"
    token_file.write_bytes(b".".join([part({"alg": "RS256"}), part({
        "iss": "https://token.actions.githubusercontent.com",
        "sub": "repo:contoso/payments:ref:refs/heads/main", "aud": "api://AzureADTokenExchange",
        "exp": time.time() + 600}), b"c2ln"]))
    result = run(entra, connect_bot({"authentication_method": "workload_identity",
                                     "tenant_id": TENANT, "client_id": "wi-app",
                                     "token_file": str(token_file)}, LIST[:1]))
    assert result.status == "succeeded", result.error


@pytest.mark.parametrize("identity", [{}, {"client_id": "mi-1"},
                                      {"managed_identity_resource_id":
                                       "/subscriptions/s/resourceGroups/g/providers/x/mi-1"}])
def test_a_managed_identity_connects_and_children_share_its_global_session(
        entra, tmp_path, monkeypatch, identity):
    monkeypatch.delenv("IDENTITY_ENDPOINT", raising=False)
    monkeypatch.delenv("IDENTITY_HEADER", raising=False)
    (tmp_path / "child.yaml").write_text(
        "name: child\nsteps:\n  - action: ListRepos\n    inputs: {session: ado}\n")
    parent = tmp_path / "parent.json"
    parent.write_text(json.dumps({"name": "parent", "steps": [
        {"action": "Connect", "inputs": {
            "organization_url": "https://dev.azure.com/contoso", "project": "Payments",
            "authentication_method": "managed_identity", **identity,
            "session": {"name": "ado", "scope": "global"}}},
        {"for_each": [1, 2, 3], "parallel": 3,
         "steps": [{"action": "RunBot", "inputs": {"bot": "child.yaml"}}]}]}))
    from adobot.runtime.loader import load_bot

    result = Runner(Environment(route=entra.route, entra=entra.entra_route())).run(load_bot(parent))
    assert result.status == "succeeded", result.error
    assert entra.state.entra.issued == 1


OTHER_TENANT = "99999999-8888-7777-6666-555555555555"
# The app in the organization's tenant, trusting the managed identity of another tenant.
ACROSS = {"authentication_method": "managed_identity", "tenant_id": OTHER_TENANT,
          "client_id": "xt-app"}


def across_tenants(subject: str = "mi-1-object") -> dict:
    """The seed, with the managed identity at home in TENANT and an app in OTHER_TENANT whose
    federated credential trusts tokens TENANT issues for ``subject``."""
    data = seed()
    for identity in data["entra"]["identities"]:
        if identity["kind"] == "managed_identity":
            identity["tenant"] = TENANT
    data["entra"]["identities"].append({
        "kind": "federated", "tenant": OTHER_TENANT, "client_id": "xt-app",
        "name": "Cross-tenant App", "issuer": f"https://login.microsoftonline.com/{TENANT}/v2.0",
        "subject": subject})
    return data


@pytest.mark.parametrize("identity", [{}, {"managed_identity_client_id": "mi-1"},
                                      {"managed_identity_resource_id":
                                       "/subscriptions/s/resourceGroups/g/providers/x/mi-1"}])
def test_a_managed_identity_reaches_an_organization_in_another_tenant(monkeypatch, identity):
    """azure-identity's ClientAssertionCredential over ManagedIdentityCredential: the identity's
    token for api://AzureADTokenExchange is the app's assertion in the other tenant. No secret
    anywhere."""
    monkeypatch.delenv("IDENTITY_ENDPOINT", raising=False)
    monkeypatch.delenv("IDENTITY_HEADER", raising=False)
    bot = json.loads(connect_bot({**ACROSS, **identity}, LIST[:1]))
    bot["steps"][0]["outputs"] = {"user": "user"}
    with Sandbox(seed=across_tenants()) as sandbox:
        result = run(sandbox, json.dumps(bot))
        assert result.status == "succeeded", result.error
        assert result.to_dict()["variables"]["user"] == "Cross-tenant App"
        assert sandbox.state.entra.issued == 2  # the identity's assertion, then the app's token


def test_a_federated_credential_for_another_subject_is_refused_with_its_aadsts_code(monkeypatch):
    monkeypatch.delenv("IDENTITY_ENDPOINT", raising=False)
    with Sandbox(seed=across_tenants(subject="someone-else-object")) as sandbox:
        result = run(sandbox, connect_bot(ACROSS))
    assert result.error["code"] == "AUTH_FAILED", result.error
    assert "AADSTS70021" in result.error["message"] and "xt-app" in result.error["message"]
    assert "federated credential" in result.error["hint"]


def test_an_assertion_for_another_audience_is_refused_with_its_aadsts_code():
    import azure.identity as azure_identity
    from azure.core.exceptions import ClientAuthenticationError

    def assertion(audience: str) -> str:
        part = lambda data: base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=")  # noqa: E731
        claims = {"iss": f"https://login.microsoftonline.com/{TENANT}/v2.0",
                  "sub": "mi-1-object", "aud": audience, "exp": time.time() + 600}
        return b".".join([part({"alg": "RS256"}), part(claims), b"c2ln"]).decode()

    with Sandbox(seed=across_tenants()) as sandbox:
        def credential(audience: str):
            return azure_identity.ClientAssertionCredential(
                OTHER_TENANT, "xt-app", lambda: assertion(audience), authority=sandbox.tls_url,
                disable_instance_discovery=True, connection_verify=sandbox.ca_file)
        assert credential("api://AzureADTokenExchange").get_token(
            "499b84ac-1321-427f-aa17-267ca6975798/.default").token
        with pytest.raises(ClientAuthenticationError, match="AADSTS700024"):
            credential("api://someone-else").get_token(
                "499b84ac-1321-427f-aa17-267ca6975798/.default")


def test_renewal_within_one_session_keeps_a_long_loop_going():
    with Sandbox(seed=seed(lifetime=1)) as sandbox:
        from adobot import api

        with api.Context(sandbox=sandbox, variables={"secret": SECRET}) as ctx:
            ctx.run("Connect", organization_url="https://dev.azure.com/contoso",
                    project="Payments", **SP)
            deadline = time.time() + 2.2  # past two lifetimes of the token
            calls = 0
            while time.time() < deadline:
                ctx.run("ListRepos")
                calls += 1
                time.sleep(0.05)
        issued = sandbox.state.entra.issued
        assert 3 <= issued < calls  # renewed as it neared expiry, not on every call


@pytest.mark.parametrize("changes, said", [
    ({"client_secret": {"insecure": "wrong-secret"}}, "the client secret is wrong (AADSTS7000215)"),
    ({"client_id": "sp-nobody"}, "no app with that client id is in the tenant (AADSTS700016)"),
    ({"tenant_id": "no-such-tenant"}, "the tenant does not exist (tenant 'no-such-tenant'"),
])
def test_sign_in_refusals_are_auth_failed_naming_the_cause(entra, changes, said):
    result = run(entra, connect_bot({**SP, **changes}), secret=SECRET)
    assert result.error["code"] == "AUTH_FAILED", result.error
    assert said in result.error["message"] and result.error["hint"]
    assert "sp-" in result.error["message"] or "tenant" in result.error["message"]


def test_an_identity_that_is_not_a_member_gets_the_services_refusal(entra):
    # Signing in works (the tenant knows the app); the organization does not know it.
    result = run(entra, connect_bot({**SP, "client_id": "sp-outsider"}), secret=SECRET)
    assert result.error["code"] == "AUTH_FAILED" and entra.state.entra.issued == 1
    assert "not a member of the organization" in result.error["message"]


def test_a_managed_identity_that_is_not_here_is_auth_failed(monkeypatch):
    data = seed()
    data["entra"]["identities"] = [i for i in data["entra"]["identities"]
                                   if i["kind"] != "managed_identity"]
    with Sandbox(seed=data) as sandbox:
        result = run(sandbox, connect_bot({"authentication_method": "managed_identity"}))
    assert result.error["code"] == "AUTH_FAILED"
    assert "managed identity cannot sign in here" in result.error["message"]


def test_secrets_and_tokens_never_reach_output(entra, caplog):
    caplog.set_level(logging.DEBUG)
    inputs = {**SP, "client_id": "sp-cert", "certificate": {"variable": "pem"},
              "certificate_password": {"variable": "pw"}}
    inputs.pop("client_secret")
    ok = run(entra, connect_bot(inputs, LIST[:2]), pem=encrypted_bundle(CERT_PASSWORD_CANARY),
             pw=CERT_PASSWORD_CANARY)
    wrong = run(entra, connect_bot({**SP, "client_secret": {"insecure": SECRET + "x"}}))
    text = json.dumps([ok.to_dict(), wrong.to_dict()]) + caplog.text
    tokens = [t for t in entra.state.tokens if t.startswith("sandbox-entra-")]
    assert ok.status == "succeeded" and tokens
    for secret in [SECRET, CERT_PASSWORD_CANARY, "PRIVATE KEY", *tokens]:
        assert secret not in text


def test_validate_checks_each_methods_inputs_without_network(tmp_path):
    cases = {
        "needs tenant_id": {"authentication_method": "service_principal", "client_id": "a",
                            "client_secret": {"variable": "s"}},
        "exactly one of client_secret and certificate": {
            "authentication_method": "service_principal", "tenant_id": "t", "client_id": "a"},
        "do not go with authentication_method managed_identity": {
            "authentication_method": "managed_identity", "client_secret": {"variable": "s"}},
        "managed_identity across tenants needs client_id": {
            "authentication_method": "managed_identity", "tenant_id": "t"},
        "managed_identity_client_id goes with tenant_id": {
            "authentication_method": "managed_identity", "managed_identity_client_id": "m"},
        "needs personal_access_token": {},
    }
    for said, inputs in cases.items():
        bot = tmp_path / "bot.json"
        bot.write_text(connect_bot(inputs))
        found = [f.message for f in validate_file(bot, ["s"]) if f.severity == "error"]
        assert any(said in message for message in found), (said, found)


def fake_az(folder, body: str):
    """An `az` on PATH that answers `az account get-access-token` as the real CLI does."""
    script = folder / "az"
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(0o755)
    return str(folder)


def test_azure_cli_uses_the_account_signed_in_on_the_workstation(entra, tmp_path, monkeypatch):
    entra.state.add_token("az-workstation-token", user="Builder At Desk")
    expires = int(time.time()) + 3600
    monkeypatch.setenv("PATH", fake_az(tmp_path, f"""echo '{{"accessToken": "az-workstation-token",
 "expires_on": {expires}, "tokenType": "Bearer"}}'\n"""))
    from adobot import api

    with api.Context(sandbox=entra) as ctx:
        connected = ctx.run("Connect", organization_url="https://dev.azure.com/contoso",
                            project="Payments", authentication_method="azure_cli")
    assert connected["user"] == "Builder At Desk"


def test_azure_cli_without_a_signed_in_account_says_to_run_az_login(entra, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", fake_az(
        tmp_path, "echo \"ERROR: Please run 'az login' to setup account.\" >&2\nexit 1\n"))
    result = run(entra, connect_bot({"authentication_method": "azure_cli"}))
    assert result.error["code"] == "AUTH_FAILED"
    assert "az login" in result.error["message"] + result.error["hint"]


def test_a_pat_bot_never_imports_azure_identity():
    import subprocess
    import sys

    code = ("import sys\nfrom adobot import api\n"
            "from tests.conftest import CONNECT_BOT, DEMO_PAT\n"
            "from adobot.runtime.loader import parse_bot\n"
            "result = api.run(parse_bot(CONNECT_BOT), {'pat': DEMO_PAT}, sandbox=True)\n"
            "assert result.status == 'succeeded', result.error\n"
            "print(sorted(m for m in sys.modules if m.startswith(('azure', 'msal'))))")
    from tests.conftest import ROOT

    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, check=True)
    assert done.stdout.strip() == "[]", done.stdout


@pytest.mark.parametrize("pem, extra, field", [
    ("not a pem at all", {}, "certificate"),
    ("ENCRYPTED", {"certificate_password": {"variable": "pw"}}, "certificate_password"),
])
def test_a_certificate_that_cannot_be_read_is_invalid_input_before_sending(entra, pem, extra,
                                                                            field):
    inputs = {**SP, "client_id": "sp-cert", "certificate": {"variable": "pem"}, **extra}
    inputs.pop("client_secret")
    pem = encrypted_bundle("right") if pem == "ENCRYPTED" else pem
    given = {"pw": "wrong-password-canary"} if extra else {}
    result = run(entra, connect_bot(inputs), pem=pem, **given)
    assert result.error["code"] == "INVALID_INPUT", result.error
    assert result.error["message"].startswith(field) and entra.state.entra.issued == 0
    assert "wrong-password-canary" not in json.dumps(result.to_dict())


def test_a_missing_token_file_is_invalid_input_before_sending(entra, tmp_path):
    result = run(entra, connect_bot({"authentication_method": "workload_identity",
                                     "tenant_id": TENANT, "client_id": "wi-app",
                                     "token_file": str(tmp_path / "absent")}))
    assert result.error["code"] == "INVALID_INPUT" and "is not a file" in result.error["message"]


def test_the_command_never_prints_a_client_secret_or_a_bearer_token(tmp_path):
    import os
    import subprocess

    from tests.conftest import ADOBOT

    seed_file = tmp_path / "seed.json"
    seed_file.write_text(json.dumps(seed()))
    bot = tmp_path / "bot.json"
    bot.write_text(connect_bot(SP, LIST[:2]))
    outputs = []
    for secret in (SECRET, SECRET + "-wrong"):
        done = subprocess.run([str(ADOBOT), "run", str(bot), "--sandbox", "--sandbox-seed",
                               str(seed_file), "--var-env", "secret=SP_SECRET", "--json",
                               "--debug"], capture_output=True, text=True,
                              env={**os.environ, "SP_SECRET": secret})
        outputs.append(done)
    assert outputs[0].returncode == 0, outputs[0].stderr
    assert json.loads(outputs[1].stdout)["error"]["code"] == "AUTH_FAILED"
    text = "".join(done.stdout + done.stderr for done in outputs)
    assert SECRET not in text and "sandbox-entra-" not in text


@pytest.mark.parametrize("secret, code, said", [
    (SECRET, None, "the app's secret works in contoso as Release Bot"),
    (SECRET + "-wrong", "AUTH_FAILED", "the client secret is wrong (AADSTS7000215)"),
])
def test_vault_put_check_proves_a_service_principals_secret(entra, tmp_path, secret, code, said):
    # A private authority (the sandbox; Azure Stack alike) through the standard variables.
    from adobot.credentials.vault import Vault
    from tests.security.test_vault import adobot

    path = tmp_path / "v.json"
    done = adobot("vault", "put", "ado", "release-app", "secret", "--vault", str(path),
                  "--check", entra.org_url(), "--tenant-id", TENANT, "--client-id", "sp-secret",
                  stdin=secret, env={"AZURE_AUTHORITY_HOST": entra.tls_url,
                                     "REQUESTS_CA_BUNDLE": entra.ca_file})
    assert said in done.stderr, done.stderr
    if code is None:
        assert done.returncode == 0
        assert Vault(path).get("ado", "release-app", "secret",
                               organization=entra.org_url()).reveal() == secret
    else:
        assert done.returncode == 1 and code in done.stderr and not path.exists()
    assert SECRET not in done.stdout + done.stderr


def test_a_standalone_sandbox_says_how_to_sign_in_and_a_bot_does(tmp_path):
    # `adobot sandbox` prints the standard variables; a bot run with them signs in there.
    import os
    import subprocess

    from tests.conftest import ADOBOT

    seed_file = tmp_path / "seed.json"
    seed_file.write_text(json.dumps(seed()))
    server = subprocess.Popen([str(ADOBOT), "sandbox", "--seed", str(seed_file)],
                              stdout=subprocess.PIPE, text=True)
    try:
        lines = []
        while not lines or not lines[-1].startswith("Press"):
            lines.append(server.stdout.readline())
        url = lines[0].split(" on ")[1].strip()
        settings = dict(item.split("=", 1) for line in lines
                        if line.strip().startswith(("Entra:", "managed identity:"))
                        for item in line.split(":", 1)[1].split())
        assert set(settings) == {"AZURE_AUTHORITY_HOST", "REQUESTS_CA_BUNDLE",
                                 "IDENTITY_ENDPOINT", "IDENTITY_HEADER"}
        bot = tmp_path / "bot.json"
        bot.write_text(connect_bot(SP, LIST[:1]).replace("https://dev.azure.com", url))
        done = subprocess.run([str(ADOBOT), "run", str(bot), "--var-env", "secret=S", "--json"],
                              capture_output=True, text=True,
                              env={**os.environ, **settings, "S": SECRET})
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["status"] == "succeeded"
    finally:
        server.terminate()
        server.wait(timeout=10)
