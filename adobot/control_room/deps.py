"""The control room's dependencies, declared once (the FastAPI template's ``deps.py``): the
state the app serves, who is calling (by API token) and which role it must have, and the audit
of what a request did."""
from __future__ import annotations

import functools
from typing import Annotated, Any, Callable, Literal, Optional, TypeVar

import anyio
import anyio.to_thread
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from adobot.control_room.state import ControlRoomState
from adobot.control_room.tokens import ApiToken
from adobot.errors import AdobotError, PermissionDenied

bearer = HTTPBearer(auto_error=False, description="An API token: `adobot token issue`")
Result = TypeVar("Result")
# Three kinds of work. A read of SQLite never waits (WAL: readers do not wait for writers) and
# costs less than a hop to a thread: it runs on the event loop. Quick work (a write to the store,
# any query of PostgreSQL) takes one of a few threads: more only make them wait for each other
# on the GIL. Slow work (a proof against an organization, a page run) waits on the network for
# seconds: it gets many threads, and never the quick ones. Measured with wrk, a list served to
# 32 clients vs 1: 0.53 with 40 threads for all, 0.88 with 2 quick threads, 1.12 with reads on
# the loop (bench/control_room.py reports it for each store).
THREADS = {"quick": 2, "slow": 32}


Kind = Literal["read", "quick", "slow"]


async def run_as(request: Request, kind: Kind, work: Callable[..., Result], *args: Any,
                 **kwargs: Any) -> Result:
    """Run blocking ``work(*args, **kwargs)`` as its kind says: ``read`` (on the loop where
    the store is SQLite, else as quick work), ``quick`` or ``slow`` (threads of their own)."""
    return await run_on(request.app, kind, work, *args, **kwargs)


async def run_on(app: Any, kind: Kind, work: Callable[..., Result], *args: Any,
                 **kwargs: Any) -> Result:
    """``run_as`` for code that has the app rather than a request (the guard)."""
    if kind == "read":
        if app.state.control_room.store.database.sqlite:
            return work(*args, **kwargs)
        kind = "quick"
    limiters = getattr(app.state, "limiters", None)
    if limiters is None:  # made in the app's own event loop, on its first request
        limiters = app.state.limiters = {
            name: anyio.CapacityLimiter(count) for name, count in THREADS.items()}
    return await anyio.to_thread.run_sync(functools.partial(work, *args, **kwargs),
                                          limiter=limiters[kind])


class Forbidden(PermissionDenied):
    """The caller's role (or name) may not do this: HTTP 403."""


# Dependencies are `async`: FastAPI would run a plain `def` on a thread of its shared pool, and
# a hop there for each of them costs more than their work; what blocks goes through ``run_as``.
async def state(request: Request) -> ControlRoomState:
    return request.app.state.control_room


State = Annotated[ControlRoomState, Depends(state)]


async def caller(request: Request, credentials: Annotated[
        Optional[HTTPAuthorizationCredentials], Depends(bearer)]) -> ApiToken:
    """The token's record. The guard checked it before the body was read (``guard.py``: 401
    if it is missing, unknown, revoked or expired) and left it here. ``credentials`` is
    declared for the OpenAPI document's security scheme only."""
    return request.state.api_token


Caller = Annotated[ApiToken, Depends(caller)]


async def administrator(token: Caller) -> ApiToken:
    if token.role != "administrator":
        raise Forbidden(f"token {token.name!r} is a {token.role} token: only administrators "
                        "manage connections and tokens", "Ask a control-room admin.")
    return token


async def person(token: Caller) -> ApiToken:
    if token.role == "runner":
        raise Forbidden(f"token {token.name!r} is a runner's: it fetches credentials for "
                        "runs, and nothing else", "Sign in with a person's token.")
    return token


Administrator = Annotated[ApiToken, Depends(administrator)]
Person = Annotated[ApiToken, Depends(person)]


class Audit:
    """The audit of one request: what it did (or why it was refused), by whom, from where."""

    def __init__(self, request: Request, room: State, token: Caller) -> None:
        self.room, self.token = room, token
        self.client = request.client.host if request.client else None

    def note(self, event: str, **fields: Any) -> None:
        self.room.audit.record(event, actor=self.token.name, role=self.token.role,
                               client=self.client, **fields)

    def __call__(self, event: str, action: Callable[[], Any], **fields: Any) -> Any:
        """Do ``action`` and write its outcome (or its refusal's code) to the audit log."""
        try:
            result = action()
        except AdobotError as failed:
            said = "; ".join(filter(None, (fields.pop("detail", None), failed.message)))
            # Repeated, it is counted in one row per window (``audit.py``), not a row each.
            self.room.audit.refused(event, actor=self.token.name, role=self.token.role,
                                    client=self.client, outcome=f"refused: {failed.code}",
                                    detail=said, **fields)
            raise
        self.note(event, **fields)
        return result


async def audit(request: Request, room: State, token: Caller) -> Audit:
    return Audit(request, room, token)


Audited = Annotated[Audit, Depends(audit)]
