"""Schedules: a bot started on a cron expression in a time zone (daylight saving included: a
tick in the hour that is skipped comes at its end; one in the hour that repeats comes once), or
now, by API. A tick is fired by whichever control-room instance gets there first — one
conditional update moves the schedule to its next tick and queues the run, in one transaction —
so two instances start one run a tick. A tick missed while no control room ran is fired once,
late, not once for each one missed."""
from __future__ import annotations

import datetime as dt
import json
import logging
import re
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from adobot.errors import AdobotError, AlreadyExists, InvalidInput
from adobot.runs import states
from adobot.runs.bundles import BOT_NAME
from adobot.runs.service import (
    DEFAULT_POOL,
    POOL_NAME,
    RunNotFound,
    VersionNumber,
    check_pool,
    missing_variables,
    schedule_place,
    time_text,
)

if TYPE_CHECKING:
    from adobot.runs.service import Runs

log = logging.getLogger("adobot.runs")
SCHEDULE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9._-]{0,63}$")
SHOWN_TICKS = 3


class NewSchedule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=SCHEDULE_NAME.pattern, description="The schedule's name")
    bot: str = Field(pattern=BOT_NAME.pattern)
    version: VersionNumber | Literal["latest"] = Field(
        "latest", description="A version, or latest (the newest at each tick)")
    cron: str = Field(max_length=100, description="Five fields: minute hour day month weekday, "
                                                  "e.g. '30 2 * * 1-5'")
    timezone: str = Field("UTC", max_length=64, description="An IANA time zone, e.g. "
                                                            "Europe/Paris")
    variables: dict[str, Any] = Field(default_factory=dict)
    priority: states.Priority = "normal"
    pool: str = Field(DEFAULT_POOL, pattern=POOL_NAME.pattern)
    paused: bool = False


class ScheduleChanges(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: VersionNumber | Literal["latest"] | None = None
    cron: str | None = Field(None, max_length=100)
    timezone: str | None = Field(None, max_length=64)
    variables: dict[str, Any] | None = None
    priority: states.Priority | None = None
    pool: str | None = Field(None, pattern=POOL_NAME.pattern)
    paused: bool | None = None


def _zone(name: str) -> Any:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"time zone {name[:64]!r} is not an IANA time zone",
                           "E.g. UTC, Europe/Paris, America/New_York.",
                           field="timezone") from None


def ticks(cron: str, timezone: str, after: dt.datetime, count: int) -> list[dt.datetime]:
    """The next ``count`` ticks of ``cron`` in ``timezone`` after ``after``, in UTC."""
    from croniter import croniter

    if len(cron.split()) != 5 or not croniter.is_valid(cron):
        raise InvalidInput(f"cron expression {cron[:100]!r} is not valid",
                           "Five fields: minute hour day-of-month month day-of-week, e.g. "
                           "'30 2 * * 1-5' (02:30 on weekdays).", field="cron")
    local = after.astimezone(_zone(timezone))
    walk = croniter(cron, local)
    # The hour that repeats when clocks go back has each of its minutes twice: a tick at
    # one of them comes once (a wall-clock time is not fired twice in a row).
    last, found = local.replace(tzinfo=None, second=0, microsecond=0), []
    while len(found) < count:
        moment = walk.get_next(dt.datetime)
        wall = moment.replace(tzinfo=None)
        if wall != last:
            found.append(moment.astimezone(dt.timezone.utc))
        last = wall
    return found


class Schedules:
    def __init__(self, runs: "Runs") -> None:
        self.runs = runs
        self.store = runs.store

    def _sealed(self, name: str, variables: dict[str, Any]) -> tuple[str, str]:
        keys = self.runs.vault.keys(create=True)
        return keys.seal(json.dumps(variables, ensure_ascii=False, default=str),
                         schedule_place(name)), keys.key_id

    def create(self, body: NewSchedule, by: str) -> dict[str, Any]:
        check_pool(body.pool)
        bot = self.runs.bot(body.bot, None if body.version == "latest" else body.version)
        missing = missing_variables(bot, body.variables)
        if missing:
            raise InvalidInput(f"bot {bot['name']!r} needs the variable(s) "
                               f"{', '.join(missing)} at each run", "Give them in variables.",
                               field="variables")
        now = self.runs.clock()
        first = ticks(body.cron, body.timezone, now, 1)[0]
        sealed, key_id = self._sealed(body.name, body.variables)
        record = {"name": body.name, "bot": body.bot,
                  "bot_version": None if body.version == "latest" else body.version,
                  "cron": body.cron, "timezone": body.timezone, "variables": sealed,
                  "key_id": key_id, "priority": states.PRIORITIES[body.priority],
                  "pool": body.pool, "paused": int(body.paused), "next_at": time_text(first),
                  "created_by": by, "created_at": time_text(now), "updated_at": time_text(now)}
        if not self.store.schedules.insert(record):
            raise AlreadyExists(f"a schedule named {body.name!r} exists",
                                "Choose another name, or edit that one.", field="name")
        return self.get(body.name)

    def get(self, name: str) -> dict[str, Any]:
        found = self.store.schedules.get(name)
        if found is None:
            raise RunNotFound(f"schedule {name!r} is not in the control room",
                              "List them: GET /api/v1/schedules.", field="name")
        return found

    def edit(self, name: str, changes: ScheduleChanges) -> dict[str, Any]:
        current = self.get(name)
        values: dict[str, Any] = {}
        if changes.version is not None:
            self.runs.bot(current["bot"], None if changes.version == "latest"
                          else changes.version)
            values["bot_version"] = None if changes.version == "latest" else changes.version
        if changes.priority is not None:
            values["priority"] = states.PRIORITIES[changes.priority]
        if changes.pool is not None:
            values["pool"] = check_pool(changes.pool)
        if changes.paused is not None:
            values["paused"] = int(changes.paused)
        if changes.variables is not None:
            values["variables"], values["key_id"] = self._sealed(name, changes.variables)
            values["variables_next"] = values["key_id_next"] = None  # a rotation's is stale
        cron = changes.cron or current["cron"]
        timezone = changes.timezone or current["timezone"]
        if changes.cron is not None or changes.timezone is not None or changes.paused is False:
            # The next tick from now (a paused schedule resumed does not fire what it missed).
            values["next_at"] = time_text(ticks(cron, timezone, self.runs.clock(), 1)[0])
        values.update(cron=cron, timezone=timezone, updated_at=self.runs.now())
        self.store.schedules.update(name, values)
        return self.get(name)

    def delete(self, name: str) -> None:
        if not self.store.schedules.delete(name):
            self.get(name)  # raises: not there

    def upcoming(self, schedule: dict[str, Any]) -> list[str]:
        """Its next ticks (UTC), the first of them the one it waits for."""
        if schedule["paused"]:
            return []
        first = dt.datetime.strptime(schedule["next_at"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
            tzinfo=dt.timezone.utc)
        later = ticks(schedule["cron"], schedule["timezone"], first, SHOWN_TICKS - 1)
        return [time_text(moment)[:19] + "Z" for moment in (first, *later)]

    def trigger(self, name: str, by: str) -> dict[str, Any]:
        """Start the schedule's bot now (the start-by-API trigger); its ticks go on as they
        were."""
        schedule = self.get(name)
        run = self._run(schedule, by, None)
        return self.store.runs.insert(run)[0]

    def _run(self, schedule: dict[str, Any], by: str, key: str | None) -> dict[str, Any]:
        bot = self.runs.bot(schedule["bot"], schedule["bot_version"])
        variables = self.runs.opened(schedule, schedule_place(schedule["name"]))
        return self.runs.new_run(bot, variables, states.PRIORITY_NAMES[schedule["priority"]],
                                 schedule["pool"], by, key)

    def fire_due(self) -> list[str]:
        """Fire every tick that is due: the ids of the runs this instance queued."""
        now = self.runs.clock()
        queued = []
        for schedule in self.store.schedules.due(time_text(now)):
            tick = schedule["next_at"]
            following = time_text(ticks(schedule["cron"], schedule["timezone"], now, 1)[0])
            try:
                run = self._run(schedule, f"schedule:{schedule['name']}",
                                f"schedule:{schedule['name']}:{tick}")
            except AdobotError as failed:  # the bot was removed, a variable is missing…
                log.warning("schedule %r could not start its run at %sZ: %s",
                            schedule["name"], tick[:19], failed.message)
                self.store.schedules.update(schedule["name"], {"next_at": following})
                continue
            if self.store.schedules.fire(schedule["name"], tick, following, run, self.runs.now()):
                queued.append(run["id"])
        return queued
