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

import contextlib
import logging
from pathlib import Path
from typing import Any, AsyncIterator

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from adobot import __version__
from adobot.control_room.deps import Forbidden, run_on
from adobot.control_room.guard import Guard, TooLarge, TooManyFailures
from adobot.control_room.routes import (
    connections,
    people,
    runners,
    runs,
    schedules,
    workbench,
)
from adobot.control_room.routes.connections import Malformed, UnsupportedType
from adobot.control_room.routes.workbench import RETRY_AFTER, Busy
from adobot.control_room.state import ControlRoomState
from adobot.control_room.tokens import Unauthorized
from adobot.credentials.wire import ErrorBody, ErrorDetail
from adobot.errors import (
    AdobotError,
    AlreadyExists,
    Conflict,
    CredentialNotFound,
    InternalError,
    InvalidInput,
    NotFound,
    TransportError,
    VaultError,
)
from adobot.runs.service import RunNotFound

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
            (TooLarge, 413), (Busy, 429), (TooManyFailures, 429), (CredentialNotFound, 404),
            (RunNotFound, 404), (AlreadyExists, 409), (Conflict, 409), (InvalidInput, 422),
            (TransportError, 502), (VaultError, 500), (InternalError, 500))


def status_of(error: AdobotError) -> int:
    for kind, status in STATUSES:
        if isinstance(error, kind):
            return status
    return 422  # the organization refused the secret: the test before saving failed


def error_body(error: AdobotError) -> dict:
    return ErrorBody(error=ErrorDetail(**error.to_dict(), field=error.field)).model_dump()


def refusal(error: AdobotError) -> JSONResponse:
    status = status_of(error)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else \
        {"Retry-After": str(getattr(error, "retry_after", RETRY_AFTER))} if status == 429 \
        else None
    return JSONResponse(error_body(error), status_code=status, headers=headers)


class PageFiles(StaticFiles):
    """The page's files, with the page's headers whichever address they are asked by."""

    async def get_response(self, path: str, scope: Any) -> Any:
        response = await super().get_response(path, scope)
        response.headers.update(PAGE_HEADERS)
        return response


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """While the app serves: the housekeeper (runs of lost runners taken back, retention) and,
    if it runs bots itself, the control room's own pool. SIGTERM: the pool stops taking runs
    and stops the ones it holds."""
    from adobot.runs.engine import Housekeeper

    room = app.state.control_room
    room.stopping.clear()  # a state may be served again after a stop (tests do)
    housekeeper = Housekeeper(room.runs, wake=room.pool.nudge if room.pool else lambda: None
                              ).start()
    if room.pool is not None:
        room.pool.start()
    try:
        yield
    finally:
        housekeeper.stop()
        if room.pool is not None:
            await anyio.to_thread.run_sync(room.pool.stop)


def create_app(state: ControlRoomState) -> FastAPI:
    """The control room over ``state`` (its connections prove secrets with their check)."""
    app = FastAPI(title="adobot control room", version=__version__,
                  description="Named Azure DevOps connections for bots, tested before they are "
                              "saved; their secrets are never returned, except to a bot runner "
                              "for a run.",
                  openapi_url=f"{API}/openapi.json", docs_url=None, redoc_url=None,
                  lifespan=_lifespan)
    app.state.control_room = state

    async def verify(token: str | None) -> Any:
        return await run_on(app, "read", state.tokens.verify, token)

    async def refuse(error: AdobotError, scope: Any, receive: Any, send: Any) -> None:
        await refusal(error)(scope, receive, send)

    async def note(event: str, client: str | None, detail: str) -> None:
        await run_on(app, "quick", state.audit.record, event, actor="(no valid token)",
                     role="-", outcome="refused: AUTH_FAILED", client=client, detail=detail)

    app.add_middleware(Guard, verify=verify, refuse=refuse, note=note)

    @app.exception_handler(AdobotError)
    async def _adobot_error(request: Request, error: AdobotError) -> JSONResponse:
        return refusal(error)

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, error: HTTPException) -> JSONResponse:
        # Starlette's own refusals (no such route, a method the route has not) in the envelope.
        where = f"{request.method} {request.url.path}"
        failure: AdobotError = (
            NotFound(f"there is no {where} in this API", f"See {API}/openapi.json.")
            if error.status_code == 404 else
            InvalidInput(f"{where}: {error.detail}", f"See {API}/openapi.json.", field="method"))
        answer = refusal(failure)
        answer.status_code = error.status_code
        return answer

    @app.exception_handler(Exception)
    async def _bug(request: Request, error: Exception) -> JSONResponse:
        log.error("%s %s failed: %s", request.method, request.url.path, type(error).__name__,
                  exc_info=error)
        return refusal(InternalError("the control room failed on this request; it is logged",
                                     field=None))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        # Say which field and why, never the value (it may be a token).
        problem = error.errors()[0]
        where = [str(part) for part in problem["loc"]]
        field = ".".join(where[1:]) or "body"  # body.roles.0 -> roles.0; path.name -> name
        # The body as a whole is no JSON object (not JSON, an array, a number): unreadable.
        malformed = where[:1] == ["body"] and (problem["type"] == "json_invalid" or len(where) == 1
                                               or (len(where) == 2 and where[1].isdigit()))
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
    app.include_router(runs.router, prefix=API)
    app.include_router(runners.router, prefix=API)
    app.include_router(schedules.router, prefix=API)

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers=PAGE_HEADERS)

    app.mount("/static", PageFiles(directory=STATIC), name="static")
    return app
