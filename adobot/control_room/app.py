"""The control room's HTTP API (FastAPI): connections, the CI/CD registration route, credentials
for bot runners, the audit log, and its OpenAPI document.

Every answer that is not a success is ``{"error": {"code", "message", "hint", "field"}}`` with
the status a client expects: 400 malformed, 401 no valid token, 403 the role may not, 404 no
such connection, 409 taken, 415 wrong content type, 422 invalid or refused by the test, 502 the
organization could not be reached. No answer, log line or audit entry carries a secret: secrets
arrive as ``SecretStr`` and leave only in the runner's credential answer.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable, Literal, Optional
from urllib.parse import parse_qs

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from adobot import __version__
from adobot.control_room import workbench
from adobot.control_room.state import ControlRoomState
from adobot.control_room.tokens import ApiToken, Unauthorized
from adobot.credentials.connections import Connection, check_destination
from adobot.credentials.secret import Secret
from adobot.errors import (
    AdobotError,
    AlreadyExists,
    CredentialNotFound,
    InvalidInput,
    PermissionDenied,
    TransportError,
    VaultError,
)

log = logging.getLogger("adobot.control_room")
API = "/api/v1"
FORM = "application/x-www-form-urlencoded"
STATIC = Path(__file__).with_name("static")
# The page loads nothing from elsewhere and may not be framed; tokens live in its memory only.
PAGE_HEADERS = {"Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; "
                                           "base-uri 'none'; form-action 'self'",
                "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
                "Cache-Control": "no-store"}


class Forbidden(PermissionDenied):
    """The caller's role (or name) may not do this: HTTP 403."""


class Malformed(InvalidInput):
    """A body that cannot be read at all: HTTP 400."""


class UnsupportedType(InvalidInput):
    """A body of the wrong content type: HTTP 415."""


def status_of(error: AdobotError) -> int:
    for kind, status in ((Unauthorized, 401), (Forbidden, 403), (Malformed, 400),
                         (UnsupportedType, 415), (CredentialNotFound, 404),
                         (AlreadyExists, 409), (InvalidInput, 422), (TransportError, 502),
                         (VaultError, 500)):
        if isinstance(error, kind):
            return status
    return 422  # the organization refused the secret: the test before saving failed


def error_body(error: AdobotError) -> dict[str, Any]:
    return {"error": {**error.to_dict(), "field": error.field}}


# --- request bodies ----------------------------------------------------------------------------

class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NewConnection(_Body):
    name: str = Field(description="3-32 letters, digits and hyphens, starting with a letter",
                      examples=["contoso-main"])
    organization: str = Field(description="The organization's name (as after dev.azure.com/), "
                                          "or its full URL (visualstudio.com, Azure DevOps Server)",
                              examples=["contoso"])
    project: Optional[str] = Field(None, description="Default project of bots that connect "
                                                     "with this connection")
    authentication_method: Literal["pat", "service_principal"] = "pat"
    pat: Optional[SecretStr] = Field(None, description="pat: the personal access token")
    client_secret: Optional[SecretStr] = Field(None, description="service_principal: the app's "
                                                                 "client secret")
    tenant_id: Optional[str] = Field(None, description="service_principal: directory (tenant) id")
    client_id: Optional[str] = Field(None, description="service_principal: application id")
    runners: list[str] = Field(default_factory=list, description="Runner tokens (by name) that "
                               "may fetch the secret; empty: every runner")
    roles: list[Literal["runner", "administrator"]] = Field(
        default_factory=lambda: ["runner"], description="Token roles that may fetch the secret "
        "for a run (standard users never may)")


class ConnectionChanges(_Body):
    organization: Optional[str] = None
    project: Optional[str] = Field(None, description="A new default project; \"\" removes it")
    pat: Optional[SecretStr] = Field(None, description="Re-authenticate: a new token")
    client_secret: Optional[SecretStr] = Field(None, description="Re-authenticate: a new secret")
    tenant_id: Optional[str] = None
    client_id: Optional[str] = None
    runners: Optional[list[str]] = None
    roles: Optional[list[Literal["runner", "administrator"]]] = None


class CredentialRequest(_Body):
    organization_url: Optional[str] = Field(None, description="The organization the bot names, "
                                            "if it names one: it must be the connection's")
    bot: Optional[str] = Field(None, max_length=200, description="The bot that connects (audit)")
    run: Optional[str] = Field(None, max_length=200, description="The run's id (audit)")


def _secret_of(body: NewConnection | ConnectionChanges) -> Secret | None:
    if body.pat is not None and body.client_secret is not None:
        raise InvalidInput("give pat or client_secret, not both", field="client_secret")
    given = body.pat if body.pat is not None else body.client_secret
    if given is None:
        return None
    from adobot.credentials.sources import clean_token

    return clean_token(given.get_secret_value(), "the secret",
                       field="pat" if body.pat is not None else "client_secret")


# --- the app -----------------------------------------------------------------------------------

def create_app(state: ControlRoomState) -> FastAPI:
    """The control room over ``state`` (its connections prove secrets with their check)."""
    connections, tokens, audit = state.connections, state.tokens, state.audit
    bearer = HTTPBearer(auto_error=False, description="An API token: `adobot token issue`")
    app = FastAPI(title="adobot control room", version=__version__,
                  description="Named Azure DevOps connections for bots, tested before they are "
                              "saved; their secrets are never returned, except to a bot runner "
                              "for a run.",
                  openapi_url=f"{API}/openapi.json", docs_url=None, redoc_url=None)

    @app.exception_handler(AdobotError)
    async def _adobot_error(request: Request, error: AdobotError) -> JSONResponse:
        status = status_of(error)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return JSONResponse(error_body(error), status_code=status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        # Say which field and why, never the value (it may be a token).
        problem = error.errors()[0]
        field = ".".join(str(part) for part in problem["loc"] if part != "body") or "body"
        malformed = problem["type"] in ("json_invalid", "model_attributes_type", "dict_type") \
            and field in ("body", "0")
        message = (f"the body is not a JSON object: {problem['msg']}" if malformed
                   else f"{field}: {problem['msg']}")
        failure = (Malformed if malformed else InvalidInput)(
            message, "Send a JSON object with the fields the API documents "
                     f"({API}/openapi.json).", field=None if malformed else field)
        return JSONResponse(error_body(failure), status_code=status_of(failure))

    def caller(credentials: Optional[HTTPAuthorizationCredentials] = Depends(bearer)) -> ApiToken:
        return tokens.verify(credentials.credentials if credentials else None)

    def administrator(token: ApiToken = Depends(caller)) -> ApiToken:
        if token.role != "administrator":
            raise Forbidden(f"token {token.name!r} is a {token.role} token: only administrators "
                            "manage connections and tokens", "Ask a control-room admin.")
        return token

    def client_of(request: Request) -> str | None:
        return request.client.host if request.client else None

    def noted(event: str, token: ApiToken, request: Request, **fields: Any) -> None:
        audit.record(event, actor=token.name, role=token.role, client=client_of(request),
                     **fields)

    def audited(event: str, token: ApiToken, request: Request, action: Callable[[], Any],
                **fields: Any) -> Any:
        """Do ``action`` and write its outcome (or its refusal's code) to the audit log."""
        try:
            result = action()
        except AdobotError as failed:
            said = "; ".join(filter(None, (fields.pop("detail", None), failed.message)))
            noted(event, token, request, outcome=f"refused: {failed.code}", detail=said,
                  **fields)
            raise
        noted(event, token, request, **fields)
        return result

    @app.get(f"{API}/me", summary="Who the token belongs to")
    def me(token: ApiToken = Depends(caller)) -> dict[str, Any]:
        return {"name": token.name, "role": token.role, "expires_at": token.expires_at}

    @app.get(f"{API}/connections", summary="List connections (any role; never a secret)")
    def list_connections(token: ApiToken = Depends(caller)) -> dict[str, Any]:
        found = connections.list()
        return {"count": len(found), "connections": [c.to_dict() for c in found]}

    @app.get(f"{API}/connections/{{name}}", summary="One connection (never its secret)")
    def get_connection(name: str, token: ApiToken = Depends(caller)) -> dict[str, Any]:
        return connections.get(name).to_dict()

    @app.post(f"{API}/connections", status_code=201,
              summary="Create a connection: tested first, saved only if the test passes")
    def create_connection(body: NewConnection, request: Request,
                          token: ApiToken = Depends(administrator)) -> dict[str, Any]:
        secret = _secret_of(body)
        if secret is None:
            raise InvalidInput(f"{'pat' if body.authentication_method == 'pat' else 'client_secret'}"
                               " is required", field="pat" if body.authentication_method == "pat"
                               else "client_secret")
        created: Connection = audited(
            "connection.create", token, request, lambda: connections.add(
                body.name, body.organization, secret, project=body.project or None,
                authentication_method=body.authentication_method, tenant_id=body.tenant_id,
                client_id=body.client_id, runners=body.runners, roles=body.roles),
            connection=body.name, organization=body.organization)
        return created.to_dict()

    @app.patch(f"{API}/connections/{{name}}",
               summary="Edit a connection: re-authenticate, change its organization or project")
    def edit_connection(name: str, body: ConnectionChanges, request: Request,
                        token: ApiToken = Depends(administrator)) -> dict[str, Any]:
        secret = _secret_of(body)
        project: Any = ... if body.project is None else (body.project or None)
        edited: Connection = audited(
            "connection.edit", token, request, lambda: connections.edit(
                name, organization=body.organization, project=project, secret=secret,
                tenant_id=body.tenant_id, client_id=body.client_id, runners=body.runners,
                roles=body.roles),
            connection=name, organization=body.organization,
            detail=", ".join(sorted(k for k, v in body.model_dump().items() if v is not None)))
        return edited.to_dict()

    @app.post(f"{API}/connections/{{name}}/test",
              summary="Test a connection again and record its status")
    def test_connection(name: str, request: Request,
                        token: ApiToken = Depends(administrator)) -> dict[str, Any]:
        tested: Connection = audited("connection.test", token, request,
                                     lambda: connections.test(name), connection=name)
        return tested.to_dict()

    @app.delete(f"{API}/connections/{{name}}", status_code=204, summary="Delete a connection")
    def delete_connection(name: str, request: Request,
                          token: ApiToken = Depends(administrator)) -> Response:
        audited("connection.delete", token, request, lambda: connections.remove([name]),
                connection=name)
        return Response(status_code=204)

    @app.delete(f"{API}/connections", summary="Delete several connections: all or none")
    def delete_connections(request: Request, name: list[str] = Query(
            ..., description="A connection to delete (repeat for several)"),
            token: ApiToken = Depends(administrator)) -> dict[str, Any]:
        removed = audited("connection.delete", token, request, lambda: connections.remove(name),
                          connection=",".join(name))
        return {"removed": removed}

    @app.post(f"{API}/azuredevops/auth/pat", summary="Register or rotate an organization's PAT "
              "(for CI/CD): form fields organization and pat",
              openapi_extra={"requestBody": {"required": True, "content": {FORM: {"schema": {
                  "type": "object", "required": ["organization", "pat"], "properties": {
                      "organization": {"type": "string", "description": "Organization name or "
                                       "URL"},
                      "pat": {"type": "string", "format": "password",
                              "description": "The personal access token"}}}}}}})
    async def register_pat(request: Request,
                           token: ApiToken = Depends(administrator)) -> JSONResponse:
        fields = _form(request.headers.get("content-type", ""), await request.body())
        from adobot.credentials.sources import clean_token
        from starlette.concurrency import run_in_threadpool

        secret = clean_token(fields["pat"], "the form field pat", field="pat")

        def register() -> tuple[Connection, bool]:
            return audited("pat.register", token, request,
                           lambda: connections.register(fields["organization"], secret),
                           organization=fields["organization"])
        connection, created = await run_in_threadpool(register)
        return JSONResponse({"connection": connection.to_dict(), "created": created},
                            status_code=201 if created else 200)

    @app.post(f"{API}/connections/{{name}}/credential",
              summary="A connection's secret for one bot run (runner tokens; audited)")
    def fetch_credential(name: str, request: Request, body: CredentialRequest = CredentialRequest(),
                         token: ApiToken = Depends(caller)) -> JSONResponse:
        run = {k: v for k, v in (("bot", body.bot), ("run", body.run)) if v}

        def fetch():
            connection, credential = connections.opened(name)
            if token.role not in connection.roles:
                why = ("standard users never receive a secret" if token.role == "standard"
                       else f"connection {name!r} is open to {', '.join(connection.roles)} "
                            "tokens only")
                raise Forbidden(f"token {token.name!r} ({token.role}) may not fetch the "
                                f"credential of connection {name!r}: {why}",
                                "Run the bot on a bot runner the connection allows.")
            if token.role == "runner" and connection.runners and token.name not in connection.runners:
                raise Forbidden(f"runner {token.name!r} may not use connection {name!r}: it is "
                                f"limited to {', '.join(connection.runners)}",
                                "Run the bot on one of those runners, or ask an admin to add "
                                "this one.")
            check_destination(connection, body.organization_url)
            return credential
        try:
            credential = audited("credential.fetch", token, request, fetch, connection=name,
                                 run=run or None)
        except PermissionDenied as refused:
            raise Forbidden(refused.message, refused.hint, field=refused.field) from None
        return JSONResponse({"name": credential.name,
                             "organization_url": credential.organization_url,
                             "project": credential.project,
                             "authentication_method": credential.authentication_method,
                             "tenant_id": credential.tenant_id, "client_id": credential.client_id,
                             "secret": credential.secret.reveal()},
                            headers={"Cache-Control": "no-store"})

    def person(token: ApiToken = Depends(caller)) -> ApiToken:
        if token.role == "runner":
            raise Forbidden(f"token {token.name!r} is a runner's: it fetches credentials for "
                            "runs, and nothing else", "Sign in with a person's token.")
        return token

    @app.get(f"{API}/actions", summary="The action catalogue: every manifest, grouped")
    def actions(token: ApiToken = Depends(person)) -> dict[str, Any]:
        return workbench.catalogue()

    @app.post(f"{API}/bots/check", summary="Check a bot as `adobot validate` does")
    def check_bot(body: workbench.BotText, token: ApiToken = Depends(person)) -> dict[str, Any]:
        return workbench.check(body)

    @app.post(f"{API}/bots/run", summary="Run a bot against a sandbox of its own (no vault, "
              "no connections)")
    def run_bot(body: workbench.BotText, token: ApiToken = Depends(person)) -> dict[str, Any]:
        return workbench.run_in_sandbox(body)

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers=PAGE_HEADERS)

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get(f"{API}/audit", summary="The audit log (administrators; never a secret)")
    def read_audit(limit: int = Query(100, ge=1, le=10000), connection: Optional[str] = None,
                   event: Optional[str] = None,
                   token: ApiToken = Depends(administrator)) -> dict[str, Any]:
        entries = audit.read(limit, connection=connection, event=event)
        return {"count": len(entries), "entries": entries}

    return app


def _form(content_type: str, body: bytes) -> dict[str, str]:
    """The registration form's two fields, each exactly once, or a refusal naming the field."""
    if content_type.split(";")[0].strip().lower() != FORM:
        raise UnsupportedType(f"the registration takes {FORM}, not "
                              f"{content_type.split(';')[0].strip() or 'a body without a type'}",
                              "Send the fields as a form: curl --data-urlencode "
                              "organization=... --data-urlencode pat@token.txt.",
                              field="Content-Type")
    try:
        parsed = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(body))
    except (UnicodeDecodeError, ValueError):
        raise Malformed("the form body is not URL-encoded UTF-8 text",
                        "Encode each field: curl --data-urlencode organization=contoso.") from None
    fields = {}
    for name in ("organization", "pat"):
        values = parsed.get(name) or []
        if len(values) > 1:
            raise Malformed(f"form field {name} is given {len(values)} times",
                            "Give it once.", field=name)
        if not values or not values[0].strip():
            raise InvalidInput(f"form field {name} is required", f"Add {name}=... to the form.",
                               field=name)
        fields[name] = values[0]
    unknown = sorted(set(parsed) - {"organization", "pat"})
    if unknown:
        raise InvalidInput(f"form field {unknown[0]} is not known: the form has organization "
                           "and pat", field=unknown[0])
    return fields
