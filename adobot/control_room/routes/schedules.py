"""Schedules: administrators create, edit, pause and delete them; anyone signed in lists them
(with their next ticks) and triggers one now. Every change is audited."""
from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import JSONResponse

from adobot.control_room.deps import Administrator, Audited, Person, State, run_as
from adobot.control_room.routes.runners import ring
from adobot.control_room.routes.runs import run_out
from adobot.control_room.schemas import RunOut, ScheduleList, ScheduleOut, errors
from adobot.runs import states
from adobot.runs.schedules import SCHEDULE_NAME, NewSchedule, ScheduleChanges, Schedules
from adobot.runs.service import schedule_place

router = APIRouter(prefix="/schedules", tags=["schedules"])
Name = Annotated[str, Path(pattern=SCHEDULE_NAME.pattern, max_length=64)]


def shown(room: Any, schedule: dict[str, Any]) -> dict[str, Any]:
    rules = Schedules(room.runs)
    names = sorted(room.runs.opened(schedule, schedule_place(schedule["name"])))
    return ScheduleOut(
        name=schedule["name"], bot=schedule["bot"],
        version=schedule["bot_version"] if schedule["bot_version"] is not None else "latest",
        cron=schedule["cron"], timezone=schedule["timezone"],
        priority=states.PRIORITY_NAMES[schedule["priority"]], pool=schedule["pool"],
        paused=bool(schedule["paused"]), next=rules.upcoming(schedule), variables=names,
        last_run=schedule["last_run"], last_fired_at=schedule["last_fired_at"],
        created_by=schedule["created_by"], created_at=schedule["created_at"],
        updated_at=schedule["updated_at"]).model_dump(mode="json")


@router.post("", summary="Create a schedule (administrators): a bot on a cron expression in a "
             "time zone", status_code=201, response_model=ScheduleOut,
             responses=errors(400, 403, 404, 409, 500))
async def create(body: NewSchedule, request: Request, room: State, token: Administrator,
                 audit: Audited) -> JSONResponse:
    def made() -> dict[str, Any]:
        return shown(room, Schedules(room.runs).create(body, token.name))
    answer = await run_as(request, "quick", audit, "schedule.create", made,
                          detail=f"schedule {body.name}: bot {body.bot}, '{body.cron}' "
                                 f"{body.timezone}")
    return JSONResponse(answer, status_code=201)


@router.get("", summary="Schedules and their next ticks", responses=errors(403, 500,
                                                                            inputs=False))
async def list_schedules(request: Request, room: State, token: Person) -> ScheduleList:
    def listed() -> list[dict[str, Any]]:
        return [shown(room, s) for s in room.store.schedules.list()]
    return ScheduleList.model_validate({"schedules": await run_as(request, "read", listed)})


@router.get("/{name}", summary="One schedule", responses=errors(403, 404, 500))
async def get_schedule(name: Name, request: Request, room: State, token: Person) -> ScheduleOut:
    return ScheduleOut.model_validate(await run_as(
        request, "read", lambda: shown(room, Schedules(room.runs).get(name))))


@router.patch("/{name}", summary="Edit, pause or resume a schedule (administrators)",
              responses=errors(400, 403, 404, 500))
async def edit(name: Name, body: ScheduleChanges, request: Request, room: State,
               token: Administrator, audit: Audited) -> ScheduleOut:
    changed = ", ".join(sorted(body.model_dump(exclude_unset=True)))
    return ScheduleOut.model_validate(await run_as(
        request, "quick", audit, "schedule.edit",
        lambda: shown(room, Schedules(room.runs).edit(name, body)),
        detail=f"schedule {name}: {changed or 'nothing'}"))


@router.delete("/{name}", status_code=204, summary="Delete a schedule (administrators)",
               responses=errors(403, 404))
async def delete(name: Name, request: Request, room: State, token: Administrator,
                 audit: Audited) -> Response:
    await run_as(request, "quick", audit, "schedule.delete",
                 lambda: Schedules(room.runs).delete(name), detail=f"schedule {name}")
    return Response(status_code=204)


@router.post("/{name}/trigger", summary="Start the schedule's bot now", status_code=201,
             response_model=RunOut, responses=errors(403, 404, 500))
async def trigger(name: Name, request: Request, room: State, token: Person,
                  audit: Audited) -> JSONResponse:
    run = await run_as(request, "quick", audit, "schedule.trigger",
                       lambda: Schedules(room.runs).trigger(name, token.name),
                       detail=f"schedule {name}")
    ring(request.app)
    return JSONResponse(await run_as(request, "read", run_out, room, run), status_code=201)
