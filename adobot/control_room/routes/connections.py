"""Connections: list and read (any role, never a secret), create, edit, test and delete
(administrators, audited), the CI/CD registration of a PAT, and a connection's credential for
one bot run (runner tokens the connection allows)."""
from __future__ import annotations

from typing import Annotated
from urllib.parse import parse_qs

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import JSONResponse

from adobot.control_room.deps import Administrator, Audited, Caller, Forbidden, State, run_as
from adobot.control_room.schemas import (
    ConnectionChanges,
    ConnectionList,
    ConnectionOut,
    NewConnection,
    Registered,
    Removed,
    errors,
    secret_of,
)
from adobot.credentials.connections import (
    CONNECTION_NAME,
    Connection,
    check_connection_name,
)
from adobot.credentials.wire import CredentialAnswer, CredentialRequest
from adobot.errors import InvalidInput, PermissionDenied

FORM = "application/x-www-form-urlencoded"
router = APIRouter(prefix="/connections", tags=["connections"])
# A connection's name in a route: checked before anything is done or audited with it.
Name = Annotated[str, Path(pattern=CONNECTION_NAME.pattern, max_length=32,
                           description="3-32 letters, digits and hyphens, starting with a letter")]
registration = APIRouter(tags=["connections"])


class Malformed(InvalidInput):
    """A body that cannot be read at all: HTTP 400."""


class UnsupportedType(InvalidInput):
    """A body of the wrong content type: HTTP 415."""


def shown(connection: Connection) -> ConnectionOut:
    return ConnectionOut.model_validate(connection.to_dict())


@router.get("", summary="List connections (any role; never a secret)", responses=errors(500),
            response_model=ConnectionList)
async def list_connections(request: Request, room: State, token: Caller) -> JSONResponse:
    # The rows are already what ConnectionList says (Connection.to_dict): serialized as they
    # are, not validated into 1,000 models and back again.
    found = await run_as(request, "read",
                            lambda: [c.to_dict() for c in room.connections.list()])
    return JSONResponse({"count": len(found), "connections": found})


@router.get("/{name}", summary="One connection (never its secret)", responses=errors(404, 500))
async def get_connection(name: Name, request: Request, room: State,
                         token: Caller) -> ConnectionOut:
    return shown(await run_as(request, "read", room.connections.get, name))


@router.post("", status_code=201, summary="Create a connection: tested first, saved only if "
             "the test passes", responses=errors(400, 403, 409, 422, 500, 502))
async def create_connection(body: NewConnection, request: Request, room: State,
                            token: Administrator, audit: Audited) -> ConnectionOut:
    secret = secret_of(body)
    if secret is None and body.authentication_method != "managed_identity":
        wanted = "pat" if body.authentication_method == "pat" else "client_secret"
        raise InvalidInput(f"{wanted} is required", field=wanted)
    created = await run_as(
        request, "slow", audit, "connection.create", lambda: room.connections.add(
            body.name, body.organization, secret, project=body.project or None,
            authentication_method=body.authentication_method, tenant_id=body.tenant_id,
            client_id=body.client_id, runners=body.runners, roles=body.roles,
            identity_client_id=body.managed_identity_client_id),
        connection=body.name, organization=body.organization)
    return shown(created)


@router.patch("/{name}", summary="Edit a connection: re-authenticate, change its "
              "organization or project", responses=errors(400, 403, 404, 409, 422, 500, 502))
async def edit_connection(name: Name, body: ConnectionChanges, request: Request, room: State,
                          token: Administrator, audit: Audited) -> ConnectionOut:
    secret = secret_of(body)
    project = ... if body.project is None else (body.project or None)
    edited = await run_as(
        request, "slow", audit, "connection.edit", lambda: room.connections.edit(
            name, organization=body.organization, project=project, secret=secret,
            tenant_id=body.tenant_id, client_id=body.client_id, runners=body.runners,
            roles=body.roles), connection=name, organization=body.organization,
        detail=", ".join(sorted(k for k, v in body.model_dump().items() if v is not None)))
    return shown(edited)


@router.post("/{name}/test", summary="Test a connection again and record its status",
             responses=errors(403, 404, 500))
async def test_connection(name: Name, request: Request, room: State, token: Administrator,
                          audit: Audited) -> ConnectionOut:
    return shown(await run_as(request, "slow", audit, "connection.test",
                                 lambda: room.connections.test(name), connection=name))


@router.delete("/{name}", status_code=204, summary="Delete a connection",
               responses=errors(403, 404, 500))
async def delete_connection(name: Name, request: Request, room: State, token: Administrator,
                            audit: Audited) -> Response:
    await run_as(request, "quick", audit, "connection.delete",
                    lambda: room.connections.remove([name]), connection=name)
    return Response(status_code=204)


@router.delete("", summary="Delete several connections: all or none",
               responses=errors(403, 404, 500))
async def delete_connections(request: Request, room: State, token: Administrator,
                             audit: Audited, name: list[str] = Query(
                                 ..., description="A connection to delete (repeat for several)")
                             ) -> Removed:
    for each in name:  # checked before any of them is audited
        check_connection_name(each)
    return Removed(removed=await run_as(request, "quick", audit, "connection.delete",
                                           lambda: room.connections.remove(name),
                                           connection=",".join(name)))


@router.post("/{name}/credential", summary="A connection's secret for one bot run (runner "
             "tokens; audited)", responses=errors(400, 403, 404, 500),
             response_model=CredentialAnswer)
async def fetch_credential(name: Name, request: Request, room: State, token: Caller,
                           audit: Audited,
                           body: CredentialRequest = CredentialRequest()) -> JSONResponse:
    run = {k: v for k, v in (("bot", body.bot), ("run", body.run)) if v}

    def fetch():
        return room.connections.handed_to(name, token.name, token.role, body.organization_url)
    try:
        credential = await run_as(request, "quick", audit, "credential.fetch", fetch,
                                     connection=name, run=run or None)
    except PermissionDenied as refused:
        raise Forbidden(refused.message, refused.hint, field=refused.field) from None
    # The one answer with a secret in it: never cached anywhere on its way.
    return JSONResponse(CredentialAnswer.of(credential).wire(),
                        headers={"Cache-Control": "no-store"})


@registration.post(
    "/azuredevops/auth/pat", summary="Register or rotate an organization's PAT (for CI/CD): "
    "form fields organization and pat", status_code=201,
    responses={200: {"model": Registered, "description": "The PAT of the organization's "
                                                          "connection was rotated"},
               **errors(400, 403, 409, 415, 422, 500, 502)},
    openapi_extra={"requestBody": {"required": True, "content": {FORM: {"schema": {
        "type": "object", "required": ["organization", "pat"], "properties": {
            "organization": {"type": "string", "description": "Organization name or URL"},
            "pat": {"type": "string", "format": "password",
                    "description": "The personal access token"}}}}}}})
async def register_pat(request: Request, room: State, token: Administrator,
                       audit: Audited) -> Registered:
    fields = _form(request.headers.get("content-type", ""), await request.body())
    from adobot.credentials.sources import clean_token

    secret = clean_token(fields["pat"], "the form field pat", field="pat")

    connection, created = await run_as(
        request, "slow", audit, "pat.register",
        lambda: room.connections.register(fields["organization"], secret),
        organization=fields["organization"])
    answer = Registered(connection=shown(connection), created=created)
    return JSONResponse(answer.model_dump(mode="json"),  # type: ignore[return-value]
                        status_code=201 if created else 200)


def _form(content_type: str, body: bytes) -> dict[str, str]:
    """The registration form's two fields, each exactly once, or a refusal naming the field."""
    # No refusal here repeats what was sent (a swapped form puts a PAT where a name should be).
    if content_type.split(";")[0].strip().lower() != FORM:
        raise UnsupportedType(f"the registration takes {FORM} and nothing else",
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
    if set(parsed) - {"organization", "pat"}:
        raise InvalidInput("the form has a field other than organization and pat (not repeated "
                           "here: it may be a secret)", "Send organization and pat only.",
                           field="form")
    return fields
