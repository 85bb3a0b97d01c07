"""What runner machines call (runner tokens only): register, take a run (the pool's next, or on
PostgreSQL the one a procrastinate job brought), say they are alive (renewing their runs'
leases, told which to stop) and report how a run ended. A run's answer holds its variables: it
is never cached."""
from __future__ import annotations

from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Path, Request, Response
from fastapi.responses import JSONResponse

from adobot.control_room.deps import Audited, Caller, Forbidden, State, run_as
from adobot.control_room.schemas import (
    Claim,
    ClaimedRun,
    Ended,
    Heartbeat,
    HeartbeatAnswer,
    RunnerHello,
    RunnerTerms,
    RunReport,
    errors,
)
from adobot.control_room.tokens import ApiToken
from adobot.errors import Conflict
from adobot.runs.service import LEASE_SECONDS

router = APIRouter(tags=["runners"])
HEARTBEAT_SECONDS = 10
POLL_SECONDS = 0.25  # a waiting claim looks again this often (a new run rings at once)


async def runner(token: Caller) -> ApiToken:
    if token.role != "runner":
        raise Forbidden(f"token {token.name!r} is a {token.role} token: only runner machines "
                        "take runs", "Start `adobot runner` with a runner token.")
    return token


RunnerToken = Annotated[ApiToken, Depends(runner)]


def ring(app: Any) -> None:
    """A run may be ready: wake the claims that wait and the control room's own pool (call
    on the app's event loop)."""
    bell = getattr(app.state, "doorbell", None)
    if bell is not None:
        bell.set()
    app.state.doorbell = anyio.Event()
    pool = app.state.control_room.pool
    if pool is not None:
        pool.nudge()


@router.post("/runners/register", summary="A runner machine says who and where it is",
             responses=errors(400, 403))
async def register(body: RunnerHello, request: Request, room: State, token: RunnerToken,
                   audit: Audited) -> RunnerTerms:
    await run_as(request, "quick", audit, "runner.register", lambda: room.runs.register(
        token.name, body.pool, body.concurrency, body.version, body.host),
        detail=f"pool {body.pool}, concurrency {body.concurrency}, {body.host}")
    return RunnerTerms(name=token.name, lease_seconds=LEASE_SECONDS,
                       heartbeat_seconds=HEARTBEAT_SECONDS,
                       engine="claims" if room.store.runs.jobs is None else "procrastinate")


def _handed(run: dict[str, Any] | None) -> Response:
    if run is None:
        return Response(status_code=204)
    answer = ClaimedRun.model_validate(run).model_dump(mode="json")
    return JSONResponse(answer, headers={"Cache-Control": "no-store"})


@router.post("/runners/claim", summary="Take the pool's next run (waiting up to wait_seconds "
             "for one), or the run a job brought: 200 with the run, 204 if none came",
             response_model=ClaimedRun,
             responses={204: {"description": "No run came within wait_seconds, or the run "
                              "asked for is no longer queued"}, **errors(400, 403, 409, 500)})
async def claim(body: Claim, request: Request, room: State, token: RunnerToken) -> Any:
    if body.run is not None:
        return _handed(await run_as(request, "quick", room.runs.take, body.run, (body.pool,),
                                      token.name))
    if room.store.runs.jobs is not None:
        raise Conflict("this control room's runs are procrastinate jobs in its PostgreSQL "
                       "database: a runner takes them from there", "Start the runner with "
                       "--database (the control room's database URL).", field="run")
    deadline = anyio.current_time() + body.wait_seconds
    barred = await run_as(request, "read", room.runs.barred, token.name)
    while True:
        # The bell is taken before the queue is read: a run queued while it is read rings
        # this bell, and the wait below returns at once rather than at the next poll.
        bell = getattr(request.app.state, "doorbell", None)
        if bell is None:
            bell = request.app.state.doorbell = anyio.Event()
        if await run_as(request, "read", room.store.runs.ready, body.pool, room.runs.now(),
                        barred):
            run = await run_as(request, "quick", room.runs.claim, body.pool, token.name, barred)
            if run is not None:
                return _handed(run)
        left = deadline - anyio.current_time()
        if left <= 0 or await request.is_disconnected():
            return Response(status_code=204)
        with anyio.move_on_after(min(POLL_SECONDS, left)):
            await bell.wait()


@router.post("/runners/heartbeat", summary="A runner is alive: its runs' leases renewed, and "
             "the runs it must stop", responses=errors(400, 403, 404))
async def heartbeat(body: Heartbeat, request: Request, room: State,
                    token: RunnerToken) -> HeartbeatAnswer:
    stop = await run_as(request, "quick", room.runs.heartbeat, token.name, body.holding,
                        body.draining)
    return HeartbeatAnswer(stop=sorted(stop))


@router.post("/runs/{run_id}/end", summary="A runner reports how its attempt of a run ended",
             responses=errors(400, 403, 404))
async def end(run_id: Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")], body: RunReport,
              request: Request, room: State, token: RunnerToken) -> Ended:
    def ended() -> str:
        run = room.store.runs.head(run_id) or room.runs.get(run_id)  # (raises: no such run)
        if run["runner"] != token.name or run["attempt"] != body.attempt:
            return "taken back"
        return room.runs.end(run, token.name, body.state, error=body.error, steps=body.steps,
                             outputs=body.outputs, log=body.log, requests=body.requests)
    state = await run_as(request, "quick", ended)
    if state == "queued":
        ring(request.app)
    return Ended(state=state)
