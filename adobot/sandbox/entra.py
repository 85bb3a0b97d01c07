"""The sandbox plays Microsoft Entra ID for the identities its seed names, so azure-identity's
own credential classes can sign in against it over real HTTP.

Routes (on both listeners; MSAL insists on https for an authority, hence the TLS one):

- ``GET /{tenant}/v2.0/.well-known/openid-configuration``: the tenant's metadata (MSAL reads the
  token endpoint from it).
- ``POST /{tenant}/oauth2/v2.0/token``, ``grant_type=client_credentials``: a service principal
  with its secret, or with a client assertion signed by its certificate, or a federated
  credential (a workload identity's token file, checked against the issuer and subject the seed
  trusts). Refusals carry Entra's ``AADSTS`` codes.
- ``GET /_entra/msi/token``: a managed identity, as App Service's identity endpoint answers
  (``IDENTITY_ENDPOINT`` / ``IDENTITY_HEADER``, api-version 2019-08-01). For the resource
  ``api://AzureADTokenExchange`` it answers a JWT from the identity's home tenant: the client
  assertion of an app in another tenant whose federated credential trusts it (cross-tenant).

A token it issues is a bearer token the Azure DevOps routes accept with the identity's scopes,
in the organizations the identity is a member of, until it expires (``token_lifetime_seconds``,
short on purpose so refresh is exercised). Signatures of certificate assertions are checked;
a federated assertion's signature is not (its issuer's keys are elsewhere): its issuer,
subject, audience and expiry are.
"""
from __future__ import annotations

import base64
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

if TYPE_CHECKING:
    from adobot.sandbox.routing import Answer, HttpRequest

AZURE_DEVOPS = "499b84ac-1321-427f-aa17-267ca6975798"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
FEDERATION_AUDIENCE = "api://AzureADTokenExchange"


@dataclass
class Identity:
    kind: str                     # service_principal, managed_identity or federated
    client_id: str
    name: str
    tenant: str = ""
    secret: str | None = None
    certificate: str | None = None  # PEM of the public certificate the tenant trusts
    issuer: str | None = None       # federated: the token issuer and subject it trusts
    subject: str | None = None
    resource_id: str | None = None  # managed identity: its ARM resource id
    scopes: list[str] = field(default_factory=lambda: ["app_token"])
    organizations: list[str] | None = None  # None: a member of every organization

    @property
    def object_id(self) -> str:
        return f"{self.client_id}-object"


@dataclass
class Entra:
    identities: list[Identity] = field(default_factory=list)
    token_lifetime: float = 3600.0
    identity_header: str = field(default_factory=lambda: secrets.token_hex(16))
    issued: int = 0  # tokens handed out (tests count them)

    @classmethod
    def from_seed(cls, seed: dict[str, Any] | None) -> "Entra":
        seed = seed or {}
        return cls(identities=[Identity(**item) for item in seed.get("identities") or []],
                   token_lifetime=float(seed.get("token_lifetime_seconds", 3600)))

    def find(self, client_id: str, tenant: str | None = None) -> Identity | None:
        return next((i for i in self.identities if i.client_id == client_id
                     and (tenant is None or i.tenant == tenant)), None)


def control(state: Any, request: HttpRequest) -> Answer | None:
    """An Entra route's answer, or None for every other path."""
    parts = request.path.strip("/").split("/")
    if request.path.rstrip("/") == "/_entra/msi/token" and request.method == "GET":
        return _managed_identity(state, request)
    if len(parts) == 4 and parts[1:] == ["v2.0", ".well-known", "openid-configuration"]:
        return _metadata(state, request, parts[0])
    if len(parts) == 4 and parts[1:] == ["oauth2", "v2.0", "token"] and request.method == "POST":
        return _token(state, request, parts[0])
    return None


def _tenants(state: Any) -> set[str]:
    return {i.tenant for i in state.entra.identities if i.tenant}


def _metadata(state: Any, request: HttpRequest, tenant: str) -> Answer:
    if tenant not in _tenants(state):
        return _refused(400, "invalid_tenant", 90002, f"Tenant '{tenant}' not found. Check to "
                        "make sure you have the correct tenant ID and are signing into the "
                        "correct cloud.")
    base = f"https://{request.host}/{tenant}"
    return 200, {"token_endpoint": f"{base}/oauth2/v2.0/token",
                 "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                 "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                 "issuer": f"{base}/v2.0", "token_endpoint_auth_methods_supported":
                 ["client_secret_post", "private_key_jwt", "client_secret_basic"]}


def _token(state: Any, request: HttpRequest, tenant: str) -> Answer:
    form = dict(parse_qsl(request.body.decode("utf-8", "replace"), keep_blank_values=True))
    if tenant not in _tenants(state):
        return _refused(400, "invalid_request", 90002, f"Tenant '{tenant}' not found.")
    if form.get("grant_type") != "client_credentials":
        return _refused(400, "unsupported_grant_type", 70003,
                        "The app requested an unsupported grant type.")
    client_id = form.get("client_id", "")
    identity = state.entra.find(client_id, tenant)
    if identity is None or identity.kind == "managed_identity":
        return _refused(400, "unauthorized_client", 700016, f"Application with identifier "
                        f"'{client_id}' was not found in the directory '{tenant}'.")
    if form.get("scope", "").split("/")[0] not in (AZURE_DEVOPS,
                                                    "https://app.vssps.visualstudio.com"):
        return _refused(400, "invalid_resource", 500011, "The resource principal named "
                        f"{form.get('scope', '')!r} was not found in the tenant.")
    problem = _proof(identity, form, f"https://{request.host}/{tenant}/oauth2/v2.0/token")
    if problem is not None:
        return problem
    token, lifetime = _issue(state, identity)
    return 200, {"token_type": "Bearer", "expires_in": int(lifetime),
                 "ext_expires_in": int(lifetime), "access_token": token}


def _proof(identity: Identity, form: dict[str, str], endpoint: str) -> Answer | None:
    """None if the client proved it is ``identity``; else Entra's refusal."""
    assertion = form.get("client_assertion")
    if identity.kind == "federated":
        if not assertion or form.get("client_assertion_type") != ASSERTION_TYPE:
            return _refused(401, "invalid_client", 7000218, "The request body must contain "
                            "the following parameter: 'client_assertion' or 'client_secret'.")
        claims = _claims(assertion)
        if claims is None or claims.get("iss") != identity.issuer \
                or claims.get("sub") != identity.subject:
            return _refused(400, "invalid_request", 70021, "No matching federated identity "
                            "record found for presented assertion.")
        if _audience(claims) != FEDERATION_AUDIENCE or claims.get("exp", 0) < time.time():
            return _refused(400, "invalid_request", 700024, "Client assertion is not within "
                            "its valid time range, or its audience is not "
                            f"{FEDERATION_AUDIENCE}.")
        return None
    if "client_secret" in form:
        if identity.secret is None or not secrets.compare_digest(form["client_secret"],
                                                                 identity.secret):
            return _refused(401, "invalid_client", 7000215, "Invalid client secret provided. "
                            "Ensure the secret being sent in the request is the client secret "
                            f"value, not the client secret ID, for a secret added to app "
                            f"'{identity.client_id}'.")
        return None
    if assertion and identity.certificate:
        if _signed_by(assertion, identity.certificate, identity.client_id, endpoint):
            return None
        return _refused(401, "invalid_client", 700027, "Client assertion failed signature "
                        "validation.")
    return _refused(401, "invalid_client", 7000218, "The request body must contain the "
                    "following parameter: 'client_assertion' or 'client_secret'.")


def _managed_identity(state: Any, request: HttpRequest) -> Answer:
    if request.headers.get("X-IDENTITY-HEADER") != state.entra.identity_header:
        return 401, {"statusCode": 401, "message": "Unauthorized: X-IDENTITY-HEADER is missing "
                                                   "or wrong."}
    resource = request.query.get("resource", "")
    exchange = resource.rstrip("/") == FEDERATION_AUDIENCE  # a token to present elsewhere
    if not exchange and resource.rstrip("/") not in (AZURE_DEVOPS,
                                                     "https://app.vssps.visualstudio.com"):
        return 400, {"statusCode": 400, "message": f"Resource {resource!r} is not known."}
    wanted_client = request.query.get("client_id")
    wanted_resource = request.query.get("mi_res_id")
    candidates = [i for i in state.entra.identities if i.kind == "managed_identity"]
    if wanted_client:
        candidates = [i for i in candidates if i.client_id == wanted_client]
    elif wanted_resource:
        candidates = [i for i in candidates if i.resource_id == wanted_resource]
    if not candidates:
        return 400, {"statusCode": 400, "message": "No managed identity found for the given "
                                                   "client_id or resource id (or none is "
                                                   "assigned to this resource)."}
    identity = candidates[0]
    if exchange:
        token, lifetime = _assertion(state, identity), state.entra.token_lifetime
    else:
        token, lifetime = _issue(state, identity)
    return 200, {"access_token": token, "expires_on": str(int(time.time() + lifetime)),
                 "resource": resource, "token_type": "Bearer", "client_id": identity.client_id}


def _issue(state: Any, identity: Identity) -> tuple[str, float]:
    token = "sandbox-entra-" + secrets.token_urlsafe(24)
    lifetime = state.entra.token_lifetime
    state.add_token(token, user=identity.name, email=f"{identity.client_id}@sandbox.example",
                    scopes=identity.scopes, organizations=identity.organizations,
                    expires_at=time.time() + lifetime)
    with state.lock:
        state.entra.issued += 1
    return token, lifetime


def _assertion(state: Any, identity: Identity) -> str:
    """A managed identity's token for the federation audience, as a JWT: issued by its home
    tenant, for its object id. An app in another tenant whose federated credential names that
    issuer and subject accepts it as its client assertion (checked in ``_proof``)."""
    now = int(time.time())
    claims = {"iss": f"https://login.microsoftonline.com/{identity.tenant}/v2.0",
              "sub": identity.object_id, "aud": FEDERATION_AUDIENCE, "iat": now,
              "nbf": now, "exp": now + int(state.entra.token_lifetime),
              "oid": identity.object_id, "tid": identity.tenant}
    with state.lock:
        state.entra.issued += 1
    return ".".join(base64.urlsafe_b64encode(json.dumps(part).encode()).rstrip(b"=").decode()
                    for part in ({"alg": "RS256", "typ": "JWT"}, claims)) + ".c2FuZGJveA"


def _refused(status: int, error: str, code: int, text: str) -> Answer:
    """Entra's error body: the AADSTS code leads the description, as the service writes it."""
    now = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime())
    return status, {"error": error, "error_description": f"AADSTS{code}: {text} Trace ID: "
                    f"{secrets.token_hex(8)} Timestamp: {now}", "error_codes": [code],
                    "timestamp": now}


def _b64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _claims(assertion: str) -> dict[str, Any] | None:
    try:
        claims = json.loads(_b64(assertion.split(".")[1]))
    except (IndexError, ValueError):
        return None
    return claims if isinstance(claims, dict) else None


def _audience(claims: dict[str, Any]) -> str | None:
    audience = claims.get("aud")
    return audience[0] if isinstance(audience, list) and audience else audience


def _signed_by(assertion: str, certificate_pem: str, client_id: str, endpoint: str) -> bool:
    """A client assertion signed with the certificate's key, naming the client and endpoint."""
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    try:
        head, body, signature = assertion.split(".")
        header, claims = json.loads(_b64(head)), json.loads(_b64(body))
        certificate = x509.load_pem_x509_certificate(certificate_pem.encode())
        thumbprints = {base64.urlsafe_b64encode(certificate.fingerprint(algorithm)).rstrip(b"=")
                       .decode() for algorithm in (hashes.SHA1(), hashes.SHA256())}
        given = {str(header.get(name, "")).rstrip("=") for name in ("x5t", "x5t#S256")}
        if not given & thumbprints:
            return False
        scheme = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32) \
            if header.get("alg") == "PS256" else padding.PKCS1v15()
        certificate.public_key().verify(_b64(signature), f"{head}.{body}".encode(),  # type: ignore[call-arg,union-attr]
                                        scheme, hashes.SHA256())
    except (ValueError, InvalidSignature, TypeError, AttributeError):
        return False
    return claims.get("iss") == client_id == claims.get("sub") \
        and _audience(claims) in (endpoint, endpoint.rsplit("/oauth2/", 1)[0] + "/v2.0") \
        and claims.get("exp", 0) >= time.time()

