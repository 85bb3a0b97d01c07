"""The sandbox plays Entra: azure-identity's own credential classes sign in against it over
real HTTP (TLS for the authority), and the tokens it issues open the Azure DevOps routes with
the identity's permissions until they expire."""
from __future__ import annotations

import base64
import datetime
import json
import time

import pytest
import requests

import azure.identity as azure_identity
from azure.core.exceptions import ClientAuthenticationError

from adobot.sandbox import Sandbox
from adobot.sandbox.state import default_seed

TENANT = "11111111-2222-3333-4444-555555555555"
SCOPE = "499b84ac-1321-427f-aa17-267ca6975798/.default"
SECRET = "sandbox-entra-secret-canary"


def certificate_pair() -> tuple[str, str]:
    """(private key + certificate PEM as CertificateCredential reads it, certificate PEM)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "adobot-bot")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    return key_pem + cert_pem, cert_pem


BUNDLE, CERTIFICATE = certificate_pair()


def seed(lifetime: float = 3600) -> dict:
    data = default_seed()
    data["entra"] = {"token_lifetime_seconds": lifetime, "identities": [
        {"kind": "service_principal", "tenant": TENANT, "client_id": "sp-secret",
         "name": "Release Bot", "secret": SECRET},
        {"kind": "service_principal", "tenant": TENANT, "client_id": "sp-cert",
         "name": "Cert Bot", "certificate": CERTIFICATE},
        {"kind": "federated", "tenant": TENANT, "client_id": "wi-app", "name": "Workload",
         "issuer": "https://token.actions.githubusercontent.com",
         "subject": "repo:contoso/payments:ref:refs/heads/main"},
        {"kind": "managed_identity", "client_id": "mi-1", "name": "Prod VM",
         "resource_id": "/subscriptions/s/resourceGroups/g/providers/x/mi-1"},
        {"kind": "service_principal", "tenant": TENANT, "client_id": "sp-outsider",
         "name": "Outsider", "secret": SECRET, "organizations": ["fabrikam"]},
        {"kind": "service_principal", "tenant": TENANT, "client_id": "sp-reader",
         "name": "Reader", "secret": SECRET, "scopes": ["vso.code"]},
    ]}
    return data


@pytest.fixture
def entra():
    with Sandbox(seed=seed()) as running:
        yield running


def credential(sandbox: Sandbox, client_id: str = "sp-secret", secret: str = SECRET,
               tenant: str = TENANT):
    return azure_identity.ClientSecretCredential(
        tenant, client_id, secret, authority=sandbox.tls_url, disable_instance_discovery=True,
        connection_verify=sandbox.ca_file)


def projects(sandbox: Sandbox, token: str) -> requests.Response:
    return requests.get(f"{sandbox.org_url()}/_apis/projects", params={"api-version": "7.1"},
                        headers={"Authorization": f"Bearer {token}",
                                 "X-TFS-FedAuthRedirect": "Suppress"})


def test_a_service_principal_signs_in_with_its_secret_and_the_token_opens_the_api(entra):
    token = credential(entra).get_token(SCOPE)

    assert token.expires_on > time.time() + 3000
    assert projects(entra, token.token).status_code == 200
    assert entra.state.entra.issued == 1


def test_a_service_principal_signs_in_with_a_certificate(entra, tmp_path):
    pem = tmp_path / "bot.pem"
    pem.write_text(BUNDLE)
    cred = azure_identity.CertificateCredential(
        TENANT, "sp-cert", certificate_path=str(pem), authority=entra.tls_url,
        disable_instance_discovery=True, connection_verify=entra.ca_file)
    assert projects(entra, cred.get_token(SCOPE).token).status_code == 200


def test_a_certificate_the_tenant_does_not_trust_is_refused_with_its_aadsts_code(entra, tmp_path):
    other, _ = certificate_pair()
    pem = tmp_path / "other.pem"
    pem.write_text(other)
    cred = azure_identity.CertificateCredential(
        TENANT, "sp-cert", certificate_path=str(pem), authority=entra.tls_url,
        disable_instance_discovery=True, connection_verify=entra.ca_file)
    with pytest.raises(ClientAuthenticationError, match="AADSTS700027"):
        cred.get_token(SCOPE)


def test_a_workload_identity_exchanges_its_token_file(entra, tmp_path):
    def jwt(claims: dict) -> str:
        part = lambda data: base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=")  # noqa: E731
        return b".".join([part({"alg": "RS256", "typ": "JWT"}), part(claims), b"c2ln"]).decode()

    token_file = tmp_path / "token"
    claims = {"iss": "https://token.actions.githubusercontent.com",
              "sub": "repo:contoso/payments:ref:refs/heads/main",
              "aud": "api://AzureADTokenExchange", "exp": time.time() + 600}
    token_file.write_text(jwt(claims))
    cred = azure_identity.WorkloadIdentityCredential(
        tenant_id=TENANT, client_id="wi-app", token_file_path=str(token_file),
        authority=entra.tls_url, disable_instance_discovery=True,
        connection_verify=entra.ca_file)
    assert projects(entra, cred.get_token(SCOPE).token).status_code == 200

    token_file.write_text(jwt({**claims, "sub": "repo:contoso/other:ref:refs/heads/main"}))
    stranger = azure_identity.WorkloadIdentityCredential(
        tenant_id=TENANT, client_id="wi-app", token_file_path=str(token_file),
        authority=entra.tls_url, disable_instance_discovery=True,
        connection_verify=entra.ca_file)
    with pytest.raises(ClientAuthenticationError, match="AADSTS70021"):
        stranger.get_token(SCOPE)


def test_a_managed_identity_gets_its_token_from_the_identity_endpoint(entra, monkeypatch):
    monkeypatch.setenv("IDENTITY_ENDPOINT", entra.identity_endpoint)
    monkeypatch.setenv("IDENTITY_HEADER", entra.state.entra.identity_header)
    token = azure_identity.ManagedIdentityCredential(client_id="mi-1").get_token(SCOPE)
    assert projects(entra, token.token).status_code == 200

    with pytest.raises(ClientAuthenticationError):
        azure_identity.ManagedIdentityCredential(client_id="mi-unknown").get_token(SCOPE)


@pytest.mark.parametrize("client_id, secret, tenant, code", [
    ("sp-secret", "wrong", TENANT, "AADSTS7000215"),           # a wrong secret
    ("sp-nobody", SECRET, TENANT, "AADSTS700016"),             # an unknown client
    # An unknown tenant: its metadata is refused (AADSTS90002), which MSAL reports so.
    ("sp-secret", SECRET, "no-such-tenant", "Unable to get authority configuration.*no-such"),
])
def test_sign_in_refusals_carry_entras_codes(entra, client_id, secret, tenant, code):
    with pytest.raises(ClientAuthenticationError, match=code) as caught:
        credential(entra, client_id, secret, tenant).get_token(SCOPE)
    assert SECRET not in str(caught.value)


def test_identities_the_organization_does_not_know_or_allow_get_the_services_answers(entra):
    outsider = credential(entra, "sp-outsider").get_token(SCOPE).token
    assert projects(entra, outsider).status_code == 401  # not a member of contoso
    reader = credential(entra, "sp-reader").get_token(SCOPE).token
    answer = projects(entra, reader)
    assert answer.status_code == 401 and "TF400813" in answer.json()["message"]


def test_tokens_expire_on_the_seeds_short_lifetime():
    with Sandbox(seed=seed(lifetime=1)) as sandbox:
        token = credential(sandbox).get_token(SCOPE).token
        assert projects(sandbox, token).status_code == 200
        time.sleep(1.2)
        assert projects(sandbox, token).status_code == 401


def test_an_unknown_tenants_metadata_is_refused_with_aadsts90002(entra):
    answer = requests.get(f"{entra.tls_url}/no-such-tenant/v2.0/.well-known/openid-configuration",
                          verify=entra.ca_file)
    assert answer.status_code == 400 and answer.json()["error_codes"] == [90002]
    assert requests.get(f"{entra.tls_url}/{TENANT}/v2.0/.well-known/openid-configuration",
                        verify=entra.ca_file).json()["token_endpoint"].startswith("https://")
