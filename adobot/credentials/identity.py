"""Microsoft Entra sign-in: the ways in beside a PAT, through azure-identity (imported only
here, only when a bot uses one). Each builds one azure-identity credential per session; the
session's ``BearerAuthorizer`` asks it for a token and renews before expiry.

Where the sandbox plays Entra, ``EntraRoute`` sends the sign-in there: its TLS authority (with
the certificate to trust) and its managed identity endpoint.
"""
from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from typing import Any, Callable

from adobot.credentials.secret import Secret
from adobot.errors import AdobotError, AuthFailed, InvalidInput

AZURE_DEVOPS_SCOPE = "499b84ac-1321-427f-aa17-267ca6975798/.default"
# A managed identity's token for this audience is the client assertion of an app in another
# tenant whose federated credential trusts the identity (the cross-tenant exchange).
FEDERATION_SCOPE = "api://AzureADTokenExchange/.default"

# azure-identity logs a warning for every failed sign-in; adobot reports the failure itself,
# once, with its cause and a hint, so theirs would only repeat it on stderr.
logging.getLogger("azure.identity").addHandler(logging.NullHandler())
logging.getLogger("azure.identity").propagate = False

# What the AADSTS codes a sign-in meets most often mean, in a user's words, with what to do.
AADSTS = {
    "7000215": ("the client secret is wrong", "Use the secret's value (not its id) from the "
                "app registration's Certificates & secrets page, or create a new one."),
    "7000222": ("the client secret has expired", "Create a new secret for the app "
                "registration and store it in place of the old one."),
    "700016": ("no app with that client id is in the tenant", "Check client_id (the "
               "application id) and tenant_id, and that the app is registered in that tenant."),
    "90002": ("the tenant does not exist", "Check tenant_id: the directory (tenant) id of the "
              "app registration."),
    "700027": ("the certificate is not one the app trusts", "Upload the certificate's public "
               "part to the app registration, or use the certificate that is there."),
    "70021": ("no federated credential of the app matches the token file's issuer and subject",
              "Add a federated credential for this workload (issuer, subject, audience "
              "api://AzureADTokenExchange) to the app or managed identity."),
    "700024": ("the federated token is expired or not meant for Entra",
               "Refresh the token file (its audience must be api://AzureADTokenExchange)."),
}


@dataclass(frozen=True)
class EntraRoute:
    """Where Entra sign-in goes instead of Microsoft's cloud (the sandbox); ``closed``: why it
    goes nowhere (a sandbox that plays no Entra: a sign-in must not reach Microsoft's)."""

    authority: str | None = None          # https://host:port, as azure-identity's authority
    connection_verify: str | None = None  # the certificate to trust for it
    identity_endpoint: str | None = None  # a managed identity's token endpoint
    identity_header: str | None = None
    closed: str | None = None


def token_source(method: str, *, tenant_id: str | None, client_id: str | None,
                 client_secret: Secret | None = None, certificate: Secret | None = None,
                 certificate_password: Secret | None = None, resource_id: str | None = None,
                 token_file: str | None = None, route: EntraRoute | None = None,
                 register: Callable[[Secret], None] = lambda secret: None,
                 identity_client_id: str | None = None
                 ) -> Callable[[], tuple[Secret, float]]:
    """A function that fetches a token for Azure DevOps: (the token, when it expires)."""
    if route is not None and route.closed:
        who = _who(method, tenant_id, client_id, resource_id, identity_client_id)
        raise AuthFailed(f"{who} cannot sign in here: {route.closed}",
                         "Name the identity in the sandbox's seed "
                         "(its \"entra\" section; --sandbox-seed), or run without --sandbox.",
                         field="authentication_method")
    try:
        credential = _credential(method, tenant_id, client_id, client_secret, certificate,
                                 certificate_password, resource_id, token_file,
                                 route or EntraRoute(), identity_client_id)
    except ValueError as exc:  # azure-identity reads the certificate when it is built
        wrong_password = "password" in str(exc).lower()
        raise InvalidInput(
            "certificate_password does not open the certificate's private key" if wrong_password
            else "certificate is not a PEM certificate with its private key "
                 f"({_first_line(str(exc))})",
            "Give the PEM text holding both the private key and the certificate (and the "
            "key's password in certificate_password if it is encrypted).",
            field="certificate_password" if wrong_password else "certificate") from None
    who = _who(method, tenant_id, client_id, resource_id, identity_client_id)

    def fetch() -> tuple[Secret, float]:
        try:
            token = credential.get_token(AZURE_DEVOPS_SCOPE)
        except Exception as exc:  # azure-identity's and MSAL's errors, and their transport's
            raise _sign_in_failed(exc, method, who, tenant_id) from None
        secret = Secret(token.token)
        register(secret)
        return secret, float(token.expires_on)

    return fetch


def _credential(method: str, tenant_id: str | None, client_id: str | None,
                client_secret: Secret | None, certificate: Secret | None,
                certificate_password: Secret | None, resource_id: str | None,
                token_file: str | None, route: EntraRoute,
                identity_client_id: str | None = None) -> Any:
    import azure.identity as identity

    options: dict[str, Any] = {}
    if route.authority:
        options = {"authority": route.authority, "disable_instance_discovery": True,
                   "connection_verify": route.connection_verify}
    elif _private_authority():
        # AZURE_AUTHORITY_HOST names a private cloud (Azure Stack, an emulator): Microsoft's
        # instance discovery cannot vouch for it, so it is not asked (its docs say as much).
        options = {"disable_instance_discovery": True}
    if method == "service_principal":
        if client_secret is not None:
            return identity.ClientSecretCredential(tenant_id, client_id, client_secret.reveal(),
                                                   **options)
        assert certificate is not None
        return identity.CertificateCredential(
            tenant_id, client_id, certificate_data=certificate.reveal().encode(),
            password=certificate_password.reveal().encode() if certificate_password else None,
            **options)
    if method == "workload_identity":
        path = token_file or os.environ.get("AZURE_FEDERATED_TOKEN_FILE")
        if not path:
            raise InvalidInput("token_file: a workload identity needs its token file (or "
                               "AZURE_FEDERATED_TOKEN_FILE set by the platform)",
                               field="token_file")
        if not os.path.isfile(path):
            raise InvalidInput(f"token_file: {path!r} is not a file",
                               "Give the federated token file the platform mounts (Kubernetes: "
                               "AZURE_FEDERATED_TOKEN_FILE).", field="token_file")
        return identity.WorkloadIdentityCredential(tenant_id=tenant_id, client_id=client_id,
                                                   token_file_path=path, **options)
    if method == "managed_identity":
        if route.identity_endpoint:  # the sandbox plays this machine's identity endpoint
            os.environ["IDENTITY_ENDPOINT"] = route.identity_endpoint
            os.environ["IDENTITY_HEADER"] = route.identity_header or ""
        if tenant_id:  # across tenants: the identity's token vouches for the app there
            mine = (identity.ManagedIdentityCredential(identity_config={"mi_res_id": resource_id})
                    if resource_id else
                    identity.ManagedIdentityCredential(client_id=identity_client_id))
            return identity.ClientAssertionCredential(
                tenant_id, client_id, lambda: mine.get_token(FEDERATION_SCOPE).token, **options)
        if resource_id:
            return identity.ManagedIdentityCredential(identity_config={"mi_res_id": resource_id})
        return identity.ManagedIdentityCredential(client_id=client_id)
    if method == "azure_cli":
        return identity.AzureCliCredential(tenant_id=tenant_id)
    raise InvalidInput(f"authentication_method {method!r} is not known",
                       field="authentication_method")


# Microsoft's own authority hosts (public and sovereign clouds): instance discovery knows them.
KNOWN_AUTHORITIES = ("login.microsoftonline.com", "login.microsoftonline.us",
                     "login.chinacloudapi.cn", "login.microsoft.com", "login.windows.net")


def _private_authority() -> bool:
    from urllib.parse import urlsplit

    host = os.environ.get("AZURE_AUTHORITY_HOST", "")
    return bool(host) and (urlsplit(host if "//" in host else f"https://{host}").hostname
                           or "") not in KNOWN_AUTHORITIES


def _who(method: str, tenant_id: str | None, client_id: str | None,
         resource_id: str | None, identity_client_id: str | None = None) -> str:
    if method == "managed_identity" and tenant_id:
        mine = identity_client_id or resource_id
        through = (f"the managed identity {mine!r}" if mine
                   else "this machine's system-assigned managed identity")
        return f"app {client_id!r} in tenant {tenant_id!r} through {through}"
    if method == "managed_identity":
        return ("the user-assigned managed identity " + repr(client_id or resource_id)
                if client_id or resource_id else "this machine's system-assigned managed identity")
    if method == "azure_cli":
        return "the Azure CLI's signed-in account"
    return f"app {client_id!r} in tenant {tenant_id!r}"


def _sign_in_failed(exc: Exception, method: str, who: str, tenant_id: str | None) -> AdobotError:
    text = str(getattr(exc, "message", None) or exc)
    code = re.search(r"AADSTS(\d+)", text)
    name = type(exc).__name__
    if code and code.group(1) in AADSTS:
        meaning, hint = AADSTS[code.group(1)]
        return AuthFailed(f"Entra refused to sign in {who}: {meaning} (AADSTS{code.group(1)})",
                          hint, after_request=True)
    if "Unable to get authority configuration" in text:
        meaning, hint = AADSTS["90002"]
        return AuthFailed(f"Entra refused to sign in {who}: {meaning} (tenant {tenant_id!r}, "
                          "AADSTS90002)", hint, after_request=True)
    if name == "CredentialUnavailableError" or method == "managed_identity":
        hint = {"managed_identity": "Run the bot where a managed identity is assigned (an Azure "
                                    "VM, App Service, Functions, Container Apps, AKS) and give its "
                                    "client_id if it is user-assigned.",
                "azure_cli": "Sign in first with `az login` on this machine; a bot never "
                             "prompts."}.get(method, "Check the sign-in settings.")
        return AuthFailed(f"{who} cannot sign in here: {_first_line(text)}", hint,
                          after_request=True)
    if code:
        return AuthFailed(f"Entra refused to sign in {who} (AADSTS{code.group(1)}): "
                          f"{_first_line(text)}", "Look the code up in Microsoft's AADSTS "
                          "error list; check the app registration.", after_request=True)
    return AuthFailed(f"signing in {who} failed: {_first_line(text)}",
                      "Check the identity's settings and this machine's network to Entra.",
                      after_request=True)


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else "no reason given"
    return line.split(" Trace ID:")[0]
