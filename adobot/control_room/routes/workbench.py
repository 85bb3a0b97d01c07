"""What the page offers people (administrators and standard users, not runners): the action
catalogue, checking a bot as `adobot validate` does, and running it in a sandbox of its own."""
from __future__ import annotations

from fastapi import APIRouter, Request

from adobot.control_room import workbench
from adobot.control_room.deps import Person, run_as
from adobot.control_room.schemas import Catalogue, CheckResult, RunDocument, errors

router = APIRouter(tags=["bots"])


@router.get("/actions", summary="The action catalogue: every manifest, grouped",
            responses=errors(403))
async def actions(token: Person) -> Catalogue:
    return Catalogue.model_validate(workbench.catalogue())  # read once, then cached


@router.post("/bots/check", summary="Check a bot as `adobot validate` does",
             responses=errors(400, 403, 422))
async def check_bot(body: workbench.BotText, request: Request, token: Person) -> CheckResult:
    return CheckResult.model_validate(await run_as(request, "slow", workbench.check, body))


@router.post("/bots/run", summary="Run a bot against a sandbox of its own (no vault, no "
             "connections)", responses=errors(400, 403, 422))
async def run_bot(body: workbench.BotText, request: Request, token: Person) -> RunDocument:
    return RunDocument.model_validate(await run_as(request, "slow",
                                                      workbench.run_in_sandbox, body))
