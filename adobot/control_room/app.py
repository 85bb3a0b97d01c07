"""The control room's HTTP API (FastAPI): connections, the CI/CD registration route,
credentials for bot runners, the audit log, the page's workbench, and its OpenAPI document.

Routes live in ``routes/`` (one router per subject), their dependencies in ``deps.py``, their
bodies and answers in ``schemas.py``. Every answer that is not a success is
``{"error": {"code", "message", "hint", "field"}}`` with the status a client expects: 400
malformed, 401 no valid token, 403 the role may not, 404 no such connection, 409 taken or
changed meanwhile, 415 wrong content type, 422 invalid or refused by the test, 500 the vault or
the database cannot be used, 502 the organization could not be reached. No answer, log line or
audit entry carries a secret: secrets arrive as ``SecretStr`` and leave only in the runner's
credential answer.
"""
from __future__ import annotations

import logging
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from adobot import __version__
from adobot.control_room.deps import Forbidden
from adobot.control_room.routes import connections, people, workbench
from adobot.control_room.routes.connections import Malformed, UnsupportedType
from adobot.control_room.state import ControlRoomState
from adobot.control_room.tokens import Unauthorized
from adobot.credentials.wire import ErrorBody, ErrorDetail
from adobot.errors import (
    AdobotError,
    AlreadyExists,
    CredentialNotFound,
    InvalidInput,
    TransportError,
    VaultError,
)

log = logging.getLogger("adobot.control_room")
API = "/api/v1"
STATIC = Path(__file__).with_name("static")
# The page loads nothing from elsewhere and may not be framed; tokens live in its memory only.
PAGE_HEADERS = {"Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; "
                                           "base-uri 'none'; form-action 'self'",
                "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
                "Cache-Control": "no-store"}
# The one table of statuses: the runner's client reads the code in the body, not the status.
STATUSES = ((Unauthorized, 401), (Forbidden, 403), (Malformed, 400), (UnsupportedType, 415),
            (CredentialNotFound, 404), (AlreadyExists, 409), (InvalidInput, 422),
            (TransportError, 502), (VaultError, 500))


def status_of(error: AdobotError) -> int:
    for kind, status in STATUSES:
        if isinstance(error, kind):
            return status
    return 422  # the organization refused the secret: the test before saving failed


def error_body(error: AdobotError) -> dict:
    return ErrorBody(error=ErrorDetail(**error.to_dict(), field=error.field)).model_dump()


def create_app(state: ControlRoomState) -> FastAPI:
    """The control room over ``state`` (its connections prove secrets with their check)."""
    app = FastAPI(title="adobot control room", version=__version__,
                  description="Named Azure DevOps connections for bots, tested before they are "
                              "saved; their secrets are never returned, except to a bot runner "
                              "for a run.",
                  openapi_url=f"{API}/openapi.json", docs_url=None, redoc_url=None)
    app.state.control_room = state

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

    app.include_router(people.router, prefix=API)
    app.include_router(connections.router, prefix=API)
    app.include_router(connections.registration, prefix=API)
    app.include_router(workbench.router, prefix=API)

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers=PAGE_HEADERS)

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
