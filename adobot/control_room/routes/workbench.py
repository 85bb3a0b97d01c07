"""What the page offers people (administrators and standard users, not runners): the action
catalogue, checking a bot as `adobot validate` does, and running it in a sandbox of its own."""
from __future__ import annotations

import threading

import anyio
from fastapi import APIRouter, Request

from adobot.actions.environment import RunLimits
from adobot.control_room import workbench
from adobot.control_room.deps import Person, run_as
from adobot.control_room.schemas import Catalogue, CheckResult, RunDocument, errors
from adobot.errors import AdobotError, Throttled

router = APIRouter(tags=["bots"])
# A bot tried on the page runs in the service itself: it is held to a small run, and only a
# few run at once, so no one can tire the service with them.
PAGE_LIMITS = {"seconds": 60.0, "steps": 500, "loop_items": 200, "variable_bytes": 1024 * 1024}
PAGE_RUNS, PAGE_RUNS_PER_TOKEN = 8, 2
RETRY_AFTER = 5


class Busy(Throttled):
    """Too many page runs at once, the caller's or everyone's: HTTP 429 with Retry-After."""


@router.get("/actions", summary="The action catalogue: every manifest, grouped",
            responses=errors(403))
async def actions(token: Person) -> Catalogue:
    return Catalogue.model_validate(workbench.catalogue())  # read once, then cached


@router.post("/bots/check", summary="Check a bot as `adobot validate` does",
             responses=errors(400, 403, 422))
async def check_bot(body: workbench.BotText, request: Request, token: Person) -> CheckResult:
    return CheckResult.model_validate(await run_as(request, "slow", workbench.check, body))


@router.post("/bots/run", summary="Run a bot against a sandbox of its own (no vault, no "
             "connections; at most 60 s, 500 steps, 200 items a loop, 1 MiB of variables)",
             responses=errors(400, 403, 422, 429))
async def run_bot(body: workbench.BotText, request: Request, token: Person) -> RunDocument:
    # The page's runs by token name (the event loop alone touches this: no lock).
    runs: dict[str, set[threading.Event]] | None = getattr(request.app.state, "page_runs", None)
    if runs is None:
        runs = request.app.state.page_runs = {}
    mine = runs.setdefault(token.name, set())
    if len(mine) >= PAGE_RUNS_PER_TOKEN or sum(map(len, runs.values())) >= PAGE_RUNS:
        whose = ("yours" if len(mine) >= PAGE_RUNS_PER_TOKEN else "everyone's")
        raise Busy(f"too many bots are running on the page at once ({whose}: at most "
                   f"{PAGE_RUNS_PER_TOKEN} a person, {PAGE_RUNS} in all)",
                   f"Try again in a few seconds (Retry-After: {RETRY_AFTER}).")
    stop = threading.Event()
    mine.add(stop)
    refused: AdobotError | None = None
    try:
        async with anyio.create_task_group() as watching:
            watching.start_soon(_stop_when_the_client_leaves, request, stop)
            try:
                result = await run_as(request, "slow", workbench.run_in_sandbox, body,
                                      RunLimits(**PAGE_LIMITS, stop=stop))
            except AdobotError as failed:  # raised here, the task group would wrap it in a group
                refused = failed
            finally:
                stop.set()  # also when this request is cancelled: the run ends at its next step
                watching.cancel_scope.cancel()
    finally:
        mine.discard(stop)
    if refused is not None:
        raise refused
    return RunDocument.model_validate(result)


async def _stop_when_the_client_leaves(request: Request, stop: threading.Event) -> None:
    """Stop the run when its client goes away, or the service is told to stop."""
    stopping = request.app.state.control_room.stopping
    while not stop.is_set():
        if stopping.is_set() or await request.is_disconnected():
            stop.set()
            return
        await anyio.sleep(0.25)
