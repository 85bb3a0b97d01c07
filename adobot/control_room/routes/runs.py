"""Bots, runs, pools and runners: standard users and administrators upload bots, start and
cancel runs and read their history; administrators pause and resume pools. Every start, cancel
and upload is audited."""
from __future__ import annotations

from typing import Annotated, Any, Optional

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse

from adobot.control_room.deps import Administrator, Audited, Person, State, run_as
from adobot.control_room.routes.runners import ring
from adobot.control_room.schemas import (
    BotList,
    BotVersion,
    PoolChange,
    PoolList,
    PoolOut,
    RunList,
    RunnerList,
    RunOut,
    errors,
)
from adobot.runs import states
from adobot.runs.bundles import BOT_NAME, Upload, described
from adobot.runs.service import POOL_NAME, StartRun

router = APIRouter(tags=["runs"])
BotName = Annotated[str, Path(pattern=BOT_NAME.pattern, max_length=64)]
RunId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="The run's id")]
PoolName = Annotated[str, Path(pattern=POOL_NAME.pattern, max_length=64)]


def run_out(room: Any, run: dict[str, Any], whole: bool = False) -> dict[str, Any]:
    shown = {key: value for key, value in run.items()
             if key not in ("variables", "key_id", "lease_until", "not_before")}
    shown["priority"] = states.PRIORITY_NAMES[run["priority"]]
    shown["cancel_requested"] = bool(run.get("cancel_requested"))
    if not whole:
        for key in ("steps", "outputs", "log", "attempts"):
            shown.pop(key, None)
    if run["state"] == states.QUEUED:
        shown["waiting"] = room.runs.why_waiting(run)
    return RunOut.model_validate(shown).model_dump(mode="json", exclude_none=not whole)


def bot_list(rows: list[dict[str, Any]]) -> BotList:
    return BotList(bots=[BotVersion.model_validate(described(row)) for row in rows])


@router.post("/bots", summary="Upload a bot (its file and the child bots and CSV files it "
             "uses): checked as `adobot validate` checks it; the same files are one version",
             status_code=201, response_model=BotVersion,
             responses={200: {"model": BotVersion, "description": "These files are a version "
                                                                  "already"},
                        **errors(400, 403, 409)})
async def upload_bot(body: Upload, request: Request, room: State, token: Person,
                     audit: Audited) -> JSONResponse:
    record, new = await run_as(request, "slow", audit, "bot.upload",
                               lambda: room.runs.upload(body, token.name),
                               detail=f"bot {body.name or body.main}")
    return JSONResponse(BotVersion.model_validate(described(record)).model_dump(mode="json"),
                        status_code=201 if new else 200)


@router.get("/bots", summary="Every bot's newest version", responses=errors(403, inputs=False))
async def list_bots(request: Request, room: State, token: Person) -> BotList:
    return bot_list(await run_as(request, "read", room.store.bots.list))


@router.get("/bots/{name}", summary="A bot's versions, newest first",
            responses=errors(403, 404))
async def bot_versions(name: BotName, request: Request, room: State, token: Person) -> BotList:
    rows = await run_as(request, "read", room.store.bots.list, name)
    if not rows:
        room.runs.bot(name)  # raises: not there
    return bot_list(rows)


@router.post("/runs", summary="Start a run: queued for its pool's runners (the same "
             "idempotency key twice starts one run)", status_code=201, response_model=RunOut,
             responses={200: {"model": RunOut, "description": "The run this idempotency key "
                                                               "started before"},
                        **errors(400, 403, 404, 500)})
async def start_run(body: StartRun, request: Request, room: State, token: Person,
                    audit: Audited) -> JSONResponse:
    run, new = await run_as(request, "quick", audit, "run.start",
                            lambda: room.runs.start(body, token.name),
                            detail=f"bot {body.bot} ({body.version}), pool {body.pool}, "
                                   f"{body.priority}")
    if new:
        ring(request.app)
    shown = await run_as(request, "read", run_out, room, run)
    return JSONResponse(shown, status_code=201 if new else 200)


@router.get("/runs", summary="Runs, newest first, filtered", responses=errors(403))
async def list_runs(request: Request, room: State, token: Person,
                    bot: Optional[str] = Query(None, pattern=BOT_NAME.pattern),
                    state: Optional[states.State] = None,
                    pool: Optional[str] = Query(None, pattern=POOL_NAME.pattern),
                    started_by: Optional[str] = Query(None, max_length=64),
                    since: Optional[str] = Query(None, max_length=32, description="UTC time: "
                                                 "runs created at or after it"),
                    until: Optional[str] = Query(None, max_length=32, description="UTC time: "
                                                 "runs created before it"),
                    limit: int = Query(100, ge=1, le=1000)) -> RunList:
    def listed() -> list[dict[str, Any]]:
        rows = room.store.runs.list(bot=bot, state=state, pool=pool, started_by=started_by,
                                    since=since, until=until, limit=limit)
        return [run_out(room, row) for row in rows]
    return RunList.model_validate({"runs": await run_as(request, "read", listed)})


@router.get("/runs/{run_id}", summary="One run: its steps, outputs, log and attempts",
            responses=errors(403, 404))
async def get_run(run_id: RunId, request: Request, room: State, token: Person) -> RunOut:
    def found() -> dict[str, Any]:
        return run_out(room, room.runs.get(run_id), whole=True)
    return RunOut.model_validate(await run_as(request, "read", found))


@router.post("/runs/{run_id}/cancel", summary="Cancel a run: a queued one at once, a running "
             "one at its next step or wait", status_code=202, responses=errors(403, 404))
async def cancel_run(run_id: RunId, request: Request, room: State, token: Person,
                     audit: Audited) -> RunOut:
    await run_as(request, "quick", audit, "run.cancel", lambda: room.runs.cancel(run_id),
                 detail=f"run {run_id}")
    return RunOut.model_validate(await run_as(request, "read", lambda: run_out(
        room, room.runs.get(run_id))))


def pool_out(room: Any, name: str, paused: bool) -> PoolOut:
    runs = room.store.runs
    return PoolOut(name=name, paused=paused,
                   runners=sum(r["state"] == "online" for r in runs.runners(name))
                   + (name in room.local_pools),
                   queued=runs.count(name, "queued"), running=runs.count(name, "running"))


@router.get("/pools", summary="Pools: paused or not, their runners, queued and running runs",
            responses=errors(403, inputs=False))
async def list_pools(request: Request, room: State, token: Person) -> PoolList:
    def listed() -> list[PoolOut]:
        paused = {p["name"]: bool(p["paused"]) for p in room.store.runs.pools()}
        return [pool_out(room, name, paused.get(name, False))
                for name in sorted(set(paused) | set(room.local_pools))]
    return PoolList(pools=await run_as(request, "read", listed))


@router.put("/pools/{name}", summary="Pause or resume a pool (administrators)",
            responses=errors(400, 403))
async def change_pool(name: PoolName, body: PoolChange, request: Request, room: State,
                      token: Administrator, audit: Audited) -> PoolOut:
    await run_as(request, "quick", audit, "pool.pause" if body.paused else "pool.resume",
                 lambda: room.store.runs.set_pool(name, body.paused, room.runs.now()),
                 detail=f"pool {name}")
    if not body.paused:
        ring(request.app)
    return await run_as(request, "read", pool_out, room, name, body.paused)


@router.get("/runners", summary="Runner machines: pool, concurrency, state, last heartbeat",
            responses=errors(403, inputs=False))
async def list_runners(request: Request, room: State, token: Person) -> RunnerList:
    rows = await run_as(request, "read", room.store.runs.runners)
    return RunnerList.model_validate({"runners": rows})
